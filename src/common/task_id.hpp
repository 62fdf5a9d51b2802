#pragma once
// A task attempt's id, `<frame><dependency>-<call>-<attempt>`: the one place that
// formats and parses it. The frame is "" for the root workflow and "<parent task
// id>/" inside a child workflow; call indices count per dependency in call order.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowy::detail {

/// Writes `v` in decimal at `p` (room for 20 bytes); returns the end. Timestamps (11
/// digits) and call indices are most of a trace's numbers: 8 digits at a time, by pairs.
inline char* put_decimal(char* p, std::uint64_t v) {
    static constexpr char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    if (v < 10) {
        *p = char('0' + v);
        return p + 1;
    }
    if (v < 100000000) {
        auto x = static_cast<std::uint32_t>(v);
        char* end = p + (x < 100        ? 2
                         : x < 1000     ? 3
                         : x < 10000    ? 4
                         : x < 100000   ? 5
                         : x < 1000000  ? 6
                         : x < 10000000 ? 7
                                        : 8);
        char* q = end;
        for (; x >= 100; x /= 100) std::memcpy(q -= 2, pairs + 2 * (x % 100), 2);
        if (x >= 10)
            std::memcpy(q - 2, pairs + 2 * x, 2);
        else
            q[-1] = char('0' + x);
        return end;
    }
    p = put_decimal(p, v / 100000000);
    auto low = static_cast<std::uint32_t>(v % 100000000);
    for (int i = 6; i >= 0; i -= 2) {
        std::memcpy(p + i, pairs + 2 * (low % 100), 2);
        low /= 100;
    }
    return p + 8;
}

/// An attempt's id as its parts; the views point into the names and prefixes they were
/// made from (a frame's prefix, a binding's name, or the text parse() read).
struct TaskId {
    std::string_view frame;       ///< "" or "<parent task id>/"
    std::string_view dependency;  ///< the dependency name the body called
    std::uint32_t call = 0;       ///< index among the calls of that dependency in its frame
    std::uint32_t attempt = 0;    ///< 0, then one more for each retry

    /// The id of the task's first attempt, which names the task as a whole.
    TaskId first_attempt() const { return {frame, dependency, call, 0}; }

    /// Room put() needs.
    std::size_t max_size() const { return frame.size() + dependency.size() + 2 + 2 * 10; }
    /// Writes the id at `p` (room: max_size()); returns the end.
    char* put(char* p) const {
        std::memcpy(p, frame.data(), frame.size());
        p += frame.size();
        std::memcpy(p, dependency.data(), dependency.size());
        p += dependency.size();
        *p++ = '-';
        p = put_decimal(p, call);
        *p++ = '-';
        return put_decimal(p, attempt);
    }
    void append_to(std::string& out) const {
        std::size_t at = out.size();
        out.resize(at + max_size());
        out.resize(static_cast<std::size_t>(put(out.data() + at) - out.data()));
    }
    std::string str() const {
        std::string s;
        append_to(s);
        return s;
    }

    /// Reads an id; nullopt if `text` is not one (its views point into `text`).
    static std::optional<TaskId> parse(std::string_view text) {
        auto number = [](std::string_view digits, std::uint32_t& out) {
            if (digits.empty() || digits.size() > 10) return false;
            std::uint64_t v = 0;
            for (char c : digits) {
                if (c < '0' || c > '9') return false;
                v = v * 10 + std::uint64_t(c - '0');
            }
            if (v > UINT32_MAX) return false;
            out = static_cast<std::uint32_t>(v);
            return true;
        };
        TaskId id;
        std::size_t last = text.rfind('-');
        if (last == std::string_view::npos || !number(text.substr(last + 1), id.attempt)) return std::nullopt;
        std::size_t second = last == 0 ? std::string_view::npos : text.rfind('-', last - 1);
        if (second == std::string_view::npos || !number(text.substr(second + 1, last - second - 1), id.call))
            return std::nullopt;
        std::string_view head = text.substr(0, second);  // <frame><dependency>
        std::size_t slash = head.rfind('/');
        std::size_t name_at = slash == std::string_view::npos ? 0 : slash + 1;
        id.frame = head.substr(0, name_at);
        id.dependency = head.substr(name_at);
        if (id.dependency.empty()) return std::nullopt;
        return id;
    }
};

/// Positions of tasks by id, for the trace's readers and views: one table per frame and
/// dependency (a handful in a run), indexed by the call. A lookup hashes no id, and the
/// table of the last lookup is tried first, so a million tasks cost per task what a
/// thousand do (a hash table of a million ids missed the caches at every lookup). Any
/// attempt's id finds its task.
class TaskIndex {
public:
    static constexpr std::size_t none = std::size_t(-1);

    /// The position set for `id`'s task, or `none`.
    std::size_t find(const TaskId& id) const {
        const Calls* c = calls(id, false);
        if (!c) return none;
        if (id.call < c->dense.size()) return c->dense[id.call];
        auto it = c->sparse.find(id.call);
        return it == c->sparse.end() ? none : it->second;
    }
    std::size_t find(std::string_view id) const {
        std::optional<TaskId> parsed = TaskId::parse(id);
        return parsed ? find(*parsed) : none;
    }
    /// Sets the position of `id`'s task.
    void set(const TaskId& id, std::size_t position) {
        Calls& c = *calls(id, true);
        // Calls are counted from 0 in call order, so tables stay dense; a call far past
        // the end (a damaged trace) goes to the side instead of growing the table by it.
        if (id.call < c.dense.size() + 65536 && c.sparse.empty()) {
            if (id.call >= c.dense.size()) c.dense.resize(std::size_t(id.call) + 1, none);
            c.dense[id.call] = position;
        } else if (id.call < c.dense.size()) {
            c.dense[id.call] = position;
        } else {
            c.sparse[id.call] = position;
        }
    }
    /// The same for an id as text; nothing if it is not a task id.
    void set(std::string_view id, std::size_t position) {
        if (std::optional<TaskId> parsed = TaskId::parse(id)) set(*parsed, position);
    }

private:
    struct Calls {
        std::vector<std::size_t> dense;  // by call; `none` where unset
        std::unordered_map<std::uint32_t, std::size_t> sparse;
    };
    Calls* calls(const TaskId& id, bool make) const {
        std::size_t f = id.frame.size(), d = id.dependency.size();
        if (last_ && last_key_.size() == f + d && std::memcmp(last_key_.data(), id.frame.data(), f) == 0 &&
            std::memcmp(last_key_.data() + f, id.dependency.data(), d) == 0)
            return last_;
        std::string key;
        key.reserve(f + d);
        key.append(id.frame).append(id.dependency);
        auto it = tables_.find(key);
        if (it == tables_.end()) {
            if (!make) return nullptr;
            it = tables_.emplace(key, Calls{}).first;
        }
        last_key_ = std::move(key);
        return last_ = &it->second;
    }
    mutable std::unordered_map<std::string, Calls> tables_;  // by frame and dependency; nodes never move
    mutable std::string last_key_;
    mutable Calls* last_ = nullptr;
};

}  // namespace flowy::detail

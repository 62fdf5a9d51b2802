#pragma once
// The trace file's writer: records (JSON Lines, or the journal's binary records) appended
// to a shared file mapping. An event costs a
// few string appends and a memcpy; the kernel owns the written pages, so a run killed
// with SIGKILL leaves every complete line behind. The file grows by writing zeros
// ahead of the mapping, so a full disk is an error we report (once) rather than
// SIGBUS, and tracing stops without touching the run. A file cut short from outside
// (truncate, another program) would SIGBUS the mapping: a handler puts anonymous
// memory in place of the lost pages and the writer stops with one warning. One writer
// at a time: an open file description lock, whose holder a second run names.

#include "common/task_id.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace flowy::detail::trace {

// 2: attempts' run times (started_us, ended_us); 3: run_started's parameters, trace_stopped;
// 4: task_scheduled's name and after, run_started's activities; 5: the worker (and host,
// pid) of task_failed, task_timed_out, worker_crashed
inline constexpr int format_version = 5;
inline constexpr int oldest_format_version = 1;

/// Monotonic microseconds (CLOCK_MONOTONIC).
std::int64_t now_us();

/// Where and when a run starts, as run_started records it: this host's name and the
/// UTC time, ISO 8601.
struct RunPlace {
    std::string host, time;
};
RunPlace here_and_now();

bool unbase64(std::string_view text, std::string& out);
void append_base64(std::string& out, std::string_view bytes);
void append_json_string(std::string& out, std::string_view s);
/// Writes `s` as a JSON string at `p` (room: 6 bytes per byte, and 2); returns the end.
char* put_json_string(char* p, std::string_view s);

/// In a forked worker, which writes no trace: closes the traces' files (so that a worker
/// never holds a trace's lock), unmaps them, and puts SIGBUS back as the program had it.
void leave_traces_in_child() noexcept;

/// How a trace file is written: JSON Lines, or the run journal (src/trace/journal.hpp).
enum class Encoding { jsonl, journal };

/// How the trace at `path` is encoded, from its first bytes: a file that does not exist,
/// is empty or holds only zeros (a run killed before its first record) is a journal.
Encoding encoding_of_file(const std::string& path);

class Writer {
public:
    /// Opens `path` for a new trace, or to append to one (resume) after its last complete
    /// line or record. A journal starts with its header.
    Writer(const std::string& path, bool append, std::function<void(const std::string&)> warn,
           Encoding encoding = Encoding::jsonl);
    /// Appends each line to `*sink` instead of a file (the PostgreSQL engine's history,
    /// which its decider stores with the tasks it schedules).
    explicit Writer(std::string* sink) : sink_(sink) {}
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    bool ok() const { return fd_ >= 0 || sink_; }

    // The line being built. Keys are string literals, so their copies are fixed-size moves;
    // a field checks the room it needs once.

    /// Starts an event line: {"t":...,"event":"name"
    template <std::size_t N>
    Writer& begin(const char (&event)[N]) {
        return begin(std::string_view(event, N - 1));
    }
    /// The same, for an event name chosen at run time.
    Writer& begin(std::string_view event);
    template <std::size_t N>
    Writer& field(const char (&k)[N], std::string_view value) {
        key(k);
        put_string(value);
        return *this;
    }
    template <std::size_t N>
    Writer& field(const char (&k)[N], const char* value) {
        return field(k, std::string_view(value));
    }
    template <std::size_t N>
    Writer& field(const char (&k)[N], std::int64_t value) {
        key(k);
        if (value < 0) *at_++ = '-';
        at_ = put_decimal(at_, value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value));
        return *this;
    }
    template <std::size_t N>
    Writer& field_bool(const char (&k)[N], bool value) {
        key(k);
        if (value)
            literal("true");
        else
            literal("false");
        return *this;
    }
    /// base64
    template <std::size_t N>
    Writer& field_bytes(const char (&k)[N], std::string_view bytes) {
        key(k);
        put_base64(bytes);
        return *this;
    }
    template <std::size_t N>
    Writer& field_list(const char (&k)[N], const std::vector<std::string>& values) {
        key(k);
        *at_++ = '[';
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i) put(',');
            put_string(values[i]);
        }
        put(']');
        return *this;
    }
    /// 16 hex digits.
    template <std::size_t N>
    Writer& field_hex(const char (&k)[N], std::uint64_t value) {
        key(k);
        *at_++ = '"';
        for (int shift = 60; shift >= 0; shift -= 4) *at_++ = "0123456789abcdef"[(value >> shift) & 15];
        *at_++ = '"';
        return *this;
    }
    /// A task id, written in place.
    template <std::size_t N>
    Writer& field_id(const char (&k)[N], const TaskId& task) {
        key(k);
        id(task);
        return *this;
    }
    /// A list of task ids, written in place: list_begin, then list_id for each, then list_end.
    template <std::size_t N>
    Writer& list_begin(const char (&k)[N]) {
        key(k);
        *at_++ = '[';
        first_item_ = true;
        return *this;
    }
    Writer& list_id(const TaskId& task) {
        if (!first_item_) put(',');
        first_item_ = false;
        id(task);
        return *this;
    }
    Writer& list_end() {
        put(']');
        return *this;
    }
    /// Ends the line and stores it.
    void end() {
        put('}');
        put('\n');
        store(buf_.data(), static_cast<std::size_t>(at_ - buf_.data()));
    }
    /// Appends `n` bytes (a whole line or record).
    void store(const char* data, std::size_t n) {
        if (sink_) {
            sink_->append(data, n);
            return;
        }
        if ((!map_ || size_ + n + stop_room > capacity_) && !reserve(n)) return;  // room is there but for growth
        std::memcpy(map_ + size_, data, n);
        size_ += n;
        if (cut_short_->load(std::memory_order_relaxed)) lost();
    }

    /// Stops tracing: the trace_stopped record (or line) saying why, one warning.
    void give_up(const std::string& why) {
        if (fd_ < 0) return;
        stopped(why);
        fail(why);
    }

    struct Guard;  // the mapping, as the SIGBUS handler knows it

private:
    void fail(const std::string& why);
    bool reserve(std::size_t n);
    void lost();                           // the file was cut short under the mapping (SIGBUS, caught)
    void stopped(const std::string& why);  // writes the trace_stopped line, in the room kept for it
    static constexpr std::size_t stop_room = 512;
    void close_file();

    int fd_ = -1;
    Guard* guard_ = nullptr;
    static const std::atomic<bool> never;
    const std::atomic<bool>* cut_short_ = &never;
    char* map_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;
    // Room for a key and a number, a literal or a hash after it.
    static constexpr std::size_t key_slack = 48;
    void room(std::size_t n) {
        if (static_cast<std::size_t>(end_ - at_) < n) grow(n);
    }
    void grow(std::size_t n);
    template <std::size_t N>
    void literal(const char (&s)[N]) {  // callers made room for it
        std::memcpy(at_, s, N - 1);
        at_ += N - 1;
    }
    template <std::size_t N>
    void key(const char (&k)[N]) {
        static_assert(N + 4 + 24 < key_slack, "a long key: give it its own room");
        room(key_slack);
        *at_++ = ',';
        *at_++ = '"';
        literal(k);
        *at_++ = '"';
        *at_++ = ':';
    }
    void put(char c) {
        room(1);
        *at_++ = c;
    }
    void id(const TaskId& task) {
        // names are checked at configuration ([A-Za-z0-9_.:-]) and prefixes are made of ids: nothing to escape
        room(task.max_size() + 2);
        *at_++ = '"';
        at_ = task.put(at_);
        *at_++ = '"';
    }
    void put_string(std::string_view s);
    void put_base64(std::string_view bytes);
    std::vector<char> buf_ = std::vector<char>(4096);
    char* at_ = nullptr;
    char* end_ = nullptr;
    bool first_item_ = true;
    std::string path_;
    std::function<void(const std::string&)> warn_;
    std::string* sink_ = nullptr;
    Encoding encoding_ = Encoding::jsonl;
};

}  // namespace flowy::detail::trace

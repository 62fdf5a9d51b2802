#include "trace/journal.hpp"

#include "trace/history.hpp"

#include <flowy/trace.hpp>

#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace flowy::detail::trace::journal {

// ---- CRC-32C (Castagnoli), by the SSE 4.2 instruction where the CPU has it ----

namespace {

std::array<std::uint32_t, 256> crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}

std::uint32_t crc_by_table(std::uint32_t c, const char* p, std::size_t n) {
    static const std::array<std::uint32_t, 256> table = crc_table();
    for (std::size_t i = 0; i < n; ++i) c = table[(c ^ static_cast<unsigned char>(p[i])) & 0xFF] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc_by_instruction(std::uint32_t c, const char* p, std::size_t n) {
    std::uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = static_cast<std::uint32_t>(c64);
    for (; n > 0; --n, ++p) c = __builtin_ia32_crc32qi(c, static_cast<unsigned char>(*p));
    return c;
}
const bool have_crc_instruction = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

std::uint32_t crc32c(const char* data, std::size_t n) {
#if defined(__x86_64__)
    if (have_crc_instruction) return ~crc_by_instruction(~0u, data, n);
#endif
    return ~crc_by_table(~0u, data, n);
}

namespace {

void put_u32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

/// Frames `payload` (of `type`) as a record: CRC, type, length, payload.
std::string framed(Type type, std::string_view payload) {
    std::string r(4, '\0');
    r += static_cast<char>(type);
    std::uint64_t n = payload.size();
    while (n >= 0x80) {
        r += static_cast<char>(n | 0x80);
        n >>= 7;
    }
    r += static_cast<char>(n);
    r += static_cast<char>(crc8(r.data() + 4, r.size() - 4));
    r += payload;
    put_u32(r.data(), crc32c(r.data() + 4, r.size() - 4));
    return r;
}

void append_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>(v | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

// ---- reading records ----

/// One record's place in the data, or why there is none there.
struct Framing {
    enum class Result { record, end, bad } result = Result::end;
    Type type{};
    std::string_view payload;
    std::size_t next = 0;  // where the next record starts
    std::size_t span = 0;  // where this record says it ends (bad: as far as it can be told)
    std::string why;
};

bool all_zero(std::string_view s) {
    return s.find_first_not_of('\0') == std::string_view::npos;
}

Framing frame_at(std::string_view data, std::size_t at) {
    Framing f;
    std::string_view rest = data.substr(at);
    if (rest.size() < 4 + 1 + 1 || (rest[4] == 0 && all_zero(rest))) {
        if (all_zero(rest)) return f;  // zeros reserved ahead of the writer: the end
        f.result = Framing::Result::bad;
        f.span = data.size();
        f.why = "a record cut short";
        return f;
    }
    f.result = Framing::Result::bad;
    std::uint64_t len = 0;
    std::size_t p = 5;
    for (int shift = 0;; shift += 7) {
        if (p >= rest.size() || shift > 28) {
            f.span = data.size();
            f.why = "a record cut short";
            return f;
        }
        auto b = static_cast<unsigned char>(rest[p++]);
        len |= std::uint64_t(b & 0x7F) << shift;
        if (!(b & 0x80)) break;
    }
    // The header's own check: a damaged type or length is not taken for a record cut short.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (p >= rest.size()) {
#else
    if (p >= rest.size() || static_cast<std::uint8_t>(rest[p]) != crc8(rest.data() + 4, p - 4)) {
#endif
        f.span = at + p + 1;
        f.why = "its header is damaged";
        return f;
    }
    ++p;
    if (len > max_payload || p + len > rest.size()) {
        f.span = data.size();  // cut short (a copy taken while the run wrote it): the end
        f.why = "its length (" + std::to_string(len) + " bytes) runs past the end of the file";
        return f;
    }
    f.span = at + p + len;
    auto type = static_cast<unsigned char>(rest[4]);
    if (type == 0 || type > last_type) {
        f.why = "unknown record type " + std::to_string(type);
        return f;
    }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // the fuzzer's mutations get past the checksum to the fields
    if (crc32c(rest.data() + 4, p - 4 + len) != get_u32(rest.data())) {
        f.why = "its checksum does not match (the record is damaged)";
        return f;
    }
#endif
    f.result = Framing::Result::record;
    f.type = static_cast<Type>(type);
    f.payload = rest.substr(p, len);
    f.next = f.span;
    return f;
}

/// A bad record is the torn last one when nothing but zeros follows where it ends (a
/// killed writer leaves part of its last record, and the zeros reserved after it).
bool torn(std::string_view data, const Framing& f) {
    return f.span >= data.size() || all_zero(data.substr(f.span));
}

}  // namespace

std::string header(std::uint32_t pid) {
    std::string h(magic, sizeof magic);
    h.resize(header_size);
    put_u32(h.data() + 8, encoding_version);
    put_u32(h.data() + 12, pid);
    return h;
}

std::string stopped_record(std::int64_t t, std::string_view reason) {
    std::string p;
    append_varint(p, static_cast<std::uint64_t>(t));
    append_varint(p, reason.size());
    p += reason;
    return framed(Type::trace_stopped, p);
}

bool end_of(int fd, std::size_t& end) {
    end = 0;
    struct stat st {};
    if (fstat(fd, &st) != 0) return false;
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        ssize_t r = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return false;
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    data.resize(got);
    if (!is_journal(data) || data.size() < header_size) return true;
    std::size_t at = header_size;
    for (;;) {
        Framing f = frame_at(data, at);
        if (f.result != Framing::Result::record) break;
        at = f.next;
    }
    end = at;
    return true;
}

// ---- decoding records into events ----

namespace {

using json::Value;

class Decoder {
public:
    Decoder(std::string_view data, const std::string& name, std::size_t record, std::size_t offset,
            std::vector<std::string>& symbols, std::int64_t& last_t)
        : data_(data), name_(name), record_(record), offset_(offset), symbols_(symbols), last_t_(last_t) {}

    [[noreturn]] void fail(const std::string& why) const {
        throw TraceError(
            name_ + ": record " + std::to_string(record_) + " (byte " + std::to_string(offset_) + "): " + why, record_);
    }

    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at_ >= data_.size()) fail("shorter than its fields");
            auto b = static_cast<unsigned char>(data_[at_++]);
            v |= std::uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("a number longer than 64 bits");
    }
    std::int64_t signed_varint() {
        std::uint64_t z = varint();
        return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
    }
    /// Bytes left in the record: a bound on how many fields it can still hold.
    std::size_t left() const { return data_.size() - at_; }
    std::uint8_t byte() {
        if (at_ >= data_.size()) fail("shorter than its fields");
        return static_cast<std::uint8_t>(data_[at_++]);
    }
    std::string_view text() {
        std::uint64_t n = varint();
        if (n > data_.size() - at_) fail("a string runs past the record's end");
        std::string_view s = data_.substr(at_, n);
        at_ += n;
        return s;
    }
    std::uint64_t fixed64() {
        if (data_.size() - at_ < 8) fail("shorter than its fields");
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(data_[at_ + i])) << (8 * i);
        at_ += 8;
        return v;
    }
    const std::string& symbol() {
        std::uint64_t i = varint();
        if (i >= symbols_.size()) fail("symbol " + std::to_string(i) + " is not defined");
        return symbols_[i];
    }
    /// A task id: frame, activity, call, attempt.
    std::string id() {
        TaskId t;
        t.frame = symbol();
        t.dependency = symbol();
        std::uint64_t call = varint(), attempt = varint();
        if (call > UINT32_MAX || attempt > UINT32_MAX) fail("a call or attempt number out of range");
        t.call = static_cast<std::uint32_t>(call);
        t.attempt = static_cast<std::uint32_t>(attempt);
        if (t.dependency.empty()) fail("a task id without an activity");
        last_ = t;
        return t.str();
    }
    void done() const {
        if (at_ != data_.size()) fail("longer than its fields");
    }
    std::int64_t delta_time() {
        last_t_ += signed_varint();
        return last_t_;
    }
    std::int64_t absolute_time() {
        last_t_ = static_cast<std::int64_t>(varint());
        return last_t_;
    }
    TaskId last_;  // the parts of the id read last (views into the symbols)

private:
    std::string_view data_;
    const std::string& name_;
    std::size_t record_, offset_;
    std::vector<std::string>& symbols_;
    std::int64_t& last_t_;
    std::size_t at_ = 0;
};

// Building an event's value, in the order TraceRecorder writes its fields.
struct Event {
    Value v;
    Event(std::int64_t t, const char* name) {
        v.kind = Value::Kind::object;
        v.keys.reserve(12);
        v.items.reserve(12);
        number("t", t);
        string("event", name);
    }
    Value& add(const char* key, Value::Kind kind) {
        v.keys.emplace_back(key);
        Value& x = v.items.emplace_back();
        x.kind = kind;
        return x;
    }
    void number(const char* key, std::int64_t n) { add(key, Value::Kind::number).number = static_cast<double>(n); }
    void string(const char* key, std::string_view s) { add(key, Value::Kind::string).text.assign(s); }
    void bytes(const char* key, std::string_view s) { add(key, Value::Kind::bytes).text.assign(s); }
    void boolean(const char* key, bool b) { add(key, Value::Kind::boolean).b = b; }
    void list(const char* key, Decoder& d) {
        Value& l = add(key, Value::Kind::array);
        std::uint64_t n = d.varint();
        l.items.reserve(std::min<std::uint64_t>(n, d.left() / 4));  // an id takes at least 4 bytes
        for (std::uint64_t i = 0; i < n; ++i) {
            Value& x = l.items.emplace_back();
            x.kind = Value::Kind::string;
            x.text = d.id();
        }
    }
};

/// The event a record of `type` is, as JSON Lines name it.
const char* event_name(Type type) {
    static const char* const names[] = {"",
                                        "run_started",
                                        "task_scheduled",
                                        "task_dispatched",
                                        "task_finished",
                                        "task_failed",
                                        "task_timed_out",
                                        "worker_crashed",
                                        "task_retried",
                                        "task_skipped",
                                        "ignored_failure",
                                        "child_started",
                                        "child_finished",
                                        "restarted",
                                        "run_finished",
                                        "run_failed",
                                        "trace_stopped",
                                        "symbol"};
    return names[static_cast<std::uint8_t>(type)];
}

std::string hex16(std::uint64_t v) {
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 15];
    return s;
}

}  // namespace

void decode(std::string_view data, const std::string& name,
            const std::function<void(const json::Value&, std::size_t, std::size_t)>& event,
            std::vector<std::string>& warnings) {
    if (!is_journal(data) || data.size() < header_size)
        throw TraceError(name + ": not a flowy journal (its header is missing or cut short)", 0);
    if (std::uint32_t v = get_u32(data.data() + 8); v != encoding_version)
        throw TraceError(name + ": journal encoding version " + std::to_string(v) + " (this flowy reads version " +
                             std::to_string(encoding_version) + ")",
                         0);
    std::vector<std::string> symbols{""};
    std::int64_t last_t = 0;
    std::size_t at = header_size, record = 0;
    for (;;) {
        Framing f = frame_at(data, at);
        if (f.result == Framing::Result::end) break;
        ++record;
        if (f.result == Framing::Result::bad) {
            if (torn(data, f)) {
                warnings.push_back(name + ": record " + std::to_string(record) + " (byte " + std::to_string(at) +
                                   ") is incomplete (the run was stopped while writing it); ignored");
                break;
            }
            throw TraceError(
                name + ": record " + std::to_string(record) + " (byte " + std::to_string(at) + "): " + f.why, record);
        }
        Decoder d(f.payload, name, record, at, symbols, last_t);
        std::size_t offset = at;
        at = f.next;
        switch (f.type) {
            case Type::symbol: {
                std::string_view s = d.text();
                d.done();
                symbols.emplace_back(s);
                continue;
            }
            case Type::run_started: {
                symbols.assign(1, "");
                Event e(d.absolute_time(), "run_started");
                e.number("version", static_cast<std::int64_t>(d.varint()));
                e.string("workflow", d.text());
                e.string("parameters", d.text());
                e.string("executor", d.text());
                e.number("workers", d.signed_varint());
                e.string("host", d.text());
                e.number("pid", d.signed_varint());
                e.string("time", d.text());
                e.boolean("resumed", d.byte() != 0);
                e.bytes("input", d.text());
                Value& l = e.add("activities", Value::Kind::array);
                for (std::uint64_t i = 0, n = d.varint(); i < n; ++i) {
                    Value& x = l.items.emplace_back();
                    x.kind = Value::Kind::string;
                    x.text = d.text();
                }
                d.done();
                event(e.v, record, offset);
                continue;
            }
            case Type::trace_stopped: {
                Event e(d.absolute_time(), "trace_stopped");
                e.string("reason", d.text());
                d.done();
                event(e.v, record, offset);
                continue;
            }
            default:
                break;
        }
        std::int64_t t = d.delta_time();
        Event e(t, event_name(f.type));
        switch (f.type) {
            case Type::task_scheduled: {
                e.string("id", d.id());
                TaskId id = d.last_;
                e.string("activity", id.dependency);
                e.number("call", id.call);
                e.string("frame", id.frame);
                std::uint8_t flags = d.byte();
                e.list("args", d);
                e.list("reads", d);
                if (flags & 1) e.list("after", d);
                if (flags & 2) e.string("name", d.text());
                break;
            }
            case Type::task_dispatched: {
                e.string("id", d.id());
                e.number("worker", d.signed_varint());
                e.number("pid", d.signed_varint());
                e.string("args_hash", hex16(d.fixed64()));
                break;
            }
            case Type::task_finished: {
                e.string("id", d.id());
                std::uint8_t flags = d.byte();
                if (flags & 8) e.boolean("cached", true);
                std::int64_t worker = 0, started = 0, ended = 0;
                if (flags & 1) worker = d.signed_varint();
                if (flags & 4) {
                    started = t + d.signed_varint();
                    ended = started + d.signed_varint();
                }
                if (flags & 1) {
                    e.number("worker", worker);
                    e.number("duration_us", flags & 4 ? ended - started : d.signed_varint());
                }
                if (flags & 2) {
                    e.string("host", d.text());
                    e.number("pid", d.signed_varint());
                }
                if (flags & 4) {
                    e.number("started_us", started);
                    e.number("ended_us", ended);
                }
                e.bytes("value", d.text());
                e.string("short", d.text());
                break;
            }
            case Type::task_failed:
            case Type::task_timed_out:
            case Type::worker_crashed: {
                e.string("id", d.id());
                e.string("message", d.text());
                e.string("type", d.text());
                e.string("origin", d.text());
                std::uint8_t flags = d.byte();
                if (flags & 1) e.bytes("detail", d.text());
                if (flags & 2) {
                    std::int64_t started = t + d.signed_varint();
                    e.number("started_us", started);
                    e.number("ended_us", started + d.signed_varint());
                }
                if (flags & 4) e.number("worker", d.signed_varint());
                if (flags & 8) {
                    e.string("host", d.text());
                    e.number("pid", d.signed_varint());
                }
                break;
            }
            case Type::task_retried: {
                e.string("id", d.id());
                e.string("next", d.id());
                e.number("delay_ms", d.signed_varint());
                break;
            }
            case Type::task_skipped: {
                e.string("id", d.id());
                e.string("input", d.text());
                e.string("message", d.text());
                break;
            }
            case Type::ignored_failure: {
                e.string("id", d.id());
                e.string("message", d.text());
                break;
            }
            case Type::child_started: {
                e.string("id", d.id());
                break;
            }
            case Type::child_finished: {
                e.string("id", d.id());
                e.boolean("ok", d.byte() != 0);
                break;
            }
            case Type::restarted: {
                e.string("frame", d.symbol());
                e.number("incarnation", d.signed_varint());
                e.list("args", d);
                break;
            }
            case Type::run_finished: {
                e.bytes("value", d.text());
                e.string("short", d.text());
                if (d.byte() != 0) {
                    e.string("from", d.id());
                } else {
                    e.string("from", "");
                    e.list("reads", d);
                }
                break;
            }
            case Type::run_failed: {
                e.string("message", d.text());
                e.string("type", d.text());
                e.string("origin", d.text());
                e.boolean("cancelled", d.byte() != 0);
                break;
            }
            default:
                d.fail("unknown record type");
        }
        d.done();
        event(e.v, record, offset);
    }
}

void append_line(std::string& out, const json::Value& v) {
    switch (v.kind) {
        case Value::Kind::null:
            out += "null";
            break;
        case Value::Kind::boolean:
            out += v.b ? "true" : "false";
            break;
        case Value::Kind::number: {
            char digits[32];
            if (!(v.number >= -9.2e18 && v.number <= 9.2e18)) {  // not a trace's, but written as it is
                out.append(digits, static_cast<std::size_t>(std::snprintf(digits, sizeof digits, "%.17g", v.number)));
                break;
            }
            char* p = digits;
            auto n = static_cast<std::int64_t>(v.number);
            if (n < 0) *p++ = '-';
            p = put_decimal(p, n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n));
            out.append(digits, p);
            break;
        }
        case Value::Kind::string:
            append_json_string(out, v.text);
            break;
        case Value::Kind::bytes:
            out += '"';
            append_base64(out, v.text);
            out += '"';
            break;
        case Value::Kind::array:
            out += '[';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i) out += ',';
                append_line(out, v.items[i]);
            }
            out += ']';
            break;
        case Value::Kind::object:
            out += '{';
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i) out += ',';
                append_json_string(out, v.keys[i]);
                out += ':';
                append_line(out, v.items[i]);
            }
            out += '}';
            break;
    }
}

// ---- the recorder ----

JournalRecorder::JournalRecorder(const std::string& path, bool append, std::function<void(const std::string&)> warn)
    : w_(path, append, std::move(warn), Encoding::journal) {
    symbols_.emplace_back();
}

void JournalRecorder::grow(std::size_t n) {
    std::size_t used = static_cast<std::size_t>(at_ - buf_.data());
    buf_.resize(std::max(buf_.size() * 2, used + n + 64));
    at_ = buf_.data() + used;
    end_ = buf_.data() + buf_.size();
}

void JournalRecorder::begin(Type type) {
    at_ = buf_.data() + max_record_header;  // the payload; the header goes in front of it at end()
    end_ = buf_.data() + buf_.size();
    buf_[max_record_header - 1] = static_cast<char>(type);  // moved into place at end()
}

void JournalRecorder::end() {
    char* payload = buf_.data() + max_record_header;
    auto n = static_cast<std::uint64_t>(at_ - payload);
    if (n > max_payload) {  // a reader would take it for damage
        w_.give_up("an event of " + std::to_string(n) + " bytes (a value over 1 GiB) is more than a journal records");
        return;
    }
    char len[5];
    int k = 0;
    for (std::uint64_t v = n; k == 0 || v; v >>= 7) len[k++] = static_cast<char>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
    char type = buf_[max_record_header - 1];
    char* start = payload - k - 2 - 4;
    start[4] = type;
    std::memcpy(start + 5, len, static_cast<std::size_t>(k));
    start[5 + k] = static_cast<char>(crc8(start + 4, static_cast<std::size_t>(k) + 1));
    put_u32(start, crc32c(start + 4, static_cast<std::size_t>(at_ - start - 4)));
    w_.store(start, static_cast<std::size_t>(at_ - start));
}

void JournalRecorder::text(std::string_view s) {
    varint(s.size());
    room(s.size());
    std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
}

void JournalRecorder::fixed64(std::uint64_t v) {
    room(8);
    if constexpr (std::endian::native != std::endian::little) v = __builtin_bswap64(v);
    std::memcpy(at_, &v, 8);
    at_ += 8;
}

// A new symbol is a record of its own, stored at once: before the record being built.
std::uint32_t JournalRecorder::symbol(std::string_view s) {
    if (s.empty()) return 0;
    if (const std::string& last = symbols_[recent_.empty() ? 0 : recent_.front()];
        last.size() == s.size() && std::memcmp(last.data(), s.data(), s.size()) == 0)
        return recent_.front();
    for (std::size_t i = 0; i < recent_.size(); ++i) {
        const std::string& known = symbols_[recent_[i]];
        if (known.size() == s.size() && std::memcmp(known.data(), s.data(), s.size()) == 0) {
            std::uint32_t hit = recent_[i];
            if (i)
                std::rotate(recent_.begin(), recent_.begin() + static_cast<std::ptrdiff_t>(i),
                            recent_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
            return hit;
        }
    }
    std::uint32_t index;
    auto it = by_text_.find(std::string(s));
    if (it != by_text_.end()) {
        index = it->second;
    } else {
        index = static_cast<std::uint32_t>(symbols_.size());
        symbols_.emplace_back(s);
        by_text_.emplace(std::string(s), index);
        std::string p;
        append_varint(p, s.size());
        p += s;
        std::string r = framed(Type::symbol, p);
        w_.store(r.data(), r.size());
    }
    recent_.insert(recent_.begin(), index);
    if (recent_.size() > 4) recent_.pop_back();
    return index;
}

void JournalRecorder::ref(const TaskId& task) {
    std::uint32_t frame = symbol(task.frame, frame_seen_), dependency = symbol(task.dependency, dependency_seen_);
    varint(frame);
    varint(dependency);
    varint(task.call);
    varint(task.attempt);
}

void JournalRecorder::ids(const TaskList& list) {
    // The count goes first. One pass: a byte is kept for it, and a count of 128 or more
    // (a longer varint) moves the ids along.
    room(1);
    std::size_t count_at = static_cast<std::size_t>(at_ - buf_.data());
    ++at_;
    std::uint64_t n = 0;
    list.for_each([this, &n](const TaskId& t) {
        ref(t);
        ++n;
    });
    if (n < 0x80) {
        buf_[count_at] = static_cast<char>(n);
        return;
    }
    char count[10];
    std::size_t k = 0;
    for (std::uint64_t v = n; v >= 0x80; v >>= 7) count[k++] = static_cast<char>(v | 0x80);
    count[k] = static_cast<char>(n >> (7 * k));
    ++k;
    room(k - 1);
    char* from = buf_.data() + count_at + 1;
    std::memmove(from + k - 1, from, static_cast<std::size_t>(at_ - from));
    std::memcpy(buf_.data() + count_at, count, k);
    at_ += k - 1;
}

void JournalRecorder::run_started(const RunStart& run) {
    symbols_.assign(1, std::string());
    by_text_.clear();
    recent_.clear();
    frame_seen_ = dependency_seen_ = {};
    RunPlace here = here_and_now();
    begin(Type::run_started);
    now_ = last_t_ = now_us();
    reuse_ = 0;
    varint(static_cast<std::uint64_t>(last_t_));
    varint(static_cast<std::uint64_t>(format_version));
    text(run.workflow);
    text(run.parameters);
    text(run.executor);
    signed_varint(run.workers);
    text(here.host);
    signed_varint(getpid());
    text(here.time);
    u8(run.resumed ? 1 : 0);
    text(run.input);
    varint(run.activities.size());
    for (const std::string& a : run.activities) text(a);
    end();
}

void JournalRecorder::task_scheduled(const TaskId& task, const Scheduled& call) {
    begin(Type::task_scheduled);
    reuse_ = 0;  // the body ran since the last event
    stamp();
    ref(task);
    u8((call.after.empty() ? 0 : 1) | (call.name.empty() ? 0 : 2));
    ids(call.args);
    ids(call.reads);
    if (!call.after.empty()) ids(call.after);
    if (!call.name.empty()) text(call.name);
    end();
}

void JournalRecorder::task_dispatched(const TaskId& task, const WorkerRef& worker, std::string_view args) {
    begin(Type::task_dispatched);
    stamp();
    ref(task);
    signed_varint(worker.index);
    signed_varint(worker.pid);
    fixed64(args_hash(args));
    end();
}

void JournalRecorder::task_finished(const TaskId& task, const ValueRef& value, const WorkerRef& worker,
                                    const RunTimes& times) {
    begin(Type::task_finished);
    std::int64_t t = stamp();
    ref(task);
    bool timed = times.ended_us > 0;
    u8(1 | (worker.host.empty() ? 0 : 2) | (timed ? 4 : 0));
    signed_varint(worker.index);
    if (timed) {
        signed_varint(times.started_us - t);
        signed_varint(times.ended_us - times.started_us);
    } else {
        signed_varint(times.ended_us - times.started_us);
    }
    if (!worker.host.empty()) {
        text(worker.host);
        signed_varint(worker.pid);
    }
    text(value.bytes);
    text(value.short_form());
    end();
}

void JournalRecorder::task_cached(const TaskId& task, const ValueRef& value) {
    begin(Type::task_finished);
    stamp();
    ref(task);
    u8(8);
    text(value.bytes);
    text(value.short_form());
    end();
}

void JournalRecorder::failure(Type type, const TaskId& task, const ErrorInfo& error, const WorkerRef& worker,
                              const RunTimes* times) {
    begin(type);
    std::int64_t t = stamp();
    ref(task);
    text(error.message);
    text(error.type);
    text(error.task);
    bool timed = times && times->ended_us > 0;
    u8((error.detail.empty() ? 0 : 1) | (timed ? 2 : 0) | (worker.index >= 0 ? 4 : 0) | (worker.host.empty() ? 0 : 8));
    if (!error.detail.empty()) text(error.detail);
    if (timed) {
        signed_varint(times->started_us - t);
        signed_varint(times->ended_us - times->started_us);
    }
    if (worker.index >= 0) signed_varint(worker.index);
    if (!worker.host.empty()) {
        text(worker.host);
        signed_varint(worker.pid);
    }
    end();
}

void JournalRecorder::task_skipped(const TaskId& task, const ErrorInfo& because) {
    begin(Type::task_skipped);
    stamp();
    ref(task);
    text(because.task);
    text(because.message);
    end();
}

void JournalRecorder::task_retried(const TaskId& failed, const TaskId& next, std::chrono::milliseconds delay) {
    begin(Type::task_retried);
    stamp();
    ref(failed);
    ref(next);
    signed_varint(delay.count());
    end();
}

void JournalRecorder::child_started(const TaskId& task) {
    begin(Type::child_started);
    stamp();
    ref(task);
    end();
}

void JournalRecorder::child_finished(const TaskId& task, const ValueRef& value) {
    begin(Type::child_finished);
    stamp();
    ref(task);
    u8(1);
    end();
    begin(Type::task_finished);
    stamp();
    ref(task);
    u8(0);
    text(value.bytes);
    text(value.short_form());
    end();
}

void JournalRecorder::child_failed(const TaskId& task, const ErrorInfo& error) {
    begin(Type::child_finished);
    stamp();
    ref(task);
    u8(0);
    end();
    failure(Type::task_failed, task, error, WorkerRef{});
}

void JournalRecorder::restarted(std::string_view frame, int incarnation, const TaskList& args) {
    begin(Type::restarted);
    stamp();
    varint(symbol(frame));
    signed_varint(incarnation);
    ids(args);
    end();
}

void JournalRecorder::failure_ignored(const TaskId& task, std::string_view message) {
    begin(Type::ignored_failure);
    reuse_ = 0;  // after the workers were stopped
    stamp();
    ref(task);
    text(message);
    end();
}

void JournalRecorder::run_finished(const ValueRef& value, const TaskId* from, const TaskList& reads) {
    begin(Type::run_finished);
    reuse_ = 0;  // after the workers were stopped
    stamp();
    text(value.bytes);
    text(value.short_form());
    u8(from ? 1 : 0);
    if (from)
        ref(*from);
    else
        ids(reads);
    end();
}

void JournalRecorder::run_failed(const ErrorInfo& error, bool cancelled) {
    begin(Type::run_failed);
    reuse_ = 0;  // after the workers were stopped
    stamp();
    text(error.message);
    text(error.type);
    text(error.task);
    u8(cancelled ? 1 : 0);
    end();
}

}  // namespace flowy::detail::trace::journal

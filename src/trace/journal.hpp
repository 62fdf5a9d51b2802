#pragma once
// The run journal: the trace as binary records (docs/trace-format.md, "The journal").
// Each record carries its length and a CRC-32C, so a reader finds a torn or damaged
// record exactly; task ids are written as their parts, with frame and activity names
// written once per run; times are deltas and values their encoded bytes. The records
// are the JSON Lines events one for one: JournalRecorder writes what TraceRecorder
// writes, and the reader decodes a record into the same JSON value a line parses to.

#include "common/recorder.hpp"
#include "trace/json.hpp"
#include "trace/writer.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowy::detail::trace::journal {

/// The file's first 8 bytes; then the encoding's version (u32 little-endian) and the pid
/// of the process that last opened it for writing (u32).
inline constexpr char magic[8] = {'\x89', 'f', 'l', 'o', 'w', 'y', '\r', '\n'};
inline constexpr std::size_t header_size = 16;
inline constexpr std::uint32_t encoding_version = 1;
/// A record's header: CRC-32C of the rest (4 bytes), type (1), payload length (varint, at
/// most 5), CRC-8 of type and length (1).
inline constexpr std::size_t max_record_header = 11;
/// Longer payloads are damage, not records (a value is at most 1 GiB).
inline constexpr std::uint64_t max_payload = std::uint64_t(1) << 30;

enum class Type : std::uint8_t {
    run_started = 1,
    task_scheduled,
    task_dispatched,
    task_finished,
    task_failed,
    task_timed_out,
    worker_crashed,
    task_retried,
    task_skipped,
    ignored_failure,
    child_started,
    child_finished,
    restarted,
    run_finished,
    run_failed,
    trace_stopped,
    symbol,  // defines the run's next symbol (a frame or an activity name); not an event
};
inline constexpr std::uint8_t last_type = static_cast<std::uint8_t>(Type::symbol);

std::uint32_t crc32c(const char* data, std::size_t n);
/// CRC-8 (polynomial 0x07): a header's check, which finds any one damaged byte. Inline:
/// a header is two or three bytes, and every record has one.
inline constexpr std::array<std::uint8_t, 256> crc8_table = [] {
    std::array<std::uint8_t, 256> t{};
    for (int i = 0; i < 256; ++i) {
        auto c = static_cast<std::uint8_t>(i);
        for (int k = 0; k < 8; ++k) c = static_cast<std::uint8_t>(c & 0x80 ? (c << 1) ^ 0x07 : c << 1);
        t[static_cast<std::size_t>(i)] = c;
    }
    return t;
}();
inline std::uint8_t crc8(const char* data, std::size_t n) {
    std::uint8_t c = 0;
    for (std::size_t i = 0; i < n; ++i) c = crc8_table[c ^ static_cast<std::uint8_t>(data[i])];
    return c;
}

/// Whether `text` starts as a journal does.
inline bool is_journal(std::string_view text) {
    return text.size() >= sizeof magic && std::string_view(text.data(), sizeof magic) == std::string_view(magic, 8);
}

/// The file header: the magic, the encoding version and `pid`.
std::string header(std::uint32_t pid);
/// A whole trace_stopped record (its time absolute: the writer adds it where it stops).
std::string stopped_record(std::int64_t t, std::string_view reason);

/// Where the last complete record of the journal open on `fd` ends (after the header);
/// 0 if the file holds no header. A torn record and anything after it are not counted.
/// Returns false if the file cannot be read.
bool end_of(int fd, std::size_t& end);

/// Decodes a journal: calls `event` with each event, as the JSON value its line in JSON
/// Lines parses to (values as Kind::bytes, not base64), with the record's number (from
/// 1) and byte offset. Throws flowy::TraceError naming the offset of a damaged record;
/// a torn last record (a run killed while writing it) is left out with a warning.
void decode(std::string_view data, const std::string& name,
            const std::function<void(const json::Value& event, std::size_t record, std::size_t offset)>& event,
            std::vector<std::string>& warnings);

/// Writes `event` as one line of JSON Lines (Kind::bytes as base64), ending in a newline.
void append_line(std::string& out, const json::Value& event);

/// The recorder of the run journal: what TraceRecorder writes, as records.
class JournalRecorder final : public Recorder {
public:
    /// Opens `path` for a new journal, or to append to one (`append`: resume).
    JournalRecorder(const std::string& path, bool append, std::function<void(const std::string&)> warn);

    void run_started(const RunStart& run) override;
    void task_scheduled(const TaskId& task, const Scheduled& call) override;
    void task_dispatched(const TaskId& task, const WorkerRef& worker, std::string_view args) override;
    void task_finished(const TaskId& task, const ValueRef& value, const WorkerRef& worker,
                       const RunTimes& times) override;
    void task_cached(const TaskId& task, const ValueRef& value) override;
    void task_failed(const TaskId& task, const ErrorInfo& error, const RunTimes& times,
                     const WorkerRef& worker) override {
        failure(Type::task_failed, task, error, worker, &times);
    }
    void task_timed_out(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) override {
        failure(Type::task_timed_out, task, error, worker);
    }
    void worker_crashed(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) override {
        failure(Type::worker_crashed, task, error, worker);
    }
    void task_skipped(const TaskId& task, const ErrorInfo& because) override;
    void task_retried(const TaskId& failed, const TaskId& next, std::chrono::milliseconds delay) override;
    void child_started(const TaskId& task) override;
    void child_finished(const TaskId& task, const ValueRef& value) override;
    void child_failed(const TaskId& task, const ErrorInfo& error) override;
    void restarted(std::string_view frame, int incarnation, const TaskList& args) override;
    void failure_ignored(const TaskId& task, std::string_view message) override;
    void run_finished(const ValueRef& value, const TaskId* from, const TaskList& reads) override;
    void run_failed(const ErrorInfo& error, bool cancelled) override;
    void tick(std::size_t, std::size_t) override {}
    void woke() override { reuse_ = 0; }

private:
    void failure(Type type, const TaskId& task, const ErrorInfo& error, const WorkerRef& worker,
                 const RunTimes* times = nullptr);
    // The record being built: begin, fields, end.
    void begin(Type type);
    void end();
    void room(std::size_t n) {
        if (static_cast<std::size_t>(end_ - at_) < n) grow(n);
    }
    void grow(std::size_t n);
    void u8(std::uint8_t v) {
        room(1);
        *at_++ = static_cast<char>(v);
    }
    void varint(std::uint64_t v) {
        room(10);
        while (v >= 0x80) {
            *at_++ = static_cast<char>(v | 0x80);
            v >>= 7;
        }
        *at_++ = static_cast<char>(v);
    }
    void signed_varint(std::int64_t v) {
        varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    /// Writes the event's time, as the time since the previous event; returns it. The
    /// clock (27 ns a reading on this VM's kvm-clock, a fifth of what tracing costs a task)
    /// is read for a task's scheduling (the body may have run for long), after every wait
    /// for the executor, and at least every `reuse_for` events; the events in between
    /// (dispatches and completions handled one after the other) share a reading.
    std::int64_t stamp() {
        if (reuse_-- <= 0) {
            now_ = std::max(now_us(), last_t_);
            reuse_ = reuse_for;
        }
        signed_varint(now_ - last_t_);
        last_t_ = now_;
        return now_;
    }
    static constexpr int reuse_for = 7;
    int reuse_ = 0;
    std::int64_t now_ = 0;
    void text(std::string_view s);
    void fixed64(std::uint64_t v);
    void ref(const TaskId& task);
    void ids(const TaskList& list);
    std::uint32_t symbol(std::string_view s);
    /// A task id's part as a symbol, remembered by where its text lies: a run's task ids
    /// view its frames' prefixes and its bindings' names, which stay put while it runs
    /// (the cache is cleared when a run starts), so most lookups compare two pointers.
    struct Seen {
        const char* data = nullptr;
        std::size_t size = 0;
        std::uint32_t index = 0;
    };
    std::uint32_t symbol(std::string_view s, Seen& seen) {
        if (s.data() == seen.data && s.size() == seen.size) return seen.index;
        seen = {s.data(), s.size(), symbol(s)};
        return seen.index;
    }
    Seen frame_seen_, dependency_seen_;

    Writer w_;
    std::int64_t last_t_ = 0;
    std::vector<char> buf_ = std::vector<char>(4096);
    char* at_ = nullptr;
    char* end_ = nullptr;
    std::vector<std::string> symbols_;  // by index; 0 is ""
    std::unordered_map<std::string, std::uint32_t> by_text_;
    std::vector<std::uint32_t> recent_;  // indices of the last symbols looked up, newest first
    std::string symbol_record_;
};

}  // namespace flowy::detail::trace::journal

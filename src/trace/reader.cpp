// Reading a trace back: every line is checked (JSON, version, fields, order), and a
// problem is reported with the line and the reason, never a crash.

#include <flowy/trace.hpp>

#include <sys/mman.h>
#include <sys/stat.h>

#include "common/task_id.hpp"
#include "trace/history.hpp"
#include "trace/journal.hpp"
#include "trace/json.hpp"
#include "trace/writer.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace flowy {

namespace {

using detail::json::Value;

/// Asks for transparent huge pages where the kernel gives them on request (Debian's
/// default, "madvise"): a table of a million tasks is 540 MB, and faulting it in 4 KiB
/// pages took a quarter of a tool's time on a VM (one fault per page; 512 times fewer).
void huge_pages(void* p, std::size_t bytes) {
    constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
    auto from = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) & ~(huge - 1);
    auto to = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(huge - 1);
    if (to > from) madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE);  // a hint: failure is harmless
}

class Reader {
public:
    Reader(std::string name, std::vector<TraceRun>& runs, std::vector<TraceTask>& tasks,
           std::vector<TraceRestart>& restarts, std::vector<std::string>& warnings, std::vector<std::string>& ignored,
           detail::History* history = nullptr)
        : name_(std::move(name)),
          runs_(runs),
          tasks_(tasks),
          restarts_(restarts),
          warnings_(warnings),
          ignored_(ignored),
          history_(history) {}

    /// A trace of `bytes` is coming: room for as many tasks as it can hold (at least
    /// about 300 bytes each), so that nothing is moved as the tables grow. Room not used
    /// is never touched, so it costs no memory.
    void expect(std::size_t bytes) {
        std::size_t most = bytes / 300;
        tasks_.reserve(tasks_.size() + most);
        huge_pages(tasks_.data(), tasks_.capacity() * sizeof(TraceTask));
    }

    /// Also writes every event read to `*out` as a line of JSON Lines (export).
    void copy_to(std::string* out) { jsonl_ = out; }

    /// Complete lines, each ending in a newline.
    void lines(std::string_view text) {
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t nl = text.find('\n', pos);
            std::string_view line = text.substr(pos, nl - pos);
            ++line_;
            pos = nl + 1;
            if (line.empty()) fail("empty line");
            Value v;
            std::string why;
            if (!detail::json::parse(line, v, why)) fail("bad JSON: " + why);
            event(v);
            if (jsonl_) jsonl_->append(line.data(), line.size() + 1);
        }
    }

    /// A whole journal (src/trace/journal.hpp).
    void journal(std::string_view data) {
        expect(data.size() * 6);  // a journal takes a sixth of the bytes of JSON Lines or less
        detail::trace::journal::decode(
            data, name_,
            [this](const Value& v, std::size_t record, std::size_t offset) {
                line_ = record;
                offset_ = offset;
                event(v);
                if (jsonl_) {
                    detail::trace::journal::append_line(*jsonl_, v);
                    *jsonl_ += '\n';
                }
            },
            warnings_);
        if (runs_.empty()) throw TraceError(name_ + ": no run in the trace (an empty journal?)", 0);
        finish();
    }

    /// The rest of the trace, to its end.
    void read(std::string_view text) {
        // A run killed while writing leaves zeros after its last line (the file was reserved ahead).
        while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
        if (std::size_t cut = text.rfind('\n'); cut != std::string_view::npos) {
            lines(text.substr(0, cut + 1));
            text.remove_prefix(cut + 1);
        }
        if (!text.empty()) {
            ++line_;
            Value v;
            std::string why;
            if (!detail::json::parse(text, v, why)) {  // no newline after it: the writer was stopped in it
                warnings_.push_back(name_ + ":" + std::to_string(line_) +
                                    ": the last line is incomplete (the run was stopped while writing it); ignored");
            } else {
                warnings_.push_back(name_ + ":" + std::to_string(line_) + ": the last line has no newline");
                event(v);
                if (jsonl_) *jsonl_ += std::string(text) + "\n";
            }
        }
        if (runs_.empty()) throw TraceError(name_ + ": no run in the trace (an empty file?)", 0);
        finish();
    }

private:
    [[noreturn]] void fail(const std::string& why) {
        if (offset_ != npos)  // a journal: records, by number and where they start
            throw TraceError(
                name_ + ": record " + std::to_string(line_) + " (byte " + std::to_string(offset_) + "): " + why, line_);
        throw TraceError(name_ + ":" + std::to_string(line_) + ": " + why, line_);
    }
    const Value& need(const Value& v, const char* key, Value::Kind kind) {
        const Value* f = v.get(key);
        if (!f) fail(std::string("missing field \"") + key + "\"");
        if (f->kind != kind) fail(std::string("field \"") + key + "\" has the wrong type");
        return *f;
    }
    std::string str(const Value& v, const char* key) { return need(v, key, Value::Kind::string).text; }
    std::int64_t num(const Value& v, const char* key) {
        double d = need(v, key, Value::Kind::number).number;
        if (!(d >= -9.2e18 && d <= 9.2e18)) fail(std::string("field \"") + key + "\" is out of range");
        return static_cast<std::int64_t>(d);
    }
    std::string opt_str(const Value& v, const char* key) {
        const Value* f = v.get(key);
        if (!f) return {};
        if (f->kind != Value::Kind::string) fail(std::string("field \"") + key + "\" has the wrong type");
        return f->text;
    }
    std::vector<std::string> list(const Value& v, const char* key) {
        std::vector<std::string> out;
        const Value& l = need(v, key, Value::Kind::array);
        out.reserve(l.items.size());
        for (const Value& i : l.items) {
            if (i.kind != Value::Kind::string) fail(std::string("field \"") + key + "\" holds a non-string");
            out.push_back(i.text);
        }
        return out;
    }
    std::string bytes(const Value& v, const char* key, bool optional = false) {
        if (const Value* f = v.get(key); f && f->kind == Value::Kind::bytes) return f->text;  // a journal's
        std::string out;
        if (!detail::trace::unbase64(optional ? opt_str(v, key) : str(v, key), out))
            fail(std::string("field \"") + key + "\" is not base64");
        return out;
    }

    TraceTask& task(const std::string& id) {
        std::size_t at = by_id_.find(id);
        if (at == detail::TaskIndex::none) fail("task " + id + " was not scheduled before this event");
        return tasks_[at];
    }
    TraceRun& run() {
        if (runs_.empty()) fail("an event before run_started");
        return runs_.back();
    }

    void event(const Value& v) {
        if (v.kind != Value::Kind::object) fail("not a JSON object");
        std::int64_t t = num(v, "t");
        std::string e = str(v, "event");
        if (e != "run_started" && t < last_t_) fail("events out of order (time goes back)");
        last_t_ = std::max(last_t_, t);

        if (e == "run_started") {
            std::int64_t version = num(v, "version");
            if (version < detail::trace::oldest_format_version || version > detail::trace::format_version)
                fail("unknown trace format version " + std::to_string(version) + " (this flowy reads versions " +
                     std::to_string(detail::trace::oldest_format_version) + " to " +
                     std::to_string(detail::trace::format_version) + ")");
            if (!runs_.empty() && runs_.back().outcome == TraceRun::Outcome::running)
                close_run(TraceRun::Outcome::failed, "the run was stopped before it finished (killed?)");
            TraceRun r;
            r.workflow = str(v, "workflow");
            if (history_ && runs_.empty()) {
                history_->workflow = r.workflow;
                history_->parameters = opt_str(v, "parameters");  // since 0.1: older traces lack it
            }
            r.executor = str(v, "executor");
            r.workers = num(v, "workers");
            r.host = str(v, "host");
            r.pid = num(v, "pid");
            r.time = str(v, "time");
            r.resumed = need(v, "resumed", Value::Kind::boolean).b;
            r.input = bytes(v, "input");
            if (v.get("activities"))
                for (const std::string& a : list(v, "activities"))
                    if (std::size_t colon = a.find(": "); colon != std::string::npos)
                        r.activities[a.substr(0, colon)] = a.substr(colon + 2);
            r.started_us = t;
            runs_.push_back(std::move(r));
            incarnation_.clear();
            last_t_ = t;
            batch_open_ = false;
            return;
        }
        TraceRun& r = run();
        if (r.outcome != TraceRun::Outcome::running) fail("an event after the run ended");
        if (e == "task_scheduled") {
            std::string id = str(v, "id");
            TraceTask tk;
            tk.id = tk.last_id = id;
            tk.activity = str(v, "activity");
            tk.call = num(v, "call");
            tk.frame = str(v, "frame");
            tk.args = list(v, "args");
            tk.reads = list(v, "reads");
            if (v.get("after")) tk.after = list(v, "after");  // optional: only calls with after(...) have it
            tk.name = opt_str(v, "name");
            tk.scheduled_us = t;
            tk.run = static_cast<int>(runs_.size()) - 1;
            tk.incarnation = incarnation_[tk.frame];
            std::optional<detail::TaskId> parsed = detail::TaskId::parse(id);
            if (!parsed || parsed->attempt != 0) fail("bad task id " + id + " (a task is scheduled as its attempt 0)");
            std::size_t me = by_id_.find(*parsed);
            if (me != detail::TaskIndex::none) {
                // scheduled again by a resume: the new run's record replaces the old one
                tasks_[me] = std::move(tk);
            } else {
                me = tasks_.size();
                by_id_.set(*parsed, me);
                tasks_.push_back(std::move(tk));
            }
            if (history_ && runs_.size() == 1) history_->calls[tasks_[me].frame].push_back(id);
            if (!tasks_[me].frame.empty()) {
                std::string_view frame = tasks_[me].frame;
                std::size_t parent = by_id_.find(frame.substr(0, frame.size() - 1));
                if (parent != detail::TaskIndex::none) tasks_[parent].child = true;
            }
        } else if (e == "task_dispatched") {
            TraceTask& tk = by_attempt(str(v, "id"));
            tk.last_id = str(v, "id");
            tk.state = TraceTask::State::running;
            if (tk.dispatched_us < 0) tk.dispatched_us = t;
            // attempts by their ids: a request taken back from a busy worker is dispatched again
            tk.attempts = std::max(tk.attempts, attempt_of(tk.last_id) + 1);
            tk.run_started_us = tk.run_ended_us = -1;
            tk.worker = num(v, "worker");
            tk.pid = num(v, "pid");
            std::string hex = str(v, "args_hash");
            std::uint64_t hash = 0;
            auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), hash, 16);
            if (ec != std::errc() || end != hex.data() + hex.size()) fail("field \"args_hash\" is not hexadecimal");
            if (history_) hashes_[tk.id] = hash;  // only resume compares them
            if (!batch_open_) ++batch_;
            batch_open_ = true;
            if (tk.batch < 0) tk.batch = batch_;
        } else if (e == "task_finished") {
            TraceTask& tk = by_attempt(str(v, "id"));
            tk.last_id = str(v, "id");
            tk.state = TraceTask::State::finished;
            tk.ended_us = t;
            run_times(v, tk);
            worker_of(v, tk);  // the worker that ran it (a thread pool's is known only now)
            tk.value = bytes(v, "value");
            tk.short_value = str(v, "short");
            const Value* c = v.get("cached");
            tk.cached = c && c->kind == Value::Kind::boolean && c->b;
            if (history_ && !tk.cached && !tk.child) {
                auto h = hashes_.find(tk.id);
                if (h != hashes_.end()) history_->finished[tk.id] = {tk.value, h->second};
            }
            // The first success counts: a resumed run's cached (and replayed child) results
            // took their places from the earlier run, not where its trace wrote them.
            if (history_) history_->finish_order.emplace(tk.id, ++history_->last_order);
            if (tk.cached && tk.dispatched_us < 0) tk.dispatched_us = t;
            batch_open_ = false;
        } else if (e == "task_failed" || e == "task_timed_out" || e == "worker_crashed") {
            TraceTask& tk = by_attempt(str(v, "id"));
            tk.last_id = str(v, "id");
            tk.state = e == "task_failed"      ? TraceTask::State::failed
                       : e == "task_timed_out" ? TraceTask::State::timed_out
                                               : TraceTask::State::crashed;
            tk.ended_us = t;
            run_times(v, tk);
            tk.message = str(v, "message");
            tk.error_type = str(v, "type");
            tk.detail = bytes(v, "detail", true);
            worker_of(v, tk);  // version 5: the worker it failed on
            batch_open_ = false;
        } else if (e == "task_retried") {
            TraceTask& tk = by_attempt(str(v, "id"));
            tk.last_id = str(v, "next");
            tk.state = TraceTask::State::scheduled;
        } else if (e == "task_skipped") {
            TraceTask& tk = task(str(v, "id"));
            tk.state = TraceTask::State::skipped;
            tk.ended_us = t;
            tk.because = str(v, "input");
            tk.message = str(v, "message");
        } else if (e == "ignored_failure") {
            task(str(v, "id"));
            ignored_.push_back(str(v, "id"));
        } else if (e == "child_started" || e == "child_finished") {
            TraceTask& tk = by_attempt(str(v, "id"));
            tk.child = true;
            if (e == "child_started") {
                tk.state = TraceTask::State::running;
                tk.dispatched_us = t;
                tk.attempts = std::max(tk.attempts, 1);
            }
        } else if (e == "restarted") {
            TraceRestart rs;
            rs.frame = str(v, "frame");
            rs.incarnation = static_cast<int>(num(v, "incarnation"));
            rs.args = list(v, "args");
            for (const auto& a : rs.args) task(a);
            incarnation_[rs.frame] = rs.incarnation;
            restarts_.push_back(std::move(rs));
        } else if (e == "trace_stopped") {
            r.trace_stopped = str(v, "reason");
        } else if (e == "run_finished") {
            r.short_value = str(v, "short");
            r.from = opt_str(v, "from");
            if (v.get("reads")) r.reads = list(v, "reads");
            close_run(TraceRun::Outcome::finished, {});
            r.ended_us = t;
        } else if (e == "run_failed") {
            r.message = str(v, "message");
            r.error_type = str(v, "type");
            r.from = opt_str(v, "origin");
            bool cancelled = need(v, "cancelled", Value::Kind::boolean).b;
            close_run(cancelled ? TraceRun::Outcome::cancelled : TraceRun::Outcome::failed, r.message);
            r.ended_us = t;
        } else {
            fail("unknown event \"" + e + "\"");
        }
    }

    /// The worker that ran the attempt, and its host and process when they are elsewhere,
    /// if the event names them.
    void worker_of(const Value& v, TraceTask& tk) {
        if (const Value* w = v.get("worker"); w && w->kind == Value::Kind::number && w->number >= 0)
            tk.worker = num(v, "worker");
        if (const Value* h = v.get("host"); h && h->kind == Value::Kind::string) {
            tk.host = str(v, "host");
            tk.pid = num(v, "pid");
        }
    }
    /// The worker's stamps of when the attempt ran, if the event has them (version 2).
    void run_times(const Value& v, TraceTask& tk) {
        if (!v.get("started_us") && !v.get("ended_us")) return;
        std::int64_t s = num(v, "started_us"), e = num(v, "ended_us");
        if (e < s) fail("field \"ended_us\" is before \"started_us\"");
        tk.run_started_us = s;
        tk.run_ended_us = e;
    }
    int attempt_of(const std::string& id) {
        std::optional<detail::TaskId> parsed = detail::TaskId::parse(id);
        if (!parsed) fail("bad task id " + id);
        return static_cast<int>(std::min<std::uint32_t>(parsed->attempt, 1u << 30));
    }

    /// The task an attempt id (`...-<attempt>`) belongs to.
    TraceTask& by_attempt(const std::string& id) {
        std::optional<detail::TaskId> parsed = detail::TaskId::parse(id);
        if (!parsed) fail("bad task id " + id);
        std::size_t at = by_id_.find(*parsed);
        if (at == detail::TaskIndex::none)
            fail("task " + parsed->first_attempt().str() + " was not scheduled before this event");
        return tasks_[at];
    }

    void close_run(TraceRun::Outcome o, const std::string& message) {
        TraceRun& r = runs_.back();
        r.outcome = o;
        if (r.message.empty()) r.message = message;
        if (r.ended_us < 0) r.ended_us = last_t_;
    }

    void finish() {
        if (runs_.back().outcome == TraceRun::Outcome::running) {
            if (!runs_.back().trace_stopped.empty())
                warnings_.push_back(name_ + ": the trace of the last run stopped before the run ended (" +
                                    runs_.back().trace_stopped +
                                    "); the run went on, and how it ended is not in the trace");
            else
                warnings_.push_back(name_ + ": the last run did not finish (stopped or killed): resume can finish it");
        }
        for (TraceTask& tk : tasks_) {
            if (tk.state == TraceTask::State::scheduled) tk.state = TraceTask::State::never_finished;
            if (tk.state == TraceTask::State::running) tk.state = TraceTask::State::interrupted;
        }
    }

    std::string name_;
    std::vector<TraceRun>& runs_;
    std::vector<TraceTask>& tasks_;
    std::vector<TraceRestart>& restarts_;
    std::vector<std::string>& warnings_;
    std::vector<std::string>& ignored_;
    detail::History* history_;
    detail::TaskIndex by_id_;
    std::unordered_map<std::string, std::uint64_t> hashes_;  // args hash of each task's last dispatch
    std::unordered_map<std::string, int> incarnation_;
    std::size_t line_ = 0;  // the line, or in a journal the record
    static constexpr std::size_t npos = std::size_t(-1);
    std::size_t offset_ = npos;  // in a journal: where the record starts
    std::string* jsonl_ = nullptr;
    std::int64_t last_t_ = 0;
    int batch_ = -1;
    bool batch_open_ = false;
};

}  // namespace

const char* to_string(TraceRun::Outcome outcome) noexcept {
    switch (outcome) {
        case TraceRun::Outcome::finished:
            return "finished";
        case TraceRun::Outcome::failed:
            return "failed";
        case TraceRun::Outcome::cancelled:
            return "cancelled";
        default:
            return "never finished";
    }
}

const char* to_string(TraceTask::State state) noexcept {
    switch (state) {
        case TraceTask::State::finished:
            return "finished";
        case TraceTask::State::failed:
            return "failed";
        case TraceTask::State::timed_out:
            return "timed out";
        case TraceTask::State::crashed:
            return "worker crashed";
        case TraceTask::State::skipped:
            return "skipped";
        case TraceTask::State::interrupted:
        case TraceTask::State::running:
            return "running when the run ended";
        case TraceTask::State::never_finished:
        case TraceTask::State::scheduled:
            break;
    }
    return "never started";
}

namespace {
/// Reads a whole trace from its text: a journal or JSON Lines, by its first bytes.
void read_text(Reader& reader, std::string_view text) {
    if (detail::trace::journal::is_journal(text))
        reader.journal(text);
    else
        reader.read(text);
}
}  // namespace

Trace Trace::parse(std::string_view text, const std::string& name) {
    Trace t;
    Reader reader(name, t.runs_, t.tasks_, t.restarts_, t.warnings_, t.ignored_);
    read_text(reader, text);
    t.source_text_.assign(text);
    t.source_name_ = name;
    return t;
}

namespace {
/// What a reader builds when only what it copies or gathers is wanted (JSON Lines, history).
struct Scratch {
    std::vector<TraceRun> runs;
    std::vector<TraceTask> tasks;
    std::vector<TraceRestart> restarts;
    std::vector<std::string> warnings, ignored;
    Reader reader(const std::string& name, detail::History* history = nullptr) {
        return Reader(name, runs, tasks, restarts, warnings, ignored, history);
    }
};

/// If the file at `path` is a journal, reads it whole into `data` (it is compact: under
/// 100 bytes a task) and returns true; false for any other file (TraceError if none).
bool read_journal(const std::string& path, std::string& data) {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw TraceError(path + ": a directory, not a trace", 0);
    std::ifstream f(path, std::ios::binary);
    if (!f) throw TraceError(path + ": cannot open the trace: " + std::strerror(errno), 0);
    char head[sizeof detail::trace::journal::magic] = {};
    f.read(head, sizeof head);
    if (!detail::trace::journal::is_journal(std::string_view(head, static_cast<std::size_t>(f.gcount())))) return false;
    std::size_t size = std::max<std::size_t>(static_cast<std::size_t>(st.st_size), sizeof head);
    data.reserve(size);
    huge_pages(data.data(), size);
    data.assign(head, sizeof head);
    data.resize(size);
    f.read(data.data() + sizeof head, static_cast<std::streamsize>(data.size() - sizeof head));
    data.resize(sizeof head + static_cast<std::size_t>(f.gcount()));
    return true;
}

/// Reads the trace at `path` into `reader` a few megabytes at a time, so that the text is
/// never held whole next to what is made of it (a 400 MB trace of a million tasks).
void read_trace(const std::string& path, Reader& reader) {
    if (std::string data; read_journal(path, data)) {
        reader.journal(data);
        return;
    }
    std::ifstream f(path, std::ios::binary);
    if (!f) throw TraceError(path + ": cannot open the trace: " + std::strerror(errno), 0);
    if (struct stat st{}; stat(path.c_str(), &st) == 0 && st.st_size > 0)
        reader.expect(static_cast<std::size_t>(st.st_size));
    constexpr std::size_t chunk = std::size_t(8) << 20;
    std::string pending;
    for (;;) {
        std::size_t had = pending.size();
        pending.resize(had + chunk);
        f.read(pending.data() + had, static_cast<std::streamsize>(chunk));
        pending.resize(had + static_cast<std::size_t>(f.gcount()));
        if (pending.size() == had) break;
        std::size_t cut = pending.rfind('\n');
        if (cut == std::string::npos) continue;  // a line longer than a chunk, or zeros
        reader.lines(std::string_view(pending).substr(0, cut + 1));
        pending.erase(0, cut + 1);
    }
    reader.read(pending);
}
}  // namespace

namespace {
/// The size and modification time of `path`, which tell that it changed.
std::pair<std::int64_t, std::int64_t> stamp_of(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return {-1, -1};
    return {st.st_size, std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}
}  // namespace

Trace Trace::load(const std::string& path) {
    Trace t;
    auto [size, mtime] = stamp_of(path);
    Reader reader(path, t.runs_, t.tasks_, t.restarts_, t.warnings_, t.ignored_);
    read_trace(path, reader);
    t.source_name_ = path;
    t.source_size_ = size;
    t.source_mtime_ = mtime;
    return t;
}

std::string Trace::jsonl() const {
    Scratch scratch;
    std::string out;
    Reader reader = scratch.reader(source_name_);
    reader.copy_to(&out);
    if (source_size_ < 0) {
        read_text(reader, source_text_);
        return out;
    }
    if (stamp_of(source_name_) != std::make_pair(source_size_, source_mtime_))
        throw TraceError(source_name_ + ": the trace changed since it was loaded; load it again", 0);
    read_trace(source_name_, reader);
    return out;
}

namespace {
/// An output file that appears whole or not at all: written beside `path` as
/// `path.partial` and renamed when committed; removed if it never is (an error on the
/// way, a damaged trace), so a file that was at `path` stays as it was. A path that is a
/// symbolic link or not a regular file (/dev/stdout, a pipe) is written in place: a
/// rename would replace the link or the device with a file.
class WholeFile {
public:
    explicit WholeFile(const std::string& path) : path_(path) {
        struct stat st {};
        bool in_place = (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) ||
                        (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode));
        if (!in_place) partial_ = path + ".partial";
        const std::string& to = in_place ? path_ : partial_;
        f_.open(to, std::ios::binary | std::ios::trunc);
        if (!f_) throw TraceError(to + ": cannot write: " + std::strerror(errno), 0);
    }
    ~WholeFile() {
        if (!committed_ && !partial_.empty()) std::remove(partial_.c_str());
    }
    WholeFile(const WholeFile&) = delete;
    WholeFile& operator=(const WholeFile&) = delete;
    void write(std::string_view text) { f_.write(text.data(), static_cast<std::streamsize>(text.size())); }
    void commit() {
        f_.close();
        if (!f_) throw TraceError((partial_.empty() ? path_ : partial_) + ": cannot write: " + std::strerror(errno), 0);
        if (!partial_.empty() && std::rename(partial_.c_str(), path_.c_str()) != 0)
            throw TraceError(path_ + ": cannot write: " + std::strerror(errno), 0);
        committed_ = true;
    }

private:
    std::string path_, partial_;  // partial_ empty: written in place
    std::ofstream f_;
    bool committed_ = false;
};

void write_text(const std::string& path, const std::string& text) {
    WholeFile f(path);
    f.write(text);
    f.commit();
}
}  // namespace

void Trace::write_jsonl(const std::string& path) const {
    write_text(path, jsonl());
}

std::vector<std::string> Trace::convert_to_jsonl(const std::string& trace, const std::string& out) {
    Scratch scratch;
    std::vector<std::string>& warnings = scratch.warnings;
    std::string text;
    if (std::string data; read_journal(trace, data)) {
        // Every record's checksum and fields are checked as it is decoded; what the
        // events mean is load()'s to check (a journal that flowy wrote is consistent).
        // The lines go out a few megabytes at a time: a million tasks are 400 MB of them.
        WholeFile f(out);
        constexpr std::size_t chunk = std::size_t(8) << 20;
        text.reserve(chunk + 4096);
        bool any = false;
        detail::trace::journal::decode(
            data, trace,
            [&](const Value& v, std::size_t, std::size_t) {
                detail::trace::journal::append_line(text, v);
                text += '\n';
                any = true;
                if (text.size() >= chunk) {
                    f.write(text);
                    text.clear();
                }
            },
            warnings);
        if (!any) throw TraceError(trace + ": no run in the trace (an empty journal?)", 0);
        f.write(text);
        f.commit();
        return warnings;
    } else {
        Reader reader = scratch.reader(trace);
        reader.copy_to(&text);
        read_trace(trace, reader);
    }
    write_text(out, text);
    return warnings;
}

namespace detail {

namespace {
/// The calls of the first run, in order per frame, and what succeeded in any run, from
/// what `feed` gives a reader.
template <class Feed>
History history(const std::string& path, Feed feed) {
    Scratch scratch;
    History h;
    Reader reader = scratch.reader(path, &h);
    feed(reader);
    h.input = scratch.runs.front().input;
    return h;
}
}  // namespace

History load_history(const std::string& path) {
    return history(path, [&](Reader& r) { read_trace(path, r); });
}

History history_of(std::string_view text, const std::string& path) {
    return history(path, [&](Reader& r) { read_text(r, text); });
}

}  // namespace detail
}  // namespace flowy

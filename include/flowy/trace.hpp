#pragma once
/// \file flowy::Trace: a recorded run, read back; its picture, timeline and summary.

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flowy {

/// A trace file that cannot be read: `what()` names the file, the line and the reason.
class TraceError : public std::runtime_error {
public:
    TraceError(const std::string& message, std::size_t line) : std::runtime_error(message), line_(line) {}
    /// The line (from 1) where reading failed; 0 when it is about the whole file.
    std::size_t line() const noexcept { return line_; }

private:
    std::size_t line_;
};

/// One task of a trace (all its attempts).
struct TraceTask {
    /// After reading: `never_finished` never started (the run ended before it was
    /// dispatched); `interrupted` was running (dispatched, or its child workflow started)
    /// when the run ended.
    enum class State { scheduled, running, finished, failed, timed_out, crashed, skipped, never_finished, interrupted };
    std::string id;       ///< of its first attempt, `<frame><dependency>-<call>-0`
    std::string last_id;  ///< of its last attempt
    std::string frame;    ///< "" for the top workflow, "<child task id>/" inside a child
    std::string activity;
    std::string name;  ///< the step's display name (`activity.named(...)`, a Command's name); empty: none
    std::int64_t call = 0;
    int attempts = 0;     ///< dispatches (0 if it never ran)
    int run = 0;          ///< the run (0, then each resume) in which it was scheduled
    int incarnation = 0;  ///< restart() count of its frame when it was scheduled
    int batch = -1;       ///< dispatch batch: tasks dispatched with no completion between them
    bool cached = false;  ///< finished from the trace by a resume, not run again
    bool child = false;   ///< a child workflow call
    State state = State::scheduled;
    std::vector<std::string> args;   ///< ids of the results passed as arguments
    std::vector<std::string> reads;  ///< ids of results the body read before this call
    std::vector<std::string> after;  ///< ids of results it waited for without taking them (`activity.after(...)`)
    std::int64_t scheduled_us = 0, dispatched_us = -1, ended_us = -1;  ///< by the scheduler's clock
    /// When its last attempt started and ended running, stamped by its worker (the same
    /// monotonic clock on one host); -1 where the trace does not say (format version 1,
    /// an attempt whose worker died).
    std::int64_t run_started_us = -1, run_ended_us = -1;
    std::int64_t worker = -1, pid = -1;
    std::string host;         ///< where it ran, when the run's workers are on several hosts (PostgreSQL engine)
    std::string value;        ///< encoded result
    std::string short_value;  ///< a short readable form of it
    std::string message, error_type;
    std::string detail;   ///< what came with a failure: a failed command's encoded CommandResult
    std::string because;  ///< for a skipped task: the failed input

    /// How reports name it: its step name, or else its activity and call ("sh #3").
    std::string title() const { return name.empty() ? activity + " #" + std::to_string(call) : name; }
    /// When it ran: its worker's stamps, or else from dispatch to the scheduler seeing its end.
    std::int64_t run_start() const { return run_started_us >= 0 ? run_started_us : dispatched_us; }
    std::int64_t run_end() const { return run_ended_us >= 0 ? run_ended_us : ended_us; }
    /// How long it ran (start to end); -1 if it did not run (cached, skipped, never dispatched).
    std::int64_t run_us() const {
        if (cached || run_start() < 0 || run_end() < 0) return -1;
        return run_end() > run_start() ? run_end() - run_start() : 0;
    }
    /// How long it waited between its dispatch and its start; -1 if the trace does not say.
    std::int64_t queue_us() const {
        if (run_started_us < 0 || dispatched_us < 0) return -1;
        return run_started_us > dispatched_us ? run_started_us - dispatched_us : 0;
    }
};

/// How a task's state reads in pictures and reports: "finished", "failed", "timed out",
/// "worker crashed", "skipped", "never started", "running when the run ended".
const char* to_string(TraceTask::State state) noexcept;

/// One run recorded in a trace (a resumed run appends another).
struct TraceRun {
    enum class Outcome { running, finished, failed, cancelled };
    std::string workflow, executor, host, time;
    std::int64_t workers = 0, pid = 0;
    bool resumed = false;
    std::string input;  ///< encoded arguments
    /// Its activities' signatures by name ("sh" -> "flowy::CommandResult (flowy::Command)");
    /// empty in traces written before flowy recorded them.
    std::map<std::string, std::string> activities;
    std::int64_t started_us = 0, ended_us = -1;
    Outcome outcome = Outcome::running;
    std::string short_value, message, error_type;
    std::string from;                ///< the task whose result was the run's result, if one was
    std::vector<std::string> reads;  ///< otherwise: the results the body read after its last call
    /// Why tracing stopped before the run ended (a full disk, ...): the run went on,
    /// untraced. Empty if the trace covers the run.
    std::string trace_stopped;
};

/// How a run's outcome reads: "finished", "failed", "cancelled", "never finished".
const char* to_string(TraceRun::Outcome outcome) noexcept;

/// A restart() recorded in a trace.
struct TraceRestart {
    std::string frame;
    int incarnation = 0;
    std::vector<std::string> args;  ///< ids of the results passed to restart()
};

/// A trace read back from its file (see docs/trace-format.md): a run journal, as runs
/// write them, or JSON Lines (`flowy export`, write_jsonl(), and earlier releases).
class Trace {
public:
    /// Reads the trace at `path`, either encoding (told apart by its first bytes); throws
    /// TraceError naming the line (JSON Lines) or the record and its byte offset (journal)
    /// and the reason. A torn last line or record (a run killed while writing it) is
    /// dropped with a warning.
    static Trace load(const std::string& path);
    /// The same from the trace's bytes; `name` is used in errors.
    static Trace parse(std::string_view text, const std::string& name = "trace");

    /// The trace's events as JSON Lines (docs/trace-format.md), read again from the file
    /// it was loaded from (TraceError if that file changed since) or the text it was
    /// parsed from. A torn last record is left out, as load() leaves it out.
    std::string jsonl() const;
    /// Writes jsonl() to `path` (TraceError if it cannot).
    void write_jsonl(const std::string& path) const;
    /// Reads the trace at `trace` and writes it to `out` as JSON Lines in one pass (what
    /// `flowy export` does): load(trace).write_jsonl(out) without keeping the trace.
    /// Returns load()'s warnings.
    static std::vector<std::string> convert_to_jsonl(const std::string& trace, const std::string& out);

    const std::vector<TraceRun>& runs() const { return runs_; }
    const std::vector<TraceTask>& tasks() const { return tasks_; }
    const std::vector<TraceRestart>& restarts() const { return restarts_; }
    const std::vector<std::string>& warnings() const { return warnings_; }
    /// Failures nobody read, by task id.
    const std::vector<std::string>& ignored() const { return ignored_; }

    /// The execution graph as DOT text (built with Graphviz cgraph).
    std::string to_dot() const;
    /// Lays the graph out and renders it in-process (Graphviz gvc): `.svg`, `.png` or `.dot` by extension.
    void write_svg(const std::string& path) const;
    /// The run as Chrome trace-event JSON (Perfetto, chrome://tracing): one row per worker.
    std::string timeline() const;
    /// Tasks by state, per-activity times, worker use, the slowest tasks and the critical path.
    std::string summary(bool color = false) const;
    /// The same for a CI job's page (GitHub's step summary, GitLab): a Markdown table of
    /// the steps (failures first), the critical path, and each failure's message.
    std::string summary_markdown() const;
    /// A JUnit XML report (Jenkins, GitLab, GitHub test reporters): one testcase per task,
    /// `failure` for an activity that threw, `error` for a timeout or a crash, `skipped`
    /// for a task whose input failed, and a command's output in system-out/system-err.
    std::string junit() const;
    /// One self-contained HTML page (nothing fetched): the picture, whose tasks show
    /// their details when hovered or clicked, the timeline, and the summary with the
    /// critical path highlighted.
    std::string report_html() const;
    /// The picture as SVG text.
    std::string to_svg() const;
    /// The chain of dependencies (arguments, reads, after(...)) with the most task time,
    /// first task first.
    std::vector<const TraceTask*> critical_path() const;

private:
    std::vector<TraceRun> runs_;
    std::vector<TraceTask> tasks_;
    std::vector<TraceRestart> restarts_;
    std::vector<std::string> warnings_;
    std::vector<std::string> ignored_;
    // Where it was read from, for jsonl(): a file (with its size and time then), or text.
    std::string source_name_, source_text_;
    std::int64_t source_size_ = -1, source_mtime_ = -1;
};

}  // namespace flowy

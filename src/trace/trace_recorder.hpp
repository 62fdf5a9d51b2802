#pragma once
// The recorder that writes a run's events to its trace file, as JSON Lines (format
// version 1, docs/trace-format.md), through the file mapping of trace::Writer.

#include "common/recorder.hpp"
#include "trace/writer.hpp"

#include <functional>
#include <string>

namespace flowy::detail::trace {

class TraceRecorder final : public Recorder {
public:
    /// Opens `path` for a new trace, or to append to it (`append`: resume). Problems
    /// with the file go to `warn`, once; the run never fails for them.
    TraceRecorder(const std::string& path, bool append, std::function<void(const std::string&)> warn)
        : w_(path, append, std::move(warn)) {}
    /// Appends the lines to `*sink` (see Writer).
    explicit TraceRecorder(std::string* sink) : w_(sink) {}

    void run_started(const RunStart& run) override;
    void task_scheduled(const TaskId& task, const Scheduled& call) override;
    void task_dispatched(const TaskId& task, const WorkerRef& worker, std::string_view args) override;
    void task_finished(const TaskId& task, const ValueRef& value, const WorkerRef& worker,
                       const RunTimes& times) override;
    void task_cached(const TaskId& task, const ValueRef& value) override;
    void task_failed(const TaskId& task, const ErrorInfo& error, const RunTimes& times,
                     const WorkerRef& worker) override {
        failure("task_failed", task, error, worker, &times);
    }
    void task_timed_out(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) override {
        failure("task_timed_out", task, error, worker);
    }
    void worker_crashed(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) override {
        failure("worker_crashed", task, error, worker);
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

private:
    void failure(std::string_view event, const TaskId& task, const ErrorInfo& error, const WorkerRef& worker,
                 const RunTimes* times = nullptr);
    Writer w_;
};

}  // namespace flowy::detail::trace

#pragma once
// The live status line on standard error ("flowy: 12/40 done, 2 running, 0 failed,
// 1.3 s"), redrawn ten times a second while the run goes on, whether or not tasks
// finish: a recorder that counts the events.

#include "common/recorder.hpp"

#include <cstdint>

namespace flowy::detail {

class ProgressLine final : public Recorder {
public:
    ProgressLine();
    ~ProgressLine() override;  // clears the line

    void run_started(const RunStart&) override {}
    void task_scheduled(const TaskId&, const Scheduled&) override { ++scheduled_; }
    void task_dispatched(const TaskId&, const WorkerRef&, std::string_view) override {}
    void task_finished(const TaskId&, const ValueRef&, const WorkerRef&, const RunTimes&) override { ++finished_; }
    void task_cached(const TaskId&, const ValueRef&) override { ++finished_; }
    // An attempt that failed counts once it is not retried.
    void task_failed(const TaskId&, const ErrorInfo&, const RunTimes&, const WorkerRef&) override { ++failed_; }
    void task_timed_out(const TaskId&, const ErrorInfo&, const WorkerRef&) override { ++failed_; }
    void worker_crashed(const TaskId&, const ErrorInfo&, const WorkerRef&) override { ++failed_; }
    void task_retried(const TaskId&, const TaskId&, std::chrono::milliseconds) override { --failed_; }
    void task_skipped(const TaskId&, const ErrorInfo&) override {}
    void child_started(const TaskId&) override {}
    void child_finished(const TaskId&, const ValueRef&) override {}
    void child_failed(const TaskId&, const ErrorInfo&) override {}
    void restarted(std::string_view, int, const TaskList&) override {}
    // The run is ending: warnings may follow, on a line of their own.
    void failure_ignored(const TaskId&, std::string_view) override { clear(); }
    void run_finished(const ValueRef&, const TaskId*, const TaskList&) override { clear(); }
    void run_failed(const ErrorInfo&, bool) override { clear(); }
    void tick(std::size_t running, std::size_t stopped) override;
    std::chrono::microseconds tick_every() const override { return std::chrono::milliseconds(100); }

private:
    void clear();
    bool shown_ = false;
    std::size_t scheduled_ = 0, finished_ = 0, failed_ = 0;
    std::int64_t started_us_ = 0, drawn_us_ = 0;
};

}  // namespace flowy::detail

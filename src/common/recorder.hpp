#pragma once
// What an execution reports as it goes, one method per event: the observer seam.
// The trace recorder (src/trace/trace_recorder.hpp) writes the events to the trace
// file; the progress line (src/engine/progress.hpp) counts them. An execution with
// no recorder holds a null pointer and makes no call at all. Every method is called
// on the scheduler's thread, in the order things happened, and never throws: a
// recorder that cannot record says so through its own warnings and lets the run go on.

#include "common/task_id.hpp"
#include "common/worker_ref.hpp"

#include <flowy/detail/core.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace flowy::detail {

/// Tasks handed to a recorder without copying them into a list: for_each() calls a
/// function with each task's id, straight from the execution's own records (a join
/// of 100,000 results would otherwise build a list of 100,000 ids per recorder).
class TaskList {
public:
    using Each = void (*)(void* sink, const TaskId& id);
    using Visit = void (*)(const void* source, void* sink, Each each);
    TaskList(const void* source, Visit visit) : source_(source), visit_(visit) {}
    /// No tasks.
    TaskList() = default;
    /// Made with no source (a list from a source may still hold no task).
    bool empty() const { return visit_ == nullptr; }

    template <class F>
    void for_each(F&& f) const {
        if (visit_)
            visit_(source_, &f,
                   [](void* sink, const TaskId& id) { (*static_cast<std::remove_reference_t<F>*>(sink))(id); });
    }

private:
    const void* source_ = nullptr;
    Visit visit_ = nullptr;
};

/// When an attempt started and ended running, by its worker's CLOCK_MONOTONIC in
/// microseconds (the clock of the trace's `t`); 0 when the executor cannot tell.
struct RunTimes {
    std::int64_t started_us = 0, ended_us = 0;
};

/// A call made by a body.
struct Scheduled {
    TaskList args;          ///< the tasks whose results it takes
    TaskList reads;         ///< results the body read since its previous call (control dependencies)
    TaskList after;         ///< results it waits for without taking them (`activity.after(...)`)
    std::string_view name;  ///< its display name; empty: none
};

/// What a run is, as recorded when it starts.
struct RunStart {
    std::string_view workflow;    ///< the workflow class
    std::string_view executor;    ///< "processes", "threads", "synchronous", ...
    std::string_view parameters;  ///< the body's parameter types, "void (int, int)"
    int workers = 0;
    bool resumed = false;    ///< continues an earlier run (resume)
    std::string_view input;  ///< the encoded arguments
    /// The activities it may call, as "name: signature" (child workflows' included).
    std::vector<std::string> activities;
};

/// An encoded value and how to read it in short (for traces and pictures).
struct ValueRef {
    std::string_view bytes;
    Describe describe = nullptr;  ///< null: it has no short form
    std::string short_form() const { return describe ? describe(bytes) : std::string(); }
};

class Recorder {
public:
    virtual ~Recorder() = default;

    virtual void run_started(const RunStart& run) = 0;
    /// A call made by a body.
    virtual void task_scheduled(const TaskId& task, const Scheduled& call) = 0;
    /// An attempt handed to the executor, with the encoded arguments it runs with.
    virtual void task_dispatched(const TaskId& task, const WorkerRef& worker, std::string_view args) = 0;
    virtual void task_finished(const TaskId& task, const ValueRef& value, const WorkerRef& worker,
                               const RunTimes& times) = 0;
    /// A task that resume answers from the history: it does not run again.
    virtual void task_cached(const TaskId& task, const ValueRef& value) = 0;
    /// The activity threw (`error` says what) on `worker`, or a child workflow failed (no
    /// times, no worker: index -1).
    virtual void task_failed(const TaskId& task, const ErrorInfo& error, const RunTimes& times,
                             const WorkerRef& worker) = 0;
    virtual void task_timed_out(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) = 0;
    /// Its worker died while running it.
    virtual void worker_crashed(const TaskId& task, const ErrorInfo& error, const WorkerRef& worker) = 0;
    /// It never runs, because an input failed (`because.task` names the first failure).
    virtual void task_skipped(const TaskId& task, const ErrorInfo& because) = 0;
    /// Attempt `failed` ended and `next` will run after `delay`.
    virtual void task_retried(const TaskId& failed, const TaskId& next, std::chrono::milliseconds delay) = 0;
    /// A child workflow's body starts for `task`.
    virtual void child_started(const TaskId& task) = 0;
    virtual void child_finished(const TaskId& task, const ValueRef& value) = 0;
    virtual void child_failed(const TaskId& task, const ErrorInfo& error) = 0;
    /// The body of `frame` returned restart(...): incarnation `incarnation` starts with `args`' values.
    virtual void restarted(std::string_view frame, int incarnation, const TaskList& args) = 0;
    /// A failed result that nobody read when the run ended.
    virtual void failure_ignored(const TaskId& task, std::string_view message) = 0;
    /// `from`: the task whose result the run returned, if it returned one; `reads`: the
    /// results the body read after its last call (what a computed value came from).
    virtual void run_finished(const ValueRef& value, const TaskId* from, const TaskList& reads) = 0;
    virtual void run_failed(const ErrorInfo& error, bool cancelled) = 0;
    /// Once per turn of the scheduler's loop, with the number of attempts running and of
    /// workers stopped with tasks in flight.
    virtual void tick(std::size_t running, std::size_t stopped) = 0;
    /// The loop came back from waiting for the executor: time has passed (a recorder that
    /// reuses a clock reading between events reads it again).
    virtual void woke() {}
    /// How often the loop must turn, even when nothing happens, for tick() to keep the
    /// recorder current (0: only when something happens).
    virtual std::chrono::microseconds tick_every() const { return std::chrono::microseconds(0); }
};

/// Hands every event to each of several recorders, in order.
class RecorderTee final : public Recorder {
public:
    explicit RecorderTee(std::vector<std::unique_ptr<Recorder>> all) : all_(std::move(all)) {}
    void run_started(const RunStart& r) override { each(&Recorder::run_started, r); }
    void task_scheduled(const TaskId& t, const Scheduled& c) override { each(&Recorder::task_scheduled, t, c); }
    void task_dispatched(const TaskId& t, const WorkerRef& w, std::string_view a) override {
        each(&Recorder::task_dispatched, t, w, a);
    }
    void task_finished(const TaskId& t, const ValueRef& v, const WorkerRef& w, const RunTimes& r) override {
        each(&Recorder::task_finished, t, v, w, r);
    }
    void task_cached(const TaskId& t, const ValueRef& v) override { each(&Recorder::task_cached, t, v); }
    void task_failed(const TaskId& t, const ErrorInfo& e, const RunTimes& r, const WorkerRef& w) override {
        each(&Recorder::task_failed, t, e, r, w);
    }
    void task_timed_out(const TaskId& t, const ErrorInfo& e, const WorkerRef& w) override {
        each(&Recorder::task_timed_out, t, e, w);
    }
    void worker_crashed(const TaskId& t, const ErrorInfo& e, const WorkerRef& w) override {
        each(&Recorder::worker_crashed, t, e, w);
    }
    void task_skipped(const TaskId& t, const ErrorInfo& e) override { each(&Recorder::task_skipped, t, e); }
    void task_retried(const TaskId& f, const TaskId& n, std::chrono::milliseconds d) override {
        each(&Recorder::task_retried, f, n, d);
    }
    void child_started(const TaskId& t) override { each(&Recorder::child_started, t); }
    void child_finished(const TaskId& t, const ValueRef& v) override { each(&Recorder::child_finished, t, v); }
    void child_failed(const TaskId& t, const ErrorInfo& e) override { each(&Recorder::child_failed, t, e); }
    void restarted(std::string_view f, int i, const TaskList& a) override { each(&Recorder::restarted, f, i, a); }
    void failure_ignored(const TaskId& t, std::string_view m) override { each(&Recorder::failure_ignored, t, m); }
    void run_finished(const ValueRef& v, const TaskId* f, const TaskList& r) override {
        each(&Recorder::run_finished, v, f, r);
    }
    void run_failed(const ErrorInfo& e, bool c) override { each(&Recorder::run_failed, e, c); }
    void tick(std::size_t running, std::size_t stopped) override { each(&Recorder::tick, running, stopped); }
    void woke() override { each(&Recorder::woke); }
    std::chrono::microseconds tick_every() const override {
        std::chrono::microseconds every(0);
        for (const auto& r : all_)
            if (auto e = r->tick_every(); e.count() > 0 && (every.count() == 0 || e < every)) every = e;
        return every;
    }

private:
    template <class M, class... A>
    void each(M method, const A&... a) {
        for (auto& r : all_) ((*r).*method)(a...);
    }
    std::vector<std::unique_ptr<Recorder>> all_;
};

}  // namespace flowy::detail

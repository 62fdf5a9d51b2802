#pragma once
// One execution of a workflow: the frames whose bodies run on fibers, the task graph
// they build, and the scheduler loop that feeds an executor. Single-threaded: bodies,
// graph and slots are touched by the scheduler's thread only.
//
// A frame is one running body: the root workflow, a child workflow called from a
// body, or the next incarnation after restart(). Frames share the task graph and
// the executor; each has its own fiber, configuration and task-id prefix.
//
// The parts, by file:
//   execution.cpp  the calls bodies make (schedule, await), tasks' ends, abandoning a run
//   frames.cpp     starting frames and incarnations, what happens when a body returns
//   scheduler.cpp  the loop: dispatch, completions, retries, timers, cancellation
//   calls.cpp      the typed layer's entry points (Call, FinishQueue, await, note_read)
//   run_local.cpp  plans, the configuration checks, run_local and resume_local
// and the seams it is given: a TaskExecutor (where tasks run), a Recorder (who hears
// what happens: trace, progress line) and a Replay (what an earlier run did).

#include "common/recorder.hpp"
#include "engine/body.hpp"
#include "engine/executor.hpp"
#include "engine/replay.hpp"
#include "engine/task_graph.hpp"

#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace flowy::detail {

/// A workflow's configuration resolved for one run: where its activities sit in the
/// registry, and the plans of the child workflows it binds.
struct Plan {
    const WorkflowType* type = nullptr;
    const Config* config = nullptr;
    std::uint32_t base = 0;                       // registry index of bindings[0]
    std::vector<std::unique_ptr<Plan>> children;  // per binding: set for child workflows
};

/// The binding of `config` that dependency `d` of workflow `where` is configured with
/// (its index, also kept in `d.index`); throws ConfigError naming the dependency and
/// both signatures if there is none or it does not fit. The one check of a binding,
/// made for every declared dependency before a run and for every call during it.
std::uint32_t bind(const Dependency& d, const Config& config, const std::string& where);

/// Checks what `type` declares against `config` (recursively for child workflows,
/// ConfigError if it does not fit) and lays their activities out in `registry`; the
/// root's instance made for the check comes back through `root_instance`.
std::unique_ptr<Plan> plan_of(const WorkflowType& type, const Config& config, Registry& registry,
                              std::unique_ptr<Instance>* root_instance);
/// How many workers `config` asks for (the number of cores unless set; ConfigError below 1).
int workers_of(const Config& config);
/// Warns (once per call) that forking workers with other threads running can hang them;
/// `threads`: this process's threads, 0 to count them.
void warn_of_threads(const Config& config, int threads);
/// The recorders a run of `config` has: `extra` (if any), the trace (w.trace or
/// FLOWY_TRACE; `append` on resume) and the live status line.
std::unique_ptr<Recorder> make_recorders(const Config& config, bool append, std::unique_ptr<Recorder> extra);

/// Hands a warning to `log`, or prints it on standard error if there is none.
void log_warning(const std::function<void(std::string_view)>& log, const std::string& message);

/// Inside a catch block: rethrows a TaskError (Cancelled included) or a ConfigError as
/// it is, and anything else as a TaskError with its message and type: what run() throws.
[[noreturn]] void rethrow_as_run_error();

/// The error an exception caught from a body stands for.
std::shared_ptr<ErrorInfo> error_of(std::exception_ptr ep);

/// What an execution is given to run with.
struct ExecutionParts {
    std::unique_ptr<TaskExecutor> executor;
    std::size_t activities = 0;                 // entries in the executor's registry
    Recorder* recorder = nullptr;               // null: nobody records
    Replay* replay = nullptr;                   // null: a fresh run
    std::string_view executor_name;             // for the recorder
    int workers = 0;                            // for the recorder
    std::function<void(std::string_view)> log;  // warnings; null: standard error
    /// When the whole execution times out, and its execution_timeout (the PostgreSQL
    /// engine: its creation plus the timeout it was started with); unset: the run's start
    /// plus the configured execution_timeout, if any.
    std::optional<Clock::time_point> deadline;
    std::chrono::nanoseconds execution_timeout{0};
};

class Execution {
public:
    Execution(const Plan& root, ExecutionParts parts);
    ~Execution();
    Execution(const Execution&) = delete;
    Execution& operator=(const Execution&) = delete;

    /// Runs the root workflow with encoded `args` to its end; returns the finished result slot; throws on failure.
    /// `first` is the root's instance made while checking the configuration.
    SlotPtr run(std::string args, std::unique_ptr<Instance> first);

    // Called from bodies (through Call, await and FinishQueue).
    /// A call: `inputs` are the results among its arguments, `after` the results it
    /// waits for without taking them (control inputs), `name` its display name.
    SlotPtr schedule(const Dependency& d, const std::vector<Slot*>& inputs, std::string&& args,
                     std::unique_ptr<TaskArgs> deferred, const std::vector<Slot*>& after, std::string&& name);
    void await(Slot& s);
    void await(FinishQueue& q);
    void watch(Slot& s, FinishQueue* q);
    void unwatch(FinishQueue* q);
    void register_queue(FinishQueue* q) { queues_.insert(q); }
    /// The body read `s`: the next call it makes depends on it (for the recorder).
    void record_read(Slot& s);
    /// On resume, where the result of `s`'s task came in the recorded finish order; else 0.
    std::uint64_t recorded_order(const Slot& s) const;

    static Execution* current();

private:
    static void set_current(Execution* e);
    enum class FrameState : std::uint8_t { running, suspended, restarting, returned, done };
    struct Frame {
        std::uint32_t index = 0;
        const Plan* plan = nullptr;
        std::string prefix;                   // of its task ids: "" or "<parent task id>/"
        std::uint32_t parent_task = no_task;  // the task a child frame resolves; no_task for the root
        std::vector<std::uint32_t> calls;     // next call index, per binding
        FrameState state = FrameState::running;
        std::unique_ptr<Instance> instance;
        std::string args;  // encoded arguments of the current incarnation
        Body body;
        Slot* waiting = nullptr;
        FinishQueue* waiting_queue = nullptr;
        SlotPtr result;
        std::exception_ptr error;
        std::shared_ptr<const RestartRequest> restart;
        int incarnation = 0;
        std::vector<std::uint32_t> reads;  // tasks whose results the body read since its last call
        std::size_t scheduled = 0;         // calls made, for resume's comparison
        bool root() const { return parent_task == no_task; }
    };

    // tasks (execution.cpp)
    const Binding& binding(const Task& t) const { return frame_at_[t.frame]->plan->config->bindings[t.binding]; }
    std::uint32_t activity_of(const Task& t) const { return frame_at_[t.frame]->plan->base + t.binding; }
    TaskId id_of(const Task& t) const {
        const Frame& f = *frame_at_[t.frame];
        return {f.prefix, f.plan->config->bindings[t.binding].name, t.call, t.attempt};
    }
    std::string task_id(const Task& t) const { return id_of(t).str(); }
    /// "attempt 2 of 3", for messages about a task's failure.
    std::string attempt_of(const Task& t) const {
        return "attempt " + std::to_string(t.attempt + 1) + " of " + std::to_string(binding(t).options.retries + 1);
    }
    /// The step name a call was given ("" if none).
    const std::string& step_name(std::uint32_t index) const;
    /// How messages name a task: `"unit tests" (task sh-0-0, MORE)`, or else
    /// `task square-3-0 (square(7), MORE)` (its arguments' short form where known).
    std::string describe_task(std::uint32_t index, std::string_view more = {}) const;
    /// The recorder's view of the tasks among `items` (slots, or task indices) that
    /// this run produces, read in place; the source must outlive the list's use.
    template <class Items>
    struct TaskSource {
        const Execution* ex;
        const Items* items;
    };
    template <class Items>
    static TaskList task_list(const TaskSource<Items>& source) {
        return TaskList(&source, [](const void* p, void* sink, TaskList::Each each) {
            const auto& src = *static_cast<const TaskSource<Items>*>(p);
            for (const auto& item : *src.items)
                if (std::uint32_t task = src.ex->task_of(item); task != no_task)
                    each(sink, src.ex->id_of(src.ex->graph_[task]));
        });
    }
    std::uint32_t task_of(const Slot* s) const { return s->owner == this ? s->task : no_task; }
    std::uint32_t task_of(const SlotPtr& s) const { return task_of(s.get()); }
    static std::uint32_t task_of(std::uint32_t index) { return index; }
    void task_succeeded(std::uint32_t index, std::string bytes);
    void task_failed(std::uint32_t index, std::shared_ptr<const ErrorInfo> error, bool skipped = false);
    void wake_watchers(const Task& t);
    void warn(const std::string& message) const;
    void report_ignored_failures();
    void abandon() noexcept;

    // frames (frames.cpp)
    Frame& start_frame(const Plan& plan, std::string prefix, std::uint32_t parent_task, std::string args);
    void start_incarnation(Frame& f);
    void enter(Frame& f);
    void suspend(Frame& f);
    bool can_resume(const Frame& f);
    void conclude_frames();
    void conclude(Frame& f);
    void conclude_restart(Frame& f);
    void frame_failed(Frame& f, std::shared_ptr<const ErrorInfo> e);

    // the scheduler loop (scheduler.cpp)
    void dispatch();
    void start(std::uint32_t index, std::uint32_t depth);
    std::uint32_t depth_for(const Task& t) const;
    void on_completion(Completion& c);
    bool retry(Task& t, std::uint32_t index, const ErrorInfo& e);
    Clock::time_point release_delayed();
    std::exception_ptr stop_reason();
    // schedule timeouts and concurrency limits (scheduler.cpp)
    void note_ready(std::uint32_t index);
    void note_ready_from(std::size_t first);  // the ready queue's entries from `first` on
    Clock::time_point expire();               // ends tasks past their schedule timeouts; the next one's time
    void schedule_timed_out(std::uint32_t index, const char* which, std::chrono::nanoseconds limit);
    void end_turn(std::uint32_t activity);
    [[noreturn]] void throw_run_error(const Frame& root);
    void record_run_end(const Frame& root);

    const Plan& root_;
    std::unique_ptr<TaskExecutor> executor_;
    Recorder* recorder_;
    Replay* replay_;
    std::string_view executor_name_;
    int workers_;
    std::function<void(std::string_view)> log_;

    TaskGraph graph_;
    std::deque<Frame> frames_;
    std::vector<Frame*> frame_at_;            // frames_ by index, for the per-task lookups (a deque index divides)
    std::vector<std::uint32_t> live_frames_;  // frames not done
    Frame* current_frame_ = nullptr;
    StackBounds scheduler_stack_;  // where the scheduler's stack lies, for the bodies' switches
    std::vector<double> cost_us_;  // moving average of run time, per registry entry (<0: unknown)
    std::vector<std::pair<Clock::time_point, std::uint32_t>> delayed_;  // retries waiting for their delay (heap)
    std::unordered_multimap<std::uint32_t, FinishQueue*> watchers_;     // task -> queues waiting for it
    std::unordered_set<FinishQueue*> queues_;
    std::unordered_map<std::uint32_t, std::string> step_names_;  // task -> its call's display name (few have one)
    // Tasks with schedule_to_start or schedule_to_close (few): when each must have
    // started (this attempt) and ended, and a heap of those times.
    struct TaskClock {
        Clock::time_point start_by = Clock::time_point::max(), close_by = Clock::time_point::max();
    };
    std::unordered_map<std::uint32_t, TaskClock> clocks_;
    std::vector<std::pair<Clock::time_point, std::uint32_t>> deadlines_;
    bool clocked_ = false;  // some activity of the run has a schedule timeout
    // Activities with a concurrency limit: tasks running per registry index, and the
    // ready tasks waiting for a turn.
    bool limited_ = false;
    std::vector<int> running_, limit_;
    std::vector<std::uint8_t> solo_;  // per registry index: its tasks go only to an idle worker (depth 1)
    bool gated_ = false;              // clocked_, limited_ or max_in_flight_: the loop looks at them
    std::unordered_map<std::uint32_t, std::deque<std::uint32_t>> turns_;
    Clock::time_point deadline_ = Clock::time_point::max();  // the whole execution's
    std::chrono::nanoseconds execution_timeout_{0};
    std::size_t max_in_flight_ = 0;
    Execution* outer_ = nullptr;
    std::unique_ptr<Instance> first_instance_;
    bool abandoning_ = false;  // the run is over: bodies still suspended unwind
};

}  // namespace flowy::detail

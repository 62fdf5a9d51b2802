#pragma once
// One execution of a workflow: its bodies on fibers, the task graph they build, and
// the scheduler loop that feeds an executor. Single-threaded: bodies, graph and
// slots are touched by the scheduler's thread only.
//
// A frame is one running body: the root workflow, a child workflow called from a
// body, or the next incarnation after restart(). Frames share the task graph and
// the executor; each has its own fiber, configuration and task-id prefix.

#include "engine/executor.hpp"
#include "trace/writer.hpp"

#include <boost/context/fiber.hpp>

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace flowy::detail {

/// A workflow's configuration resolved for one run: where its activities sit in the
/// registry, and the plans of the child workflows it binds.
/// What a trace says about an earlier run, for resume: the values of tasks that
/// succeeded, the argument hashes they ran with, and the calls in order per frame.
struct History {
    struct Done {
        std::string value;
        std::uint64_t args_hash = 0;  // FNV-1a of the encoded arguments it ran with
    };
    std::unordered_map<std::string, Done> finished;                   // by first-attempt id
    std::unordered_map<std::string, std::vector<std::string>> calls;  // per frame prefix, in order
    std::string input;                                                // the run's encoded arguments
};

/// Reads what resume needs from the trace at `path` (throws flowy::TraceError).
History load_history(const std::string& path);

struct Plan {
    const WorkflowType* type = nullptr;
    const Config* config = nullptr;
    std::uint32_t base = 0;                       // registry index of bindings[0]
    std::vector<std::unique_ptr<Plan>> children;  // per binding: set for child workflows
};

class Execution {
public:
    Execution(const Config& config, const Plan& root, Registry registry, int workers, const History* history = nullptr);
    ~Execution();
    Execution(const Execution&) = delete;
    Execution& operator=(const Execution&) = delete;

    /// Runs the root workflow with encoded `args` to its end; returns the finished result slot; throws on failure.
    SlotPtr run(std::string args, std::unique_ptr<Instance> first);

    // Called from bodies (through Call, await and FinishQueue).
    SlotPtr schedule(const Dependency& d, const std::vector<Slot*>& inputs, std::string&& args,
                     std::unique_ptr<TaskArgs> deferred);
    void await(Slot& s);
    void await(FinishQueue& q);
    void watch(Slot& s, FinishQueue* q);
    void unwatch(FinishQueue* q);
    void register_queue(FinishQueue* q) { queues_.insert(q); }

    static Execution* current();
    void noted_read(Slot& s);

private:
    enum class TaskState : std::uint8_t { waiting, ready, running, done };
    static constexpr std::uint32_t no_edge = UINT32_MAX;
    // 56 bytes: one per task, nine to a block of the deque.
    struct Task {
        std::uint32_t frame = 0;
        std::uint32_t call = 0;
        std::uint16_t dep = 0;           // binding index in the frame's configuration (< max_bindings)
        std::uint16_t attempt = 0;       // retries are at most max_retries
        std::uint32_t pending : 30 = 0;  // inputs not finished yet (< max_inputs)
        TaskState state : 2 = TaskState::waiting;
        std::uint32_t first_dependent = no_edge;  // the tasks waiting on it: a list in edges_
        std::uint32_t last_dependent = no_edge;
        SlotPtr slot;
        Bytes args;                          // encoded, once its inputs are finished
        std::unique_ptr<TaskArgs> deferred;  // what encodes them then
    };
    static constexpr std::size_t max_inputs = (std::size_t(1) << 30) - 1;
    // Dependents as lists in one array: a task with one dependent (a fan-in) costs 8
    // bytes, not a vector and its allocation.
    struct Edge {
        std::uint32_t task;
        std::uint32_t next;
    };
    std::vector<Edge> edges_;
    void add_dependent(Task& producer, std::uint32_t index);

    enum class FrameState : std::uint8_t { running, suspended, restarting, returned, done };
    struct Frame {
        std::uint32_t index = 0;
        const Plan* plan = nullptr;
        std::string prefix;                      // of its task ids: "" or "<parent task id>/"
        std::uint32_t parent_task = UINT32_MAX;  // the task a child frame resolves
        std::vector<std::uint32_t> calls;        // next call index, per binding
        std::size_t outstanding = 0;             // its tasks not done
        FrameState state = FrameState::running;
        std::unique_ptr<Instance> instance;
        std::string args;  // encoded arguments of the current incarnation
        boost::context::fiber fiber;
        boost::context::fiber scheduler;
        Slot* waiting = nullptr;
        FinishQueue* waiting_queue = nullptr;
        SlotPtr result;
        std::exception_ptr error;
        std::shared_ptr<const RestartRequest> restart;
        int incarnation = 0;
        std::vector<std::uint32_t> reads;    // tasks whose results the body read since its last call
        std::size_t scheduled = 0;           // calls made, for resume's comparison
        const void* stack_bottom = nullptr;  // for AddressSanitizer's fiber annotations
        std::size_t stack_size = 0;
    };

    const Binding& binding(const Task& t) const;
    std::uint32_t binding_of(const Frame& f, const Dependency& d) const;
    std::string task_id(const Task& t) const;
    std::uint32_t depth_for(const Task& t) const;
    bool retry(Task& t, std::uint32_t index, const ErrorInfo& e);
    std::uint32_t activity_of(const Task& t) const;

    Frame& start_frame(const Plan& plan, std::string prefix, std::uint32_t parent_task, std::string args);
    void start_incarnation(Frame& f);
    void resume(Frame& f);
    void suspend(Frame& f);
    bool can_resume(const Frame& f) const;
    void settle_frames();
    void settle(Frame& f);
    void frame_failed(Frame& f, std::shared_ptr<const ErrorInfo> e);

    void dispatch();
    void start(std::uint32_t index, std::uint32_t depth);
    void on_completion(Completion& c);
    void finish(std::uint32_t index, std::string bytes);
    void fail(std::uint32_t index, std::shared_ptr<const ErrorInfo> error, bool skipped = false);
    void done(Task& t);
    void resolved(Task& t);
    void warn(const std::string& message) const;
    void report_ignored_failures();
    std::string first_id(const Task& t) const;
    /// Begins a trace event about `t`: its time, the event and the id of its attempt.
    trace::Writer& trace_task(std::string_view event, const Task& t);
    void trace_failure(const Task& t, const ErrorInfo& e, const char* event);
    void trace_run_end(const Frame& root);
    void progress(bool final);
    void abandon() noexcept;

    const Config& config_;
    const Plan& root_;
    Registry registry_;
    std::unique_ptr<TaskExecutor> executor_;
    std::deque<Task> tasks_;
    std::deque<Frame> frames_;
    std::vector<std::uint32_t> live_frames_;  // frames not done
    Frame* current_frame_ = nullptr;
    std::deque<std::uint32_t> ready_;
    std::vector<double> cost_us_;  // moving average of run time, per registry entry (<0: unknown)
    std::vector<std::pair<Clock::time_point, std::uint32_t>> delayed_;  // retries waiting for their delay (heap)
    std::uint64_t seq_ = 0;
    std::size_t outstanding_ = 0;  // tasks not done

    std::unordered_multimap<std::uint32_t, FinishQueue*> watchers_;  // task -> queues waiting for it
    std::unordered_set<FinishQueue*> queues_;
    void* fake_stack_ = nullptr;
    const void* main_stack_bottom_ = nullptr;
    std::size_t main_stack_size_ = 0;
    Execution* outer_ = nullptr;
    std::unique_ptr<Instance> first_instance_;
    std::unique_ptr<trace::Writer> trace_;
    const History* history_ = nullptr;
    std::exception_ptr diverged_;
    bool abandoning_ = false;  // the run is over: bodies still suspended unwind
    int workers_ = 0;
    std::size_t finished_count_ = 0, failed_count_ = 0;
    bool show_progress_ = false;
    std::int64_t started_us_ = 0, progress_drawn_us_ = 0;
};

}  // namespace flowy::detail

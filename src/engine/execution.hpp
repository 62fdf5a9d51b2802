#pragma once
// One execution of a workflow: the body on a fiber, the task graph it builds, and
// the scheduler loop that feeds an executor. Single-threaded: the body, the graph
// and every slot are touched by the scheduler's thread only.

#include "engine/executor.hpp"

#include <boost/context/fiber.hpp>

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace flowy::detail {

class Execution {
public:
    Execution(const Config& config, std::string workflow, Registry registry, int workers);
    ~Execution();
    Execution(const Execution&) = delete;
    Execution& operator=(const Execution&) = delete;

    /// Runs the body to its end and returns the finished result slot; throws on failure.
    SlotPtr run(const Body& body);

    // Called from the body (through Call and await).
    SlotPtr schedule(const Dependency& d, std::vector<SlotPtr>& inputs, std::string&& args,
                     std::unique_ptr<TaskArgs> deferred);
    void await(Slot& s);

    static Execution* current();

private:
    enum class TaskState : std::uint8_t { waiting, ready, running, done };
    struct Task {
        std::uint32_t dep = 0;
        std::uint32_t call = 0;
        std::uint32_t attempt = 0;
        TaskState state = TaskState::waiting;
        std::uint32_t pending = 0;  // inputs not finished yet
        SlotPtr slot;
        std::string args;
        std::unique_ptr<TaskArgs> deferred;
        std::vector<std::uint32_t> dependents;
    };

    std::uint32_t binding_of(const Dependency& d) const;
    std::string task_id(const Task& t) const;
    std::uint32_t depth_for(std::uint32_t dep) const;
    void resume_body();
    void dispatch();
    void on_completion(Completion& c);
    void finish(std::uint32_t index, std::string bytes);
    void fail(std::uint32_t index, std::shared_ptr<const ErrorInfo> error);
    void warn(const std::string& message) const;
    void report_ignored_failures() const;
    void abandon() noexcept;

    const Config& config_;
    std::string workflow_;
    Registry registry_;
    std::unique_ptr<TaskExecutor> executor_;
    std::deque<Task> tasks_;
    std::deque<std::uint32_t> ready_;
    std::vector<std::uint32_t> calls_;     // next call index, per binding
    std::vector<double> cost_us_;          // moving average of run time, per binding (<0: unknown)
    std::uint64_t seq_ = 0;
    std::size_t outstanding_ = 0;          // tasks not done

    boost::context::fiber body_fiber_;
    boost::context::fiber scheduler_;
    // Stack bounds for AddressSanitizer's fiber annotations (unused otherwise).
    const void* body_stack_bottom_ = nullptr;
    std::size_t body_stack_size_ = 0;
    const void* scheduler_stack_bottom_ = nullptr;
    std::size_t scheduler_stack_size_ = 0;
    void* fake_stack_ = nullptr;
    bool in_body_ = false;
    bool body_done_ = false;
    Slot* waiting_ = nullptr;
    SlotPtr result_;
    std::exception_ptr body_error_;
    Execution* outer_ = nullptr;
};

}  // namespace flowy::detail

#pragma once
// Where tasks run. The scheduler hands an executor encoded requests and collects
// completions; every executor gives the same results for the same requests.

#include <flowy/detail/core.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flowy::detail {

/// A task to run: the activity's index in the registry and its encoded arguments.
/// `args` stays alive (owned by the scheduler) until the task's completion is returned.
struct Request {
    std::uint32_t task = 0;
    std::uint32_t activity = 0;
    std::string_view args;
    /// How many tasks the executor may queue on one worker for this one (1: only to an idle worker).
    std::uint32_t depth = 1;
    /// Stop the task after this long (0: never). Only the processes executor can stop a
    /// running task; the others report a task that returned late as timed out.
    std::chrono::nanoseconds timeout{0};
};

using Clock = std::chrono::steady_clock;

/// What became of a request.
struct Completion {
    enum class Outcome : std::uint8_t {
        finished,  ///< `bytes` holds the encoded result
        failed,    ///< `error` says why (the activity threw, or its worker died)
        requeue,   ///< never started (its worker died first): submit it again
    };
    std::uint32_t task = 0;
    Outcome outcome = Outcome::finished;
    std::string bytes;
    ErrorInfo error;
    std::uint64_t duration_us = 0;  ///< time the activity ran, as seen by its worker
    int worker = -1;
};

/// The registry of activity functions, indexed by Request::activity.
using Registry = std::vector<const Invoker*>;

class TaskExecutor {
public:
    virtual ~TaskExecutor() = default;
    /// Whether a request with this depth can be submitted now.
    virtual bool accepts(std::uint32_t depth) const = 0;
    /// Hands `r` to a worker; returns the worker's index.
    virtual int submit(const Request& r) = 0;
    /// The process id of a worker (this process for in-process executors).
    virtual int worker_pid(int worker) const = 0;
    /// Blocks until at least one completion is available, or `deadline` passes, and
    /// appends what completed to `out`.
    virtual void wait(std::vector<Completion>& out, Clock::time_point deadline) = 0;
    /// Number of requests submitted and not yet completed.
    virtual std::size_t in_flight() const = 0;
    /// Stops every worker. With `abort`, running tasks are abandoned (their workers killed
    /// where the executor can); otherwise it waits for them.
    virtual void stop(bool abort) noexcept = 0;
    /// Warnings the executor wants logged (a worker replaced), drained by the scheduler.
    std::vector<std::string> warnings;
};

/// Set (to the signal number) when SIGINT or SIGTERM asks the run to stop; executors
/// return from wait() when they see it.
int cancel_signal() noexcept;

std::unique_ptr<TaskExecutor> make_synchronous_executor(const Registry& registry);
std::unique_ptr<TaskExecutor> make_thread_executor(const Registry& registry, int threads);
std::unique_ptr<TaskExecutor> make_process_executor(const Registry& registry, int workers);

/// Runs one request on the calling thread: never throws; activity exceptions become a failed completion.
Completion run_request(const Registry& registry, std::uint32_t task, std::uint32_t activity, std::string_view args);

/// Runs an activity on the calling thread, its arguments read from `args` and its
/// result written to `out`; sets the outcome, error and duration of `c`. Never throws.
void run_activity(const Registry& registry, std::uint32_t activity, std::streambuf& args, ResultOut& out,
                  Completion& c);

/// A timed-out failure: "timed out after N ms".
ErrorInfo timed_out(std::chrono::nanoseconds timeout);

/// For executors that cannot stop a running task: a task that returned after its
/// timeout is a timeout (its result is dropped).
void apply_timeout_late(Completion& c, std::chrono::nanoseconds timeout);

}  // namespace flowy::detail

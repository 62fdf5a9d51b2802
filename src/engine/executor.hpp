#pragma once
// Where tasks run: the executor seam. The scheduler hands an executor requests (an
// activity and its encoded arguments) and collects completions; it never assumes
// where the workers are. The local executors run them in this process (synchronous,
// threads) or in forked worker processes (src/worker/process_pool.cpp); an executor
// whose workers are other hosts implements the same interface. Every executor gives
// the same results for the same requests.

#include "common/task_id.hpp"
#include "common/worker_ref.hpp"

#include <flowy/detail/core.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
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
    /// How many tasks the executor may queue on one worker for this one (1: only to an
    /// idle worker). A hint: an executor without local queues ignores it.
    std::uint32_t depth = 1;
    /// Stop the task after this long (0: never). Only the processes executor can stop a
    /// running task; the others report a task that returned late as timed out.
    std::chrono::nanoseconds timeout{0};
    /// The attempt's id (its views live as long as the execution), for executors that
    /// keep tasks by name (the PostgreSQL engine's queue).
    TaskId id;
    /// Lose the attempt when it goes this long without a flowy::heartbeat() (0: never).
    /// The processes executor stops its worker then; the others report it when it returns.
    std::chrono::nanoseconds heartbeat_timeout{0};
    /// The attempt ends as timed out if it has not started this long after it was
    /// submitted (0: no limit): for executors that queue tasks where the scheduler cannot
    /// see them (the PostgreSQL engine); the local ones start a task when it is submitted.
    std::chrono::nanoseconds start_within{0};
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
    /// When it started and ended running, by the worker's CLOCK_MONOTONIC (shared by the
    /// processes of one host) in microseconds; 0 when the executor cannot tell.
    std::int64_t started_us = 0, ended_us = 0;
    int worker = -1;     ///< the worker that ran it (TaskExecutor::worker tells which)
    bool final = false;  ///< failed for good: no retry (it never started within its schedule_to_start)
};

/// The registry of activity functions, indexed by Request::activity.
using Registry = std::vector<const Invoker*>;

class TaskExecutor {
public:
    virtual ~TaskExecutor() = default;
    /// Whether a request with this depth can be submitted now.
    virtual bool accepts(std::uint32_t depth) const = 0;
    /// Hands `r` over; returns the index of the worker it went to, or -1 if that is not
    /// known yet (the completion names it).
    virtual int submit(const Request& r) = 0;
    /// Who worker `index` is: its process and host.
    virtual WorkerRef worker(int index) const = 0;
    /// Blocks until at least one completion is available, or `deadline` passes, and
    /// appends what completed to `out`.
    virtual void wait(std::vector<Completion>& out, Clock::time_point deadline) = 0;
    /// Number of requests submitted and not yet completed.
    virtual std::size_t in_flight() const = 0;
    /// Workers that hold tasks and have been stopped (SIGSTOP, a debugger) for a while.
    virtual std::size_t stopped_workers() const { return 0; }
    /// Stops every worker. With `abort`, running tasks are abandoned (their workers killed
    /// where the executor can); otherwise it waits for them.
    virtual void stop(bool abort) noexcept = 0;
    /// Task `task` (submitted, not completed) no longer counts: its attempt was lost
    /// elsewhere (the PostgreSQL engine: its lease, or its execution was cancelled). Its
    /// activity's flowy::heartbeat() returns false from then on, where the executor can
    /// tell it; with `stop`, its worker is stopped where the executor can. It still completes.
    virtual void lose(std::uint32_t /*task*/, bool /*stop*/) {}
    /// Also return from wait() when `fd` is readable (a database connection's socket);
    /// -1 stops watching. Executors that cannot watch return false.
    virtual bool watch(int /*fd*/) { return false; }
    /// Warnings the executor wants logged (a worker replaced), drained by the scheduler.
    std::vector<std::string> warnings;
    /// Set when the executor cannot go on (the PostgreSQL engine lost its lease on the
    /// execution): the run stops with it.
    std::exception_ptr failure;
};

/// Set (to the signal number) when SIGINT or SIGTERM asks the run to stop; executors
/// return from wait() when they see it (src/engine/stop_signals.cpp).
int cancel_signal() noexcept;

/// In a process forked to be a worker: forgets the parent's run (the current
/// execution, and the traces it writes), so that an activity can start runs of its own.
void leave_engine_in_child();

/// In a worker: the signal dispositions the program had before flowy's run changed
/// them (SIGINT and SIGTERM, src/engine/stop_signals.cpp; SIGBUS goes back in
/// leave_engine_in_child, with the traces).
void restore_program_signals() noexcept;

std::unique_ptr<TaskExecutor> make_synchronous_executor(const Registry& registry);
std::unique_ptr<TaskExecutor> make_thread_executor(const Registry& registry, int threads);
std::unique_ptr<TaskExecutor> make_process_executor(const Registry& registry, int workers);

}  // namespace flowy::detail

#pragma once
/// \file Options for activities and engines.

#include <chrono>
#include <optional>
#include <string>

namespace flowy {

/// Per-activity options, given to `conf_activity(name, f, opts)`.
struct ActivityOptions {
    /// Stop an attempt that runs longer than this (none by default).
    std::optional<std::chrono::nanoseconds> timeout{};
    /// Extra attempts after a timeout or a worker crash (0 to 65,535).
    int retries = 0;
    /// Pause before each extra attempt (nothing else waits for it).
    std::chrono::nanoseconds retry_delay{0};
    /// Also retry when the activity itself throws (by default only timeouts and crashes are).
    bool retry_on_error = false;
    /// The PostgreSQL engine: the task list its tasks are queued on ("default" when
    /// empty); a serving process serves the lists of the activities it configured.
    std::string task_list{};
    /// An attempt that goes longer than this without calling flowy::heartbeat() is lost
    /// (timed out, "no heartbeat for ..."), counted against `retries` like a timeout; its
    /// clock starts when the attempt starts running. None by default. Catches an activity
    /// that is stuck (neither dead nor finished) long before a `timeout` sized for its
    /// longest honest run would.
    std::optional<std::chrono::nanoseconds> heartbeat_timeout{};
    /// How long each attempt may wait for a worker, from when it is ready (its inputs
    /// finished, its retry delay over) to when it starts: past it, the task ends as
    /// TaskTimedout ("schedule_to_start of ... passed waiting for a worker"), not retried (another
    /// attempt would wait in the same queue). None by default.
    std::optional<std::chrono::nanoseconds> schedule_to_start{};
    /// How long the task may take in all, from when it is first ready to its end, over
    /// every attempt and retry delay: past it, the attempt running is stopped and the
    /// task ends as TaskTimedout ("schedule_to_close of ... passed ..."), with no more retries. None
    /// by default.
    std::optional<std::chrono::nanoseconds> schedule_to_close{};
    /// At most this many tasks of this activity run at once (0: no limit): in a run on
    /// the local engine; across every host and execution of the workflow on the
    /// PostgreSQL engine (there the limit of the process deciding the execution,
    /// which its tasks carry). The others wait for a turn, in the order they became ready.
    int concurrency = 0;
};

/// Where tasks run.
enum class Executor {
    processes,    ///< forked worker processes over shared memory (default, isolated)
    threads,      ///< a pool of threads in this process
    synchronous,  ///< one task at a time on the calling thread, for debugging
};

}  // namespace flowy

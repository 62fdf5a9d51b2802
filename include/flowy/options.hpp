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
};

/// Where tasks run.
enum class Executor {
    processes,    ///< forked worker processes over shared memory (default, isolated)
    threads,      ///< a pool of threads in this process
    synchronous,  ///< one task at a time on the calling thread, for debugging
};

}  // namespace flowy

#pragma once
// How one activity call runs, on whatever thread or process: shared by the in-process
// executors (src/engine/local_executors.cpp) and the worker processes
// (src/worker/worker_main.cpp).

#include "engine/executor.hpp"

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace flowy::detail {

/// How an attempt's heartbeats (flowy::heartbeat()) are kept: the longest gap allowed,
/// and where each beat is also stored for a watcher in another process (a worker's
/// shared memory, which the scheduler reads to stop a worker that went silent).
struct Heartbeats {
    std::chrono::nanoseconds timeout{0};  ///< 0: none
    /// The last beat (monotonic µs), if watched; the caller stored the start there first.
    std::atomic<std::int64_t>* beat_us = nullptr;
    const std::atomic<std::uint32_t>* lost = nullptr;  ///< set from outside when the attempt is lost
};

/// The value a watched beat word takes once the activity has returned: the engine's own
/// work (writing the result) needs no heartbeats.
inline constexpr std::int64_t beat_done = INT64_MAX / 4;

/// Runs an activity on the calling thread, its arguments read from `args` and its
/// result written to `out`; sets the outcome, error and duration of `c`. Never throws.
/// An attempt that missed its heartbeats ends as timed out, with no result.
void run_activity(const Registry& registry, std::uint32_t activity, std::streambuf& args, ResultOut& out, Completion& c,
                  const Heartbeats& heartbeats = {});

/// Runs one request on the calling thread: never throws; activity exceptions become a failed completion.
Completion run_request(const Registry& registry, const Request& r);

/// A timed-out failure: "timed out after N ms".
ErrorInfo timed_out(std::chrono::nanoseconds timeout);
/// A timed-out failure whose message is `what` and the duration: "300 ms", "0.250 ms".
ErrorInfo timed_out_after(const char* what, std::chrono::nanoseconds timeout);
/// A lost heartbeat: "timed out: no heartbeat for N ms".
ErrorInfo missed_heartbeat(std::chrono::nanoseconds timeout);

/// For executors that cannot stop a running task: a task that returned after its
/// timeout is a timeout (its result is dropped).
void apply_timeout_late(Completion& c, std::chrono::nanoseconds timeout);

}  // namespace flowy::detail

#pragma once
// How one activity call runs, on whatever thread or process: shared by the in-process
// executors (src/engine/local_executors.cpp) and the worker processes
// (src/worker/worker_main.cpp).

#include "engine/executor.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace flowy::detail {

/// Runs an activity on the calling thread, its arguments read from `args` and its
/// result written to `out`; sets the outcome, error and duration of `c`. Never throws.
void run_activity(const Registry& registry, std::uint32_t activity, std::streambuf& args, ResultOut& out,
                  Completion& c);

/// Runs one request on the calling thread: never throws; activity exceptions become a failed completion.
Completion run_request(const Registry& registry, std::uint32_t task, std::uint32_t activity, std::string_view args);

/// A timed-out failure: "timed out after N ms".
ErrorInfo timed_out(std::chrono::nanoseconds timeout);

/// For executors that cannot stop a running task: a task that returned after its
/// timeout is a timeout (its result is dropped).
void apply_timeout_late(Completion& c, std::chrono::nanoseconds timeout);

}  // namespace flowy::detail

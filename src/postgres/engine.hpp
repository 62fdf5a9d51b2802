#pragma once
// The PostgreSQL engine's entry points, called by flowy::PostgresWorkflow
// (include/flowy/postgres.hpp): their options. How it works: docs/postgres.md and engine.cpp.

#include <flowy/detail/core.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace flowy::detail::pg {

struct Options {
    std::string conninfo;
    /// How long a decider holds an execution, and a worker a task, without renewing
    /// (a third of it between renewals): what a dead or cut-off process delays.
    std::chrono::milliseconds lease{5000};
    /// The workflow type's version: executions are decided, and their tasks run, only by
    /// processes of the same version.
    std::string version = "1";
};

// The entry points (run, start, result, serve) are declared in include/flowy/postgres.hpp.

/// The schema version this library writes, and checks a database against.
inline constexpr int schema_version =
    3;  // 2: tasks.heartbeat_ms; 3: versions, signatures, start_by, deadline, concurrency

}  // namespace flowy::detail::pg

#pragma once
// The PostgreSQL engine's entry points, called by flowy::PostgresWorkflow
// (include/flowy/postgres.hpp). How it works: docs/postgres.md and engine.cpp.

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
};

/// Starts an execution and decides it here; returns its result (throws like run_local).
SlotPtr run(const Config& config, const WorkflowType& type, std::string args, const Options& o);
/// Inserts an execution for serving processes to decide; returns its id.
std::uint64_t start(const Config& config, const WorkflowType& type, std::string args, const Options& o);
/// Waits for execution `id` to end: its result, or throws its TaskError.
SlotPtr result(const Config& config, const WorkflowType& type, std::uint64_t id, const Options& o);
/// Serves until SIGINT or SIGTERM: runs tasks, decides executions nobody decides.
void serve(const Config& config, const WorkflowType& type, const Options& o);

/// The schema version this library writes, and checks a database against.
inline constexpr int schema_version = 1;

}  // namespace flowy::detail::pg

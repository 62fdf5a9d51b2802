#pragma once
/// \file flowy::PostgresWorkflow: the same workflows on a durable engine whose state
/// lives in PostgreSQL (docs/postgres.md).

#include <flowy/local_workflow.hpp>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flowy {

namespace detail::pg {
struct Options;
SlotPtr run(const Config&, const WorkflowType&, std::string, const Options&);
std::uint64_t start(const Config&, const WorkflowType&, std::string, const Options&);
SlotPtr result(const Config&, const WorkflowType&, std::uint64_t, const Options&);
void serve(const Config&, const WorkflowType&, const Options&);
/// The options behind a PostgresWorkflow (kept out of the header's layout).
struct OptionsBox {
    OptionsBox(std::string conninfo);
    OptionsBox(const OptionsBox&);
    OptionsBox& operator=(const OptionsBox&);
    ~OptionsBox();
    void lease(std::chrono::milliseconds l);
    void version(std::string v);
    const Options& get() const { return *p; }

private:
    Options* p;
};
}  // namespace detail::pg

/// An execution's id in the database.
class ExecutionId {
public:
    ExecutionId() = default;
    explicit ExecutionId(std::uint64_t v) : v_(v) {}
    /// Reads an id as to_string() writes it (digits); throws std::invalid_argument otherwise.
    static ExecutionId parse(std::string_view s) {
        std::uint64_t v = 0;
        bool digits = !s.empty() && s.size() <= 18;
        for (char c : s) {
            digits = digits && c >= '0' && c <= '9';
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (!digits || v == 0) throw std::invalid_argument("flowy: not an execution id: '" + std::string(s) + "'");
        return ExecutionId(v);
    }
    std::uint64_t value() const { return v_; }
    friend bool operator==(ExecutionId a, ExecutionId b) { return a.v_ == b.v_; }
    friend std::ostream& operator<<(std::ostream& os, ExecutionId id) { return os << id.v_; }

private:
    std::uint64_t v_ = 0;
};

inline std::string to_string(ExecutionId id) {
    return std::to_string(id.value());
}

/// One execution as `flowy executions` lists it.
struct ExecutionInfo {
    ExecutionId id;
    std::string workflow;
    std::string version;  ///< of the workflow's code that runs it
    std::string status;   ///< pending, running, succeeded, failed, cancelled
    std::string decider;  ///< host:pid of the process deciding it (or that decided it last)
    std::int64_t created_us = 0, started_us = 0, finished_us = 0;     ///< Unix microseconds (0: not yet)
    std::int64_t queued = 0, running = 0, succeeded = 0, failed = 0;  ///< its tasks by state
    std::string error;                                                ///< why it failed
    /// A task list that queued tasks of it wait on and that no serving process of its
    /// workflow serves now ("" if none), and since when the oldest of them waits (Unix µs).
    std::string waiting_list;
    std::int64_t waiting_since_us = 0;
};

/// The executions in the database at `conninfo`, newest first (at most `limit`).
std::vector<ExecutionInfo> list_executions(const std::string& conninfo, int limit = 100);

/// Which executions list_executions() returns.
struct ExecutionFilter {
    std::string status;         ///< "" for any, else pending, running, succeeded, failed or cancelled
    std::int64_t since_us = 0;  ///< only those created at or after this time (Unix microseconds; 0: any)
};
/// The executions that pass `filter`, newest first (at most `limit`); std::invalid_argument
/// for an unknown status.
std::vector<ExecutionInfo> list_executions(const std::string& conninfo, const ExecutionFilter& filter, int limit = 100);

/// Cancels execution `id`: it ends as cancelled (result() throws flowy::Cancelled), its
/// queued tasks are dropped and its running attempts stopped (their serving processes kill
/// their workers at their next lease renewal, within a third of the lease), and its
/// decider stops. Returns false if it had ended already (it is left as it was);
/// std::invalid_argument if there is no such execution.
bool cancel_execution(const std::string& conninfo, ExecutionId id);

/// Removes the executions that ended (succeeded, failed, cancelled) more than `older_than`
/// ago, with their tasks and history; returns how many. Running ones are never touched.
std::size_t purge_executions(const std::string& conninfo, std::chrono::seconds older_than);
/// Execution `id`'s history as a trace (JSON Lines, docs/trace-format.md), which
/// flowy::Trace and `flowy render|timeline|summary` read; throws std::invalid_argument
/// if there is no such execution or nobody has decided it yet.
std::string export_trace(const std::string& conninfo, ExecutionId id);

/// Configuration and the durable engine for workflow class `W`, over PostgreSQL.
///
///     flowy::PostgresWorkflow<ExampleWorkflow> w{"postgresql://127.0.0.1:5432/flowy"};
///     w.conf_activity("square", square_activity);
///     w.conf_activity("sum", sum_activity);
///     int v = w.run(2, 10);  // 104, its tasks run by this process and every serve()ing one
///
/// The connection string is libpq's (a URI or `key=value` pairs). The schema is made
/// (and versioned) by flowy on first use.
template <class W>
class PostgresWorkflow : public detail::WorkflowConfig<PostgresWorkflow<W>, W> {
    using Base = detail::WorkflowConfig<PostgresWorkflow<W>, W>;
    using Base::config_;
    using Flow = detail::workflow_of<W>;
    using T = typename Flow::value_type;

public:
    explicit PostgresWorkflow(std::string conninfo) : options_(std::move(conninfo)) {}

    /// How long a process holds an execution it decides, or a task it runs, without
    /// renewing (renewed every third of it); a process that died or was cut off holds
    /// it that long. Default 5 s; at least 100 ms.
    PostgresWorkflow& lease(std::chrono::milliseconds l) {
        options_.lease(l);
        return *this;
    }

    /// The version of this workflow's code (default "1"). An execution keeps the version
    /// it was started with; only processes of that version decide it and run its tasks,
    /// so new code (another version) can serve new executions while the old processes
    /// finish the old ones. Within one version every process must give each activity the
    /// same signature: a process that does not is refused with a ConfigError before it
    /// takes anything. Letters, digits and ".-_", at most 64.
    PostgresWorkflow& version(std::string v) {
        options_.version(std::move(v));
        return *this;
    }

    /// Starts an execution, decides it in this process and returns its value; its tasks
    /// run here (workers(n) local worker processes; workers(0): none) and in every
    /// process that serves this workflow. Throws TaskError or ConfigError like LocalWorkflow::run.
    template <class... A>
    auto run(A&&... args) {
        Base::check_workflow_class();
        detail::SlotPtr r = detail::pg::run(config_, Flow::type(), Flow::encode_args(args...), options_.get());
        if constexpr (!std::is_void_v<T>) return T(detail::value_of<T>(*r));
    }
    /// Inserts a new execution and returns its id at once: serving processes decide it.
    template <class... A>
    ExecutionId start(A&&... args) {
        Base::check_workflow_class();
        return ExecutionId(detail::pg::start(config_, Flow::type(), Flow::encode_args(args...), options_.get()));
    }
    /// Waits for execution `id` to end; returns its value or throws its TaskError.
    auto result(ExecutionId id) {
        detail::SlotPtr r = detail::pg::result(config_, Flow::type(), id.value(), options_.get());
        if constexpr (!std::is_void_v<T>) return T(detail::value_of<T>(*r));
    }
    /// Serves until SIGINT or SIGTERM: runs the tasks of the task lists of the
    /// activities it configured, and decides executions of this workflow that nobody
    /// decides (new ones from start(), and those whose decider died).
    void serve() {
        Base::check_workflow_class();
        detail::pg::serve(config_, Flow::type(), options_.get());
    }

private:
    detail::pg::OptionsBox options_;
};

}  // namespace flowy

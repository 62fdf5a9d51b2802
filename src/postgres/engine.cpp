// The PostgreSQL engine. PostgreSQL holds every execution, its history and its task
// queue; processes hold leases. The parts:
//
//  - A decider runs an execution's bodies as the local engine does (the same
//    Execution), with `Decider` behind the executor seam: a task it submits is kept
//    until the next wait(), then queued together with the history lines recorded
//    since (TraceRecorder into a string) in one statement, fenced by the decider's
//    token on the execution. Completions come back through an inbox row each, which a
//    worker inserts in the statement that records the completion.
//  - A worker (`Server`) claims queued tasks with FOR UPDATE SKIP LOCKED, runs them in
//    its local pool of forked worker processes, and writes completions fenced by the
//    attempt's token; it renews the leases of what it runs.
//  - A decider whose lease lapsed (it died, was stopped, was cut off) loses its
//    execution to a serving process, which replays the history: finished tasks are
//    answered from it (resume's Replay), queued and running ones are picked up again.
//  - A task whose lease lapsed is failed as a crash by its execution's decider, and
//    retried by the engine like any crash.
//
// Every statement is one transaction and may be sent again after an uncertain commit
// (db.cpp resends it after reconnecting): inserts are ON CONFLICT DO NOTHING, updates
// are fenced by a token and a state, and a decider that reconnected looks again for
// completions it may have missed (resync).

#include "postgres/engine.hpp"

#include <flowy/postgres.hpp>

#include "engine/execution.hpp"
#include "engine/stop_signals.hpp"
#include "postgres/db.hpp"
#include "trace/history.hpp"
#include "trace/trace_recorder.hpp"
#include "trace/writer.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <deque>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace flowy::detail::pg {

namespace {

using std::chrono::milliseconds;

/// The largest value (a task's encoded arguments or result) the engine stores.
constexpr std::size_t max_value = std::size_t(256) << 20;
/// A flush or a completion batch is split before it reaches this many bytes.
constexpr std::size_t batch_bytes = std::size_t(64) << 20;

std::string host_name() {
    char h[256] = {};
    if (gethostname(h, sizeof h - 1) != 0) return "?";
    return h;
}

/// Wall-clock minus monotonic microseconds, on this host now. Workers stamp run times
/// by CLOCK_MONOTONIC; the database keeps them as wall-clock times, which a decider on
/// another host turns back into its own monotonic clock.
std::int64_t wall_minus_monotonic_us() {
    timespec real{}, mono{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return (std::int64_t(real.tv_sec) - std::int64_t(mono.tv_sec)) * 1000000 + (real.tv_nsec - mono.tv_nsec) / 1000;
}

/// Why a value of `size` encoded bytes is refused, or "" if it is not.
std::string over_limit(const char* what, std::size_t size) {
    if (size <= max_value) return {};
    return std::string(what) + " " + std::to_string(size) + " bytes encoded, over the PostgreSQL engine's limit of " +
           std::to_string(max_value >> 20) + " MiB";
}

/// Registry index -> the activity's name ("child/square" inside child workflow
/// "child"), task list, signature and concurrency limit; child workflows' own entries
/// are empty but for their signatures.
struct Names {
    std::vector<std::string> name, list, signature;
    std::vector<std::int64_t> concurrency;
};
void name_plan(const Plan& p, const std::string& prefix, Names& n) {
    for (std::size_t i = 0; i < p.config->bindings.size(); ++i) {
        const Binding& b = p.config->bindings[i];
        std::size_t at = p.base + i;
        if (n.name.size() <= at)
            n.name.resize(at + 1), n.list.resize(at + 1), n.signature.resize(at + 1), n.concurrency.resize(at + 1);
        n.name[at] = prefix + b.name;
        n.list[at] = b.options.task_list.empty() ? "default" : b.options.task_list;
        n.signature[at] = b.signature.name();
        n.concurrency[at] = b.options.concurrency;
        if (p.children[i]) name_plan(*p.children[i], prefix + b.name + "/", n);
    }
}

const char* kind_name(ErrorInfo::Kind k) {
    switch (k) {
        case ErrorInfo::Kind::crashed:
            return "crashed";
        case ErrorInfo::Kind::timed_out:
            return "timed_out";
        case ErrorInfo::Kind::exception:
            break;
    }
    return "exception";
}
ErrorInfo::Kind kind_of(std::string_view s) {
    if (s == "crashed") return ErrorInfo::Kind::crashed;
    if (s == "timed_out" || s == "not_started") return ErrorInfo::Kind::timed_out;
    return ErrorInfo::Kind::exception;
}

// ---- the schema ----

const char* const schema_sql = R"SQL(
CREATE TABLE flowy.executions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow text NOT NULL,
    parameters text NOT NULL,
    input bytea NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    decider text,
    decider_token bigint NOT NULL DEFAULT 0,
    lease_until timestamptz,
    result bytea,
    error_kind text, error_message text, error_type text, error_task text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz,
    version text NOT NULL DEFAULT '1',
    deadline timestamptz);
CREATE INDEX executions_open ON flowy.executions (workflow, id) WHERE status IN ('pending', 'running');
CREATE TABLE flowy.tasks (
    execution bigint NOT NULL REFERENCES flowy.executions ON DELETE CASCADE,
    id text NOT NULL,
    workflow text NOT NULL,
    activity integer NOT NULL,
    activity_name text NOT NULL,
    task_list text NOT NULL,
    args bytea NOT NULL,
    timeout_ms bigint NOT NULL DEFAULT 0,
    heartbeat_ms bigint NOT NULL DEFAULT 0,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    token integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    host text, pid integer, worker integer,
    result bytea,
    error_kind text, error_message text, error_type text,
    started_us bigint, ended_us bigint, duration_us bigint,
    queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_at timestamptz,
    finished_at timestamptz,
    version text NOT NULL DEFAULT '1',
    start_by timestamptz,
    concurrency integer NOT NULL DEFAULT 0,
    PRIMARY KEY (execution, id));
CREATE INDEX tasks_queued ON flowy.tasks (workflow, task_list, queued_at) WHERE state = 'queued';
CREATE INDEX tasks_running ON flowy.tasks (execution, lease_until) WHERE state = 'running';
CREATE TABLE flowy.inbox (
    execution bigint NOT NULL REFERENCES flowy.executions ON DELETE CASCADE,
    id text NOT NULL,
    PRIMARY KEY (execution, id));
CREATE TABLE flowy.history (
    execution bigint NOT NULL REFERENCES flowy.executions ON DELETE CASCADE,
    seq integer NOT NULL,
    lines text NOT NULL,
    PRIMARY KEY (execution, seq));
)SQL";

/// What schema version 3 added: workflow versions, activity signatures, schedule and
/// execution timeouts, concurrency limits. Part of a new schema, and the migration from 2.
const char* const schema_3_sql = R"SQL(
CREATE TABLE IF NOT EXISTS flowy.activities (
    workflow text NOT NULL,
    version text NOT NULL,
    name text NOT NULL,
    signature text NOT NULL,
    PRIMARY KEY (workflow, version, name));
CREATE INDEX IF NOT EXISTS tasks_limited ON flowy.tasks (workflow, activity_name)
    WHERE state IN ('queued', 'running') AND concurrency > 0;
CREATE OR REPLACE FUNCTION flowy.claim_limited(p_workflow text, p_version text, p_lists text[], p_max integer,
        p_lease_ms bigint, p_host text, p_pid integer)
    RETURNS TABLE (execution bigint, id text, token integer, activity integer, activity_name text, args bytea,
                   timeout_ms bigint, heartbeat_ms bigint)
    LANGUAGE plpgsql AS $f$
#variable_conflict use_column
DECLARE
    a record;
    busy integer;
    room integer := p_max;
    got integer;
BEGIN
    -- Per activity with a limit: one claimer at a time (a transaction lock), which counts
    -- what runs (each statement here sees what others committed) and takes what is left.
    FOR a IN SELECT q.activity_name AS name, min(q.concurrency) AS lim FROM flowy.tasks q
             WHERE q.state = 'queued' AND q.concurrency > 0 AND q.workflow = p_workflow
               AND q.version = p_version AND q.task_list = ANY(p_lists)
             GROUP BY q.activity_name ORDER BY min(q.queued_at) LOOP
        EXIT WHEN room <= 0;
        PERFORM pg_advisory_xact_lock(hashtextextended(p_workflow || '/' || a.name, 7466511043));
        SELECT count(*) INTO busy FROM flowy.tasks r
        WHERE r.state = 'running' AND r.concurrency > 0 AND r.workflow = p_workflow AND r.activity_name = a.name;
        CONTINUE WHEN busy >= a.lim;
        RETURN QUERY UPDATE flowy.tasks t SET state = 'running', token = t.token + 1,
            lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond', host = p_host, pid = p_pid,
            claimed_at = clock_timestamp()
        FROM (SELECT q.execution, q.id FROM flowy.tasks q WHERE q.state = 'queued' AND q.concurrency > 0
              AND q.workflow = p_workflow AND q.version = p_version AND q.activity_name = a.name
              AND q.task_list = ANY(p_lists) ORDER BY q.queued_at LIMIT least(room, a.lim - busy)
              FOR UPDATE SKIP LOCKED) c
        WHERE t.execution = c.execution AND t.id = c.id
        RETURNING t.execution, t.id, t.token, t.activity, t.activity_name, t.args, t.timeout_ms, t.heartbeat_ms;
        GET DIAGNOSTICS got = ROW_COUNT;
        room := room - got;
    END LOOP;
END $f$;
)SQL";

/// The database's schema version, or nullopt if it has no flowy schema.
std::optional<int> stored_version(Connection& db) {
    Rows r = db.exec(
        "SELECT (SELECT value FROM flowy.meta WHERE key = 'schema_version')::int4 "
        "WHERE to_regclass('flowy.meta') IS NOT NULL");
    if (r.size() == 0 || r.null(0, 0)) return std::nullopt;
    return static_cast<int>(r.integer(0, 0));
}

std::string newer_schema(std::optional<int> v) {
    return "flowy: the database's flowy schema is version " + (v ? std::to_string(*v) : "?") +
           ", newer than this library's (" + std::to_string(schema_version) +
           "): use a newer flowy, or another database";
}

/// Creates the schema if the database has none; refuses a newer one.
void ensure_schema(Connection& db) {
    std::optional<int> v;
    try {
        v = stored_version(db);
    } catch (const StatementError&) {
        v = std::nullopt;
    }
    if (!v) {
        // One process creates it (an advisory lock held for the transaction); the others wait and see it.
        std::string script = std::string("BEGIN; SELECT pg_advisory_xact_lock(7466511042); ") +
                             "CREATE SCHEMA IF NOT EXISTS flowy; "
                             "CREATE TABLE IF NOT EXISTS flowy.meta (key text PRIMARY KEY, value text NOT NULL); "
                             "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM flowy.meta WHERE key = 'schema_version') THEN "
                             "EXECUTE $s$" +
                             schema_sql + schema_3_sql + "$s$; INSERT INTO flowy.meta VALUES ('schema_version', '" +
                             std::to_string(schema_version) + "'); END IF; END $$; COMMIT;";
        try {
            db.exec_script(script.c_str());
        } catch (const StatementError& e) {
            db.exec_script("ROLLBACK");
            throw ConfigError(std::string("flowy: cannot create the flowy schema in the database: ") + e.what() +
                              " (the role needs CREATE on the database, or the schema made by a role that has it)");
        }
        v = stored_version(db);
    }
    if (!v || *v > schema_version) throw ConfigError(newer_schema(v));
    if (*v < schema_version) {
        // An older schema is brought up to this library's, once (the same lock as its making).
        // Processes of the older library then refuse it, with the error above: stop them first.
        try {
            std::string script = std::string(
                                     "BEGIN; SELECT pg_advisory_xact_lock(7466511042); "
                                     "ALTER TABLE flowy.tasks ADD COLUMN IF NOT EXISTS heartbeat_ms bigint NOT NULL "
                                     "DEFAULT 0; "  // 2
                                     "ALTER TABLE flowy.executions ADD COLUMN IF NOT EXISTS version text NOT NULL "
                                     "DEFAULT '1', ADD COLUMN IF NOT EXISTS deadline timestamptz; "
                                     "ALTER TABLE flowy.tasks ADD COLUMN IF NOT EXISTS version text NOT NULL DEFAULT "
                                     "'1', ADD COLUMN IF NOT EXISTS start_by timestamptz, ADD COLUMN IF NOT EXISTS "
                                     "concurrency integer NOT NULL DEFAULT 0; ") +
                                 schema_3_sql + "UPDATE flowy.meta SET value = '" + std::to_string(schema_version) +
                                 "' WHERE key = 'schema_version' AND value::int4 < " + std::to_string(schema_version) +
                                 "; COMMIT;";
            db.exec_script(script.c_str());
        } catch (const StatementError& e) {
            db.exec_script("ROLLBACK");
            throw ConfigError("flowy: cannot bring the flowy schema from version " + std::to_string(*v) + " to " +
                              std::to_string(schema_version) + ": " + e.what() +
                              " (the role needs to own the flowy schema's tables)");
        }
    }
}

/// A connection whose warnings go to `log`; ConfigError if it cannot be made.
std::unique_ptr<Connection> connect(const std::string& conninfo, std::function<void(std::string_view)> log) {
    try {
        return std::make_unique<Connection>(conninfo,
                                            [log = std::move(log)](const std::string& m) { log_warning(log, m); });
    } catch (const ConnectError& e) {
        throw ConfigError(e.what());
    }
}
std::unique_ptr<Connection> connect(const Options& o, const Config& config) {
    std::unique_ptr<Connection> db = connect(o.conninfo, config.log);
    db->answer_within(4 * o.lease);  // by then this process's leases have lapsed anyway
    return db;
}

/// A connection for reading what is there (the tools, result()): no schema is made;
/// std::invalid_argument if there is none.
std::unique_ptr<Connection> connect_to_read(const std::string& conninfo,
                                            std::function<void(std::string_view)> log = {}) {
    std::unique_ptr<Connection> db = connect(conninfo, std::move(log));
    std::optional<int> v = stored_version(*db);
    if (!v) throw std::invalid_argument("flowy: this database has no flowy schema (no execution ran in it)");
    if (*v > schema_version) throw ConfigError(newer_schema(v));
    return db;
}

/// The history lines execution `id`'s deciders stored, in order; `next_seq` (if given)
/// is the sequence number the next batch takes.
std::string history_text(Connection& db, std::int64_t id, int* next_seq = nullptr) {
    Rows h = db.exec("SELECT seq, lines FROM flowy.history WHERE execution = $1 ORDER BY seq", Params().integer(id));
    std::string text;
    for (int i = 0; i < h.size(); ++i) text += h.bytes(i, 1);
    if (next_seq) *next_seq = h.size() > 0 ? static_cast<int>(h.integer(h.size() - 1, 0)) + 1 : 0;
    return text;
}

/// A statement that starts with this CTE (and names `quick` in its FROM list) commits
/// without waiting for the WAL flush: for the statements whose loss in a database
/// crash changes nothing that matters. A lost claim puts the task back in the queue (its
/// worker's completion is then fenced out, and it runs again: at least once); a lost
/// inbox read brings the rows back, and the decider drops what it has already applied.
/// Scheduling and completions stay durable: something depends on them.
#define FLOWY_QUICK_COMMIT "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) "
/// An execution's deadline from parameter P, its execution_timeout in nanoseconds (0: none).
#define FLOWY_DEADLINE(P) "CASE WHEN " P " > 0 THEN clock_timestamp() + " P " / 1000 * interval '1 microsecond' END"

// ---- a task's row as a completion ----

/// The columns deliver() reads, in order.
constexpr const char* completion_columns =
    "t.id, t.state, t.result, t.error_kind, t.error_message, t.error_type, t.host, t.pid, t.worker, "
    "t.started_us, t.ended_us, t.duration_us";

// ---- the worker side ----

/// The application_name of a serving process's connection: this, its workflow, ": " and
/// the task lists it serves, comma-separated (PostgreSQL keeps the first 63 bytes).
constexpr const char* serving_prefix = "flowy serve ";

/// A task's key across executions, for the sets a serving process keeps of its statements' rows.
std::string task_key(std::int64_t execution, std::string_view id) {
    return std::to_string(execution) + "/" + std::string(id);
}

/// Runs tasks claimed from the queue in a local pool of worker processes.
class Server {
public:
    Server(Connection& db, std::unique_ptr<TaskExecutor> pool, Names names, std::string workflow, std::string version,
           int workers, milliseconds lease, std::function<void(std::string_view)> log)
        : db_(db),
          names_(std::move(names)),
          workflow_(std::move(workflow)),
          version_(std::move(version)),
          workers_(workers),
          lease_(lease),
          log_(std::move(log)),
          host_(host_name()),
          pool_(std::move(pool)) {
        for (const std::string& l : names_.list)
            if (!l.empty() && std::find(lists_.begin(), lists_.end(), l) == lists_.end()) lists_.push_back(l);
        // What it serves, where `flowy executions` looks for it (pg_stat_activity): a list
        // that no live connection names is one that nobody serves.
        std::string served = serving_prefix + workflow_ + ": ";
        for (std::size_t i = 0; i < lists_.size(); ++i) served += (i ? "," : "") + lists_[i];
        db_.set_name(served);
    }
    ~Server() { pool_->stop(true); }

    TaskExecutor* pool() { return pool_.get(); }
    /// A task was queued: look at the queue again.
    void poke() { claim_due_ = true; }
    /// A task of an activity with a concurrency limit was queued, or one ended: look for
    /// them too (every serving process honours the limit a task carries, whether or not
    /// it configured one itself).
    void poke_limited() { claim_due_ = limited_due_ = true; }

    /// One round: completions out, leases renewed, new tasks claimed. Never blocks but on statements.
    void step() {
        collect();
        if (!done_.empty()) complete();
        auto now = Clock::now();
        if (!running_.empty() && now >= next_renewal_) renew();
        if (now >= next_look_) claim_due_ = limited_due_ = true;  // a notification may have been missed
        if (claim_due_ && free_slots() > 0) claim();
    }
    /// Waits for a completion of a local worker, or the connection, or `deadline`.
    void wait(Clock::time_point deadline) {
        // The periodic look at the queue is due only with room for a task: a process whose
        // workers are all busy sleeps until one of them finishes (or dies: the pool notices
        // that only when it sleeps), instead of spinning on a look it cannot make.
        if (free_slots() > 0) deadline = std::min(deadline, next_look_);
        if (!running_.empty()) deadline = std::min(deadline, next_renewal_);
        if (pool_->in_flight() > 0) {
            pool_->wait(finished_, deadline);
        } else {
            db_.wait_readable(deadline);
        }
    }

private:
    struct Claimed {
        std::int64_t execution = 0;
        std::string id;
        std::int64_t token = 0;
        std::string args;
        std::uint32_t activity = 0;
        milliseconds timeout{0}, heartbeat{0};
        bool cancelled = false;  // its execution was cancelled: its attempt was stopped
        bool limited = false;    // its activity has a concurrency limit
    };
    /// Whether the tasks this process ran took under 1 ms on average: they may queue on a
    /// worker (claimed 16 per worker, sent with depth 16); others only go to an idle one.
    bool short_tasks() const { return avg_us_ >= 0 && avg_us_ < 1000; }
    std::size_t free_slots() const {
        std::size_t capacity = static_cast<std::size_t>(workers_) * (short_tasks() ? 16 : 1);
        return capacity > running_.size() ? capacity - running_.size() : 0;
    }

    void claim() {
        claim_due_ = false;
        next_look_ = Clock::now() + lease_ / 2;
        auto limit = static_cast<std::int64_t>(free_slots());
        Rows r =
            db_.exec(FLOWY_QUICK_COMMIT
                     "UPDATE flowy.tasks t SET state = 'running', token = t.token + 1, "
                     "lease_until = clock_timestamp() + $4 * interval '1 millisecond', host = $5, pid = $6, "
                     "claimed_at = clock_timestamp() "
                     "FROM (SELECT q.execution, q.id FROM unnest($2::text[]) l(list), LATERAL (SELECT execution, id "
                     "FROM flowy.tasks WHERE state = 'queued' AND workflow = $1 AND task_list = l.list "
                     "AND version = $7 AND concurrency = 0 "
                     "ORDER BY queued_at LIMIT $3 FOR UPDATE SKIP LOCKED) q LIMIT $3) c, quick "
                     "WHERE t.execution = c.execution AND t.id = c.id "
                     "RETURNING t.execution, t.id, t.token, t.activity, t.activity_name, t.args, t.timeout_ms, "
                     "t.heartbeat_ms",
                     Params()
                         .text(workflow_)
                         .texts(lists_)
                         .integer(limit)
                         .integer(lease_.count())
                         .text(host_)
                         .integer(getpid())
                         .text(version_));
        if (r.size() == limit) claim_due_ = true;  // there may be more
        take(r);
        // Tasks of activities with a concurrency limit (which the ordinary claim skips) are
        // claimed one activity at a time under a lock (flowy.claim_limited), with the limit
        // they carry, when some were queued or ended (flowy_limited) or at the periodic look.
        if (limited_due_ && r.size() < limit) {
            limited_take_ = true;
            Rows l =
                db_.exec(FLOWY_QUICK_COMMIT "SELECT f.* FROM quick, flowy.claim_limited($1, $2, $3, $4, $5, $6, $7) f",
                         Params()
                             .text(workflow_)
                             .text(version_)
                             .texts(lists_)
                             .integer(limit - r.size())
                             .integer(lease_.count())
                             .text(host_)
                             .integer(getpid()));
            take(l);
            limited_take_ = false;
            limited_due_ = l.size() == limit - r.size();  // there may be more
        }
    }

    /// Runs the tasks of claimed rows `r`.
    void take(const Rows& r) {
        if (r.size() > 0 && next_renewal_ < Clock::now()) next_renewal_ = Clock::now() + lease_ / 3;
        for (int i = 0; i < r.size(); ++i) {
            std::uint32_t slot = free_slot();
            Claimed& c = slots_[slot];
            c.execution = r.integer(i, 0);
            c.id = r.text(i, 1);
            c.token = r.integer(i, 2);
            c.args = r.text(i, 5);
            c.limited = limited_take_;
            auto activity = static_cast<std::size_t>(r.integer(i, 3));
            std::string name = r.text(i, 4);
            running_.insert(slot);
            if (activity >= names_.name.size() || names_.name[activity] != name) {
                Completion f;
                f.task = slot;
                f.outcome = Completion::Outcome::failed;
                f.error.message = "the serving process " + std::to_string(getpid()) + " on " + host_ +
                                  " has another configuration: activity " + std::to_string(activity) + " is '" +
                                  (activity < names_.name.size() ? names_.name[activity] : std::string("nothing")) +
                                  "' there, '" + name + "' in the execution";
                f.error.type = "flowy::ConfigError";
                finished_.push_back(std::move(f));
                continue;
            }
            c.activity = static_cast<std::uint32_t>(activity);
            c.timeout = milliseconds(r.integer(i, 6));
            c.heartbeat = milliseconds(r.integer(i, 7));
            run(slot);
        }
    }

    /// Hands claimed task `slot` to the local pool.
    void run(std::uint32_t slot) {
        const Claimed& c = slots_[slot];
        Request q;
        q.task = slot;
        q.activity = c.activity;
        q.args = c.args;
        q.timeout = c.timeout;
        q.heartbeat_timeout = c.heartbeat;
        q.depth = c.timeout.count() == 0 && c.heartbeat.count() == 0 && short_tasks() ? 16 : 1;
        pool_->submit(q);
    }

    std::uint32_t free_slot() {
        if (!free_.empty()) {
            std::uint32_t s = free_.back();
            free_.pop_back();
            return s;
        }
        slots_.emplace_back();
        return static_cast<std::uint32_t>(slots_.size() - 1);
    }

    void collect() {
        if (pool_->in_flight() > 0) pool_->wait(finished_, Clock::now());
        for (auto& w : pool_->warnings) log_warning(log_, w);
        pool_->warnings.clear();
        std::vector<Completion> arrived = std::move(finished_);
        finished_.clear();
        for (Completion& c : arrived) {
            if (c.outcome == Completion::Outcome::requeue) {
                run(c.task);  // it never started (its worker died first, or it was taken back): again, here
                continue;
            }
            if (c.outcome == Completion::Outcome::finished) {
                avg_us_ = avg_us_ < 0 ? double(c.duration_us) : 0.8 * avg_us_ + 0.2 * double(c.duration_us);
                if (std::string m = over_limit("its result is", c.bytes.size()); !m.empty()) {
                    c.outcome = Completion::Outcome::failed;
                    c.error = {ErrorInfo::Kind::exception, std::move(m), "std::length_error", {}, {}};
                    c.bytes.clear();
                }
            }
            done_.push_back(std::move(c));
        }
    }

    void complete() {
        std::int64_t offset = wall_minus_monotonic_us();
        while (!done_.empty()) {
            std::vector<std::int64_t> execs, tokens, pids, workers, started, ended, durations;
            std::vector<std::string> ids, states, results, kinds, messages, types;
            std::size_t bytes = 0, n = 0;
            for (; n < done_.size() && (n == 0 || bytes < batch_bytes); ++n) {
                Completion& c = done_[n];
                Claimed& cl = slots_[c.task];
                execs.push_back(cl.execution);
                ids.push_back(cl.id);
                tokens.push_back(cl.token);
                bool ok = c.outcome == Completion::Outcome::finished;
                states.emplace_back(ok ? "succeeded" : "failed");
                bytes += c.bytes.size() + c.error.message.size() + c.error.detail.size();
                results.push_back(ok ? std::move(c.bytes) : std::move(c.error.detail));  // a failed command's result
                kinds.emplace_back(ok ? "" : kind_name(c.error.kind));
                messages.push_back(c.error.message);
                types.push_back(c.error.type);
                WorkerRef w = pool_->worker(c.worker);
                pids.push_back(w.pid);
                workers.push_back(c.worker);
                started.push_back(c.started_us ? c.started_us + offset : 0);
                ended.push_back(c.ended_us ? c.ended_us + offset : 0);
                durations.push_back(static_cast<std::int64_t>(c.duration_us));
            }
            Rows r = db_.exec(
                "WITH c AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::bytea[], "
                "$6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[]) "
                "AS c(execution, id, token, state, result, kind, message, type, pid, worker, s, e, d)), "
                "u AS (UPDATE flowy.tasks t SET state = c.state, result = c.result, error_kind = nullif(c.kind, ''), "
                "error_message = nullif(c.message, ''), error_type = nullif(c.type, ''), pid = c.pid, "
                "worker = c.worker, started_us = nullif(c.s, 0), ended_us = nullif(c.e, 0), duration_us = c.d, "
                "finished_at = clock_timestamp(), lease_until = NULL FROM c "
                "WHERE t.execution = c.execution AND t.id = c.id AND t.token = c.token AND t.state = 'running' "
                "RETURNING t.execution, t.id), "
                "i AS (INSERT INTO flowy.inbox (execution, id) SELECT execution, id FROM u ON CONFLICT DO NOTHING) "
                "SELECT u.execution, u.id, pg_notify('flowy_done_' || u.execution, '') FROM u",
                Params()
                    .int8s(execs)
                    .texts(ids)
                    .int8s(tokens)
                    .texts(states)
                    .byteas(results)
                    .texts(kinds)
                    .texts(messages)
                    .texts(types)
                    .int8s(pids)
                    .int8s(workers)
                    .int8s(started)
                    .int8s(ended)
                    .int8s(durations));
            if (static_cast<std::size_t>(r.size()) < n) {
                std::unordered_set<std::string> accepted;
                for (int i = 0; i < r.size(); ++i) accepted.insert(task_key(r.integer(i, 0), r.bytes(i, 1)));
                for (std::size_t k = 0; k < n; ++k)
                    if (!accepted.count(task_key(execs[k], ids[k])) && !slots_[done_[k].task].cancelled)
                        log_warning(log_, "the result of task " + ids[k] + " of execution " + std::to_string(execs[k]) +
                                              " came after its lease was lost (this process was stopped or cut "
                                              "off): another attempt took its place, and this one is dropped");
            }
            // A task of an activity with a concurrency limit ended: its turn goes to the next
            // one, here or on another host (they look when told).
            bool turn = false;
            for (std::size_t k = 0; k < n; ++k) turn |= slots_[done_[k].task].limited;
            if (turn) {
                db_.exec("SELECT pg_notify('flowy_limited', $1)", Params().text(workflow_));
                poke_limited();
            }
            for (std::size_t k = 0; k < n; ++k) release(done_[k].task);
            done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
        }
        // No new look at the queue for the room made: a claim that filled every slot left
        // claim_due_ set, and a task queued since then notified.
    }

    void release(std::uint32_t slot) {
        running_.erase(slot);
        slots_[slot] = {};
        free_.push_back(slot);
    }

    void renew() {
        next_renewal_ = Clock::now() + lease_ / 3;
        std::vector<std::int64_t> execs, tokens;
        std::vector<std::string> ids;
        for (std::uint32_t s : running_) {
            execs.push_back(slots_[s].execution);
            ids.push_back(slots_[s].id);
            tokens.push_back(slots_[s].token);
        }
        Rows r = db_.exec(
            "WITH c AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[]) AS c(execution, id, token)), "
            "u AS (UPDATE flowy.tasks t SET lease_until = clock_timestamp() + $4 * interval '1 millisecond' FROM c "
            "WHERE t.execution = c.execution AND t.id = c.id AND t.token = c.token AND t.state = 'running' "
            "RETURNING t.execution, t.id) "
            "SELECT c.execution, c.id, coalesce(t.state = 'cancelled' OR t.error_kind = 'timed_out', true)::int4 "
            "FROM c LEFT JOIN flowy.tasks t "
            "ON t.execution = c.execution AND t.id = c.id "
            "WHERE NOT EXISTS (SELECT FROM u WHERE u.execution = c.execution AND u.id = c.id)",
            Params().int8s(execs).texts(ids).int8s(tokens).integer(lease_.count()));
        if (r.size() == 0) return;
        // These were not renewed. A cancelled task's attempt (or one whose execution was
        // purged since, or that its decider timed out: schedule_to_close) is stopped: its
        // worker is killed. The others lost their leases (this process was stopped or cut
        // off past them): their activities' flowy::heartbeat() says so from now on.
        std::unordered_map<std::string, bool> gone;  // "execution/id" -> stop it
        for (int i = 0; i < r.size(); ++i) gone[task_key(r.integer(i, 0), r.bytes(i, 1))] = r.integer(i, 2) == 1;
        for (std::uint32_t s : running_) {
            auto it = gone.find(task_key(slots_[s].execution, slots_[s].id));
            if (it == gone.end()) continue;
            slots_[s].cancelled = it->second;
            pool_->lose(s, it->second);
        }
    }

    Connection& db_;
    Names names_;
    std::string workflow_, version_;
    std::vector<std::string> lists_;
    int workers_;
    milliseconds lease_;
    std::function<void(std::string_view)> log_;
    std::string host_;
    std::unique_ptr<TaskExecutor> pool_;
    std::vector<Claimed> slots_;
    std::vector<std::uint32_t> free_;
    std::unordered_set<std::uint32_t> running_;
    std::vector<Completion> finished_, done_;
    double avg_us_ = -1;
    bool claim_due_ = true;
    bool limited_take_ = false;  // the rows being taken came from flowy.claim_limited
    bool limited_due_ = true;    // look for tasks of activities with a limit (flowy.claim_limited)
    Clock::time_point next_renewal_{}, next_look_{};
};

// ---- the decider side ----

/// This process's hold on an execution it decides: what its Decider (owned by the
/// Execution, and gone with it when a run is abandoned) shares with the code that
/// records the execution's end.
struct Hold {
    Connection& db;
    std::int64_t execution, token;
    int history_seq;             // of the next batch of history lines
    std::string lines;           // history recorded since the last batch (a TraceRecorder writes it)
    std::exception_ptr failure;  // why this process cannot go on deciding (the lease lost, the connection gone)

    /// Records the end of the execution (fenced), with the last history lines; false if
    /// the lease was lost first.
    bool finish(const SlotPtr* value, const WorkflowType& type, const ErrorInfo* error, bool cancelled) {
        Params p;
        p.integer(execution).integer(token);
        std::string bytes;
        if (value) {
            type.encode_result(**value, bytes);
            p.text("succeeded").bytes(bytes).null().null().null().null();
        } else {
            p.text(cancelled ? "cancelled" : "failed").null().text(kind_name(error->kind)).text(error->message);
            p.text(error->type).text(error->task);
        }
        p.integer(history_seq).text(std::exchange(lines, {}));
        ++history_seq;
        Rows r = db.exec(
            "WITH fence AS (UPDATE flowy.executions SET status = $3, result = $4, error_kind = $5, "
            "error_message = $6, error_type = nullif($7, ''), error_task = nullif($8, ''), "
            "finished_at = clock_timestamp(), lease_until = NULL "
            "WHERE id = $1 AND decider_token = $2 AND status = 'running' RETURNING id), "
            "h AS (INSERT INTO flowy.history (execution, seq, lines) SELECT $1, $9, $10 FROM fence "
            "WHERE $10 <> '' ON CONFLICT DO NOTHING), "
            "q AS (UPDATE flowy.tasks t SET state = 'cancelled', lease_until = NULL FROM fence "
            "WHERE t.execution = fence.id AND t.state IN ('queued', 'running')), "
            "i AS (DELETE FROM flowy.inbox WHERE execution = (SELECT id FROM fence)) "
            "SELECT id, pg_notify('flowy_result_' || id, '') FROM fence",
            p);
        if (r.size() == 1) return true;
        // Sent twice (an uncertain commit), or the lease was lost: which one?
        Rows s =
            db.exec("SELECT status, decider_token FROM flowy.executions WHERE id = $1", Params().integer(execution));
        return s.size() == 1 && s.text(0, 0) != "running" && s.integer(0, 1) == token;
    }

    /// Gives the execution up (SIGTERM on a serving process): another takes it over at
    /// once, from the history batches written so far.
    void release() noexcept {
        try {
            db.exec(
                "UPDATE flowy.executions SET lease_until = clock_timestamp(), decider = NULL "
                "WHERE id = $1 AND decider_token = $2 AND status = 'running'",
                Params().integer(execution).integer(token));
        } catch (...) {
        }
    }
};

/// The executor seam of an execution decided here: tasks go to the queue, completions
/// come from the inbox.
class Decider final : public TaskExecutor {
public:
    Decider(Hold& hold, Server* server, std::string workflow, std::string version, const Names& names,
            milliseconds lease)
        : hold_(hold),
          db_(hold.db),
          server_(server),
          execution_(hold.execution),
          token_(hold.token),
          workflow_(std::move(workflow)),
          version_(std::move(version)),
          names_(names),
          lease_(lease),
          channel_("flowy_done_" + std::to_string(hold.execution)) {
        db_.listen(channel_);
        next_renewal_ = Clock::now() + lease_ / 3;
    }
    ~Decider() override {
        try {
            db_.unlisten(channel_);
        } catch (...) {
        }
    }

    bool accepts(std::uint32_t) const override { return true; }
    int submit(const Request& r) override {
        if (std::string m = over_limit("its arguments are", r.args.size()); !m.empty()) {
            Completion c;
            c.task = r.task;
            c.outcome = Completion::Outcome::failed;
            c.error = {ErrorInfo::Kind::exception, std::move(m), "std::length_error", {}, {}};
            ready_.push_back(std::move(c));
            return -1;
        }
        Pending p;
        p.id = r.id.str();
        p.activity = r.activity;
        p.args = std::string(r.args);
        p.timeout_ms = std::chrono::duration_cast<milliseconds>(r.timeout).count();
        if (r.timeout.count() > 0 && p.timeout_ms == 0) p.timeout_ms = 1;
        p.heartbeat_ms = std::chrono::duration_cast<milliseconds>(r.heartbeat_timeout).count();
        if (r.heartbeat_timeout.count() > 0 && p.heartbeat_ms == 0) p.heartbeat_ms = 1;
        if (r.start_within.count() > 0) {
            p.start_ms = std::max<std::int64_t>(1, std::chrono::ceil<milliseconds>(r.start_within).count());
            start_bys_.push_back(Clock::now() + milliseconds(p.start_ms));
            std::push_heap(start_bys_.begin(), start_bys_.end(), std::greater<>());
        }
        outstanding_.emplace(p.id, r.task);
        pending_.push_back(std::move(p));
        return -1;
    }
    WorkerRef worker(int index) const override {
        if (index < 0 || static_cast<std::size_t>(index) >= workers_.size()) return {};
        return {index, workers_[std::size_t(index)].second, workers_[std::size_t(index)].first};
    }
    std::size_t in_flight() const override { return outstanding_.size() + ready_.size(); }
    void stop(bool) noexcept override {}
    /// The scheduler ended `task` (its schedule_to_close): it completes here at once (the
    /// scheduler drops that), and its row ends as timed out, which makes the serving
    /// process running it kill its worker at its next renewal.
    void lose(std::uint32_t task, bool) override {
        for (auto it = outstanding_.begin(); it != outstanding_.end(); ++it) {
            if (it->second != task) continue;
            auto queued =
                std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.id == it->first; });
            if (queued != pending_.end())
                pending_.erase(queued);  // not in the database yet
            else
                stop_.push_back(it->first);  // ended in the database now, or at the next flush if that fails
            try {
                stop_tasks();
            } catch (const ConnectError&) {
            }
            Completion c;
            c.task = task;
            c.outcome = Completion::Outcome::failed;
            c.error.kind = ErrorInfo::Kind::timed_out;
            ready_.push_back(std::move(c));
            outstanding_.erase(it);
            return;
        }
    }

    void wait(std::vector<Completion>& out, Clock::time_point deadline) override {
        try {
            for (bool first = true;; first = false) {
                flush();
                if (failure) return;
                if (inbox_due_) read_inbox();
                if (db_.take_reconnects() > 0) resync();
                if (Clock::now() >= next_renewal_) renew();
                if (!start_bys_.empty() && Clock::now() >= start_bys_.front()) expire_queued();
                if (server_) server_->step();
                if (!ready_.empty() || failure || cancel_signal()) break;
                if (!first && Clock::now() >= deadline) break;
                Clock::time_point until = std::min(deadline, next_renewal_);
                if (!start_bys_.empty()) until = std::min(until, start_bys_.front());
                if (server_)
                    server_->wait(until);
                else
                    db_.wait_readable(until);
                hear();
            }
        } catch (const ConnectError& e) {
            fail(std::make_exception_ptr(TaskError(e.what(), "", "flowy::ConnectError")));
        }
        for (Completion& c : ready_) out.push_back(std::move(c));
        ready_.clear();
    }

private:
    struct Pending {
        std::string id;
        std::uint32_t activity = 0;
        std::string args;
        std::int64_t timeout_ms = 0, heartbeat_ms = 0, start_ms = 0;
    };

    /// Fails the queued tasks past their start_by (their schedule_to_start): not retried
    /// (Completion::final).
    void expire_queued() {
        auto now = Clock::now();
        while (!start_bys_.empty() && start_bys_.front() <= now) {
            std::pop_heap(start_bys_.begin(), start_bys_.end(), std::greater<>());
            start_bys_.pop_back();
        }
        std::string sql = std::string(
                              "WITH t AS (UPDATE flowy.tasks SET state = 'failed', error_kind = 'not_started', "
                              "error_message = 'timed out: schedule_to_start passed after ' || "
                              "round(extract(epoch FROM clock_timestamp() - queued_at) * 1000) || ' ms waiting for a "
                              "worker of task list ' || task_list, "
                              "finished_at = clock_timestamp() WHERE execution = $1 AND state = 'queued' "
                              "AND start_by <= clock_timestamp() RETURNING *) SELECT ") +
                          completion_columns + " FROM t";
        deliver(db_.exec(sql.c_str(), Params().integer(execution_)));
        // The database's start_by of a task comes a little after this process's (it was
        // flushed after it was submitted): look again when the next one is due there.
        Rows next = db_.exec(
            "SELECT ceil(extract(epoch FROM min(start_by) - clock_timestamp()) * 1000)::int8 FROM flowy.tasks "
            "WHERE execution = $1 AND state = 'queued' AND start_by IS NOT NULL",
            Params().integer(execution_));
        if (next.size() == 1 && !next.null(0, 0)) {
            start_bys_.push_back(Clock::now() + milliseconds(std::max<std::int64_t>(next.integer(0, 0), 1)));
            std::push_heap(start_bys_.begin(), start_bys_.end(), std::greater<>());
        }
    }

    void hear() {
        for (const std::string& ch : db_.notifications()) {
            if (ch == channel_)
                inbox_due_ = true;
            else if (ch == "flowy_tasks" && server_)
                server_->poke();
            else if (ch == "flowy_limited" && server_)
                server_->poke_limited();
        }
    }

    void flush() {
        while (!pending_.empty() || !hold_.lines.empty()) {
            std::vector<std::string> ids, names, lists, args;
            std::vector<std::int64_t> activities, timeouts, heartbeats, starts, limits;
            std::size_t bytes = 0, n = 0;
            for (; n < pending_.size() && (n == 0 || bytes < batch_bytes); ++n) {
                Pending& p = pending_[n];
                bytes += p.args.size();
                ids.push_back(p.id);
                activities.push_back(p.activity);
                names.push_back(names_.name[p.activity]);
                lists.push_back(names_.list[p.activity]);
                args.push_back(std::move(p.args));
                timeouts.push_back(p.timeout_ms);
                heartbeats.push_back(p.heartbeat_ms);
                starts.push_back(p.start_ms);
                limits.push_back(names_.concurrency[p.activity]);
            }
            Rows r = db_.exec(
                "WITH fence AS (UPDATE flowy.executions SET lease_until = clock_timestamp() + $3 * interval "
                "'1 millisecond' WHERE id = $1 AND decider_token = $2 AND status = 'running' RETURNING id), "
                "h AS (INSERT INTO flowy.history (execution, seq, lines) SELECT $1, $10, $11 FROM fence "
                "WHERE $11 <> '' ON CONFLICT DO NOTHING), "
                "ins AS (INSERT INTO flowy.tasks (execution, id, workflow, activity, activity_name, task_list, args, "
                "timeout_ms, heartbeat_ms, state, version, start_by, concurrency) SELECT $1, t.id, $4, t.activity, "
                "t.name, t.list, t.args, t.timeout, t.heartbeat, 'queued', $14, CASE WHEN t.start > 0 THEN "
                "clock_timestamp() + t.start * interval '1 millisecond' END, t.lim FROM fence, unnest($5::text[], "
                "$6::int8[], $7::text[], $8::text[], $9::bytea[], $12::int8[], $13::int8[], $15::int8[], $16::int8[]) "
                "AS t(id, activity, name, list, args, timeout, heartbeat, start, lim) "
                "ON CONFLICT DO NOTHING RETURNING id, concurrency) "
                "SELECT 0, NULL::text FROM fence UNION ALL SELECT 1, id FROM ins UNION ALL "
                "SELECT 2, pg_notify('flowy_tasks', $4)::text FROM fence WHERE EXISTS (SELECT 1 FROM ins) UNION ALL "
                "SELECT 3, pg_notify('flowy_limited', $4)::text FROM fence "
                "WHERE EXISTS (SELECT 1 FROM ins WHERE concurrency > 0)",
                Params()
                    .integer(execution_)
                    .integer(token_)
                    .integer(lease_.count())
                    .text(workflow_)
                    .texts(ids)
                    .int8s(activities)
                    .texts(names)
                    .texts(lists)
                    .byteas(args)
                    .integer(hold_.history_seq)
                    .text(hold_.lines)
                    .int8s(timeouts)
                    .int8s(heartbeats)
                    .text(version_)
                    .int8s(starts)
                    .int8s(limits));
            bool fenced = false;
            std::unordered_set<std::string> inserted;
            for (int i = 0; i < r.size(); ++i) {
                if (r.integer(i, 0) == 0) fenced = true;
                if (r.integer(i, 0) == 1) inserted.insert(r.text(i, 1));
            }
            if (!fenced) {
                lost();
                return;
            }
            next_renewal_ = Clock::now() + lease_ / 3;
            if (!hold_.lines.empty()) ++hold_.history_seq;
            hold_.lines.clear();
            // Tasks already queued by a decider before us (a takeover): they may have ended.
            std::vector<std::string> existed;
            for (const std::string& id : ids)
                if (!inserted.count(id)) existed.push_back(id);
            pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
            if (!existed.empty()) look_up(existed);
        }
        stop_tasks();
    }

    /// Ends the tasks in stop_ in the database as timed out (the scheduler ended them:
    /// schedule_to_close): queued ones never run, running ones are stopped by their
    /// serving process at its next renewal.
    void stop_tasks() {
        if (stop_.empty()) return;
        db_.exec(
            "UPDATE flowy.tasks SET state = 'failed', error_kind = 'timed_out', error_message = 'timed out: "
            "schedule_to_close passed before it ended (its decider stopped it)', finished_at = clock_timestamp(), "
            "lease_until = NULL "
            "WHERE execution = $1 AND id = ANY($2::text[]) AND state IN ('queued', 'running') AND EXISTS "
            "(SELECT FROM flowy.executions WHERE id = $1 AND decider_token = $3 AND status = 'running')",
            Params().integer(execution_).texts(stop_).integer(token_));
        stop_.clear();
    }

    /// Delivers the ends of `ids` that are recorded already.
    void look_up(const std::vector<std::string>& ids) {
        std::string sql = std::string("SELECT ") + completion_columns +
                          " FROM flowy.tasks t WHERE t.execution = $1 AND t.id = ANY($2::text[]) "
                          "AND t.state IN ('succeeded', 'failed')";
        deliver(db_.exec(sql.c_str(), Params().integer(execution_).texts(ids)));
    }

    void read_inbox() {
        inbox_due_ = false;
        std::string sql = std::string(FLOWY_QUICK_COMMIT
                                      ", d AS (DELETE FROM flowy.inbox WHERE execution = $1 RETURNING id) SELECT ") +
                          completion_columns +
                          " FROM quick, flowy.tasks t WHERE t.execution = $1 AND t.id = ANY(ARRAY(SELECT id FROM d))";
        deliver(db_.exec(sql.c_str(), Params().integer(execution_)));
    }

    /// After a reconnection: an inbox read whose reply was lost took its rows with it.
    void resync() {
        std::vector<std::string> ids;
        for (const auto& [id, task] : outstanding_) ids.push_back(id);
        if (!ids.empty()) look_up(ids);
        inbox_due_ = true;
    }

    void deliver(const Rows& r) {
        std::int64_t offset = wall_minus_monotonic_us();
        for (int i = 0; i < r.size(); ++i) {
            auto it = outstanding_.find(r.text(i, 0));
            if (it == outstanding_.end()) continue;  // delivered already, or not this decider's (replayed)
            Completion c;
            c.task = it->second;
            outstanding_.erase(it);
            if (r.text(i, 1) == "succeeded") {
                c.outcome = Completion::Outcome::finished;
                c.bytes = r.text(i, 2);
            } else {
                c.outcome = Completion::Outcome::failed;
                c.error.kind = kind_of(r.bytes(i, 3));
                c.final = r.bytes(i, 3) == "not_started";  // a schedule_to_start: not retried
                c.error.message = r.text(i, 4);
                c.error.type = r.text(i, 5);
                c.error.detail = r.text(i, 2);
            }
            c.worker = worker_index(r.text(i, 6), static_cast<int>(r.integer(i, 7, -1)));
            std::int64_t s = r.integer(i, 9), e = r.integer(i, 10);
            c.started_us = s ? s - offset : 0;
            c.ended_us = e ? e - offset : 0;
            c.duration_us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.integer(i, 11)));
            ready_.push_back(std::move(c));
        }
    }

    int worker_index(const std::string& host, int pid) {
        if (pid < 0) return -1;
        for (std::size_t i = 0; i < workers_.size(); ++i)
            if (workers_[i].second == pid && workers_[i].first == host) return static_cast<int>(i);
        workers_.emplace_back(host, pid);
        return static_cast<int>(workers_.size() - 1);
    }

    void renew() {
        next_renewal_ = Clock::now() + lease_ / 3;
        Rows f = db_.exec(
            "UPDATE flowy.executions SET lease_until = clock_timestamp() + $3 * interval '1 millisecond' "
            "WHERE id = $1 AND decider_token = $2 AND status = 'running' RETURNING id",
            Params().integer(execution_).integer(token_).integer(lease_.count()));
        if (f.size() == 0) {
            lost();
            return;
        }
        // Attempts whose worker stopped renewing: failed as crashes, which the engine retries.
        std::string sql = std::string(
                              "WITH t AS (UPDATE flowy.tasks SET state = 'failed', error_kind = 'crashed', "
                              "error_message = 'worker process ' || coalesce(pid::text, '?') || ' on ' || "
                              "coalesce(host, '?') || ' lost its lease on the task (it died, was stopped or was cut "
                              "off from the database)', finished_at = clock_timestamp(), lease_until = NULL "
                              "WHERE execution = $1 AND state = 'running' AND lease_until < clock_timestamp() "
                              "RETURNING *) SELECT ") +
                          completion_columns + " FROM t";
        deliver(db_.exec(sql.c_str(), Params().integer(execution_)));
    }

    void fail(std::exception_ptr why) {
        failure = why;  // the execution stops with it
        hold_.failure = std::move(why);
    }
    void lost() {
        Rows r = db_.exec("SELECT status FROM flowy.executions WHERE id = $1", Params().integer(execution_));
        if (r.size() > 0 && r.text(0, 0) == "cancelled") {
            fail(std::make_exception_ptr(TaskError("flowy: execution " + std::to_string(execution_) + " was cancelled",
                                                   "", "flowy::ExecutionCancelled")));
            return;
        }
        fail(std::make_exception_ptr(
            TaskError("flowy: this process lost its lease on execution " + std::to_string(execution_) +
                          " (it was stopped or cut off from the database for longer than the lease): another "
                          "process decides it now",
                      "", "flowy::LeaseLost")));
    }

    Hold& hold_;
    Connection& db_;
    Server* server_;
    std::int64_t execution_, token_;
    std::string workflow_, version_;
    const Names& names_;
    milliseconds lease_;
    std::string channel_;
    std::deque<Pending> pending_;
    std::vector<std::string> stop_;                               // tasks to end as timed out in the database
    std::vector<Clock::time_point> start_bys_;                    // when queued tasks must have started (a heap)
    std::unordered_map<std::string, std::uint32_t> outstanding_;  // task id -> the execution's task index
    std::vector<Completion> ready_;
    std::vector<std::pair<std::string, int>> workers_;  // (host, pid) of each worker seen
    bool inbox_due_ = true;
    Clock::time_point next_renewal_;
};

/// Registers the signatures of this code's workflow and activities under its workflow type
/// and version, and refuses (ConfigError, naming both) a signature that differs from the
/// one registered: processes of one version must agree on every activity's.
void check_signatures(Connection& db, const WorkflowType& type, const std::string& version, const Names& names) {
    std::vector<std::string> name{"(the workflow)"}, signature{type.signature.name()};
    for (std::size_t i = 0; i < names.name.size(); ++i) {
        name.push_back(names.name[i]);
        signature.push_back(names.signature[i]);
    }
    Rows r = db.exec(
        "WITH x AS (SELECT * FROM unnest($3::text[], $4::text[]) AS x(name, signature)), "
        "i AS (INSERT INTO flowy.activities (workflow, version, name, signature) SELECT $1, $2, name, signature "
        "FROM x ON CONFLICT DO NOTHING) "
        "SELECT x.name, x.signature, a.signature FROM x JOIN flowy.activities a ON a.workflow = $1 "
        "AND a.version = $2 AND a.name = x.name WHERE a.signature <> x.signature ORDER BY x.name",
        Params().text(type.name).text(version).texts(name).texts(signature));
    if (r.size() == 0) return;
    std::string what =
        r.text(0, 0) == "(the workflow)" ? "the workflow " + type.name : "activity '" + r.text(0, 0) + "'";
    throw ConfigError("flowy: " + what + " is " + r.text(0, 1) + " in this process but " + r.text(0, 2) +
                      " in version " + version + " of workflow " + type.name +
                      " in the database: processes of one version must agree; deploy this code as another version "
                      "(PostgresWorkflow::version)");
}

/// What a process that runs or serves a workflow holds: its plan, its local pool
/// (forked before the connection is made: a child must never share a live connection),
/// its connection.
struct Process {
    Registry registry;
    std::unique_ptr<Instance> first;
    std::unique_ptr<Plan> plan;
    Names names;
    int workers = 0;
    std::unique_ptr<Connection> db;
    std::unique_ptr<Server> server;

    Process(const Config& config, const WorkflowType& type, const Options& o, bool serving) {
        workers = config.workers_set ? config.workers : workers_of(config);
        if (workers < 0) throw ConfigError("flowy: workers(" + std::to_string(workers) + "): at least 0");
        if (serving && workers == 0)
            throw ConfigError("flowy: serve() with workers(0) runs nothing: give it at least one worker");
        if (o.lease < milliseconds(100))
            throw ConfigError("flowy: lease(" + std::to_string(o.lease.count()) + " ms): at least 100 ms");
        plan = plan_of(type, config, registry, &first);
        name_plan(*plan, "", names);
        std::unique_ptr<TaskExecutor> pool;
        if (workers > 0) {
            warn_of_threads(config, 0);
            pool = make_process_executor(registry, workers);
        }
        db = connect(o, config);
        ensure_schema(*db);
        check_signatures(*db, type, o.version, names);
        if (pool) {
            TaskExecutor* local = pool.get();
            local->watch(db->socket());
            db->on_socket = [local](int fd) { local->watch(fd); };
            server = std::make_unique<Server>(*db, std::move(pool), names, type.name, o.version, workers, o.lease,
                                              config.log);
        }
        db->listen("flowy_tasks");
        db->listen("flowy_limited");
    }
    /// A fresh instance of the root workflow for the next execution (the first was made by the check).
    std::unique_ptr<Instance> instance() { return std::move(first); }  // null: the execution makes one
};

/// Takes over one execution of `type` that nobody decides, if there is one: its id, token, input.
struct Claim {
    std::int64_t id = 0, token = 0;
    std::string input;
    std::optional<Clock::time_point> deadline;  // its execution_timeout's end, on this host's clock
    std::chrono::nanoseconds timeout{0};        // that execution_timeout
};

/// Decides execution `id` (this process holds its lease with `token`), replaying
/// `replay` on a takeover. Returns the result; throws the execution's error, or the
/// TaskError of a lost lease (the execution goes on elsewhere).
SlotPtr decide(Process& p, const Config& config, const WorkflowType& type, std::int64_t id, std::int64_t token,
               std::string input, Replay* replay, int history_seq, const Options& o, const Claim* claim = nullptr) {
    Hold hold{*p.db, id, token, history_seq, {}, nullptr};
    std::unique_ptr<Recorder> recorder =
        make_recorders(config, replay != nullptr, std::make_unique<trace::TraceRecorder>(&hold.lines));
    ExecutionParts parts;
    parts.executor = std::make_unique<Decider>(hold, p.server.get(), type.name, o.version, p.names, o.lease);
    if (claim) {
        parts.deadline = claim->deadline;
        parts.execution_timeout = claim->timeout;
    }
    parts.activities = p.registry.size();
    parts.recorder = recorder.get();
    parts.replay = replay;
    parts.executor_name = "postgres";
    parts.workers = p.workers;
    parts.log = config.log;
    Execution ex(*p.plan, std::move(parts));
    SlotPtr result;
    try {
        result = ex.run(std::move(input), p.instance());
    } catch (const TaskError& e) {
        if (hold.failure) throw;  // the lease or the connection was lost: nothing is ours to record
        bool cancelled = dynamic_cast<const Cancelled*>(&e) != nullptr;
        if (cancelled && cancel_signal()) {
            // This process was asked to stop, not the execution: another process goes on with it.
            hold.release();
            throw Cancelled(std::string(e.what()) + "; execution " + std::to_string(id) +
                            " goes on in the serving processes");
        }
        ErrorInfo info{ErrorInfo::Kind::exception, e.what(), e.type(), e.task(), {}};
        if (dynamic_cast<const TaskTimedout*>(&e)) info.kind = ErrorInfo::Kind::timed_out;
        if (dynamic_cast<const WorkerCrashed*>(&e)) info.kind = ErrorInfo::Kind::crashed;
        hold.finish(nullptr, type, &info, cancelled);
        throw;
    }
    if (hold.failure) std::rethrow_exception(hold.failure);
    if (!hold.finish(&result, type, nullptr, false))
        throw TaskError("flowy: lost the lease on execution " + std::to_string(id) + " before recording its end", "",
                        "flowy::LeaseLost");
    return result;
}

/// The result slot of an execution that ended, from its row.
SlotPtr ended_result(const Rows& r, std::uint64_t id) {
    std::string status = r.text(0, 0);
    if (status == "succeeded") {
        SlotPtr s = make_slot();
        s->bytes = r.text(0, 1);
        s->state = Slot::State::finished;
        return s;
    }
    ErrorInfo e;
    e.kind = kind_of(r.bytes(0, 2));
    e.message = r.text(0, 3);
    e.type = r.text(0, 4);
    e.task = r.text(0, 5);
    if (status == "cancelled")
        throw Cancelled(e.message.empty() ? "flowy: execution " + std::to_string(id) + " was cancelled" : e.message);
    throw_error(e);
}

/// Waits for execution `id` to end: its result, or throws its error.
SlotPtr wait_for(Connection& db, std::uint64_t id) {
    db.listen("flowy_result_" + std::to_string(id));
    for (;;) {
        Rows r = db.exec(
            "SELECT status, result, error_kind, error_message, error_type, error_task FROM flowy.executions "
            "WHERE id = $1",
            Params().integer(static_cast<std::int64_t>(id)));
        if (r.size() == 0) throw std::invalid_argument("flowy: there is no execution " + std::to_string(id));
        std::string status = r.text(0, 0);
        if (status != "pending" && status != "running") return ended_result(r, id);
        db.wait_readable(Clock::now() + std::chrono::seconds(1));
        db.notifications();
    }
}

/// Claims an execution of this workflow that nobody decides, if there is one. If there
/// is none, `*lapse` is set to when the next lease of a running one lapses (a decider
/// that died is replaced then, not at the next periodic look), or left alone if none runs.
std::optional<Claim> claim_execution(Connection& db, const WorkflowType& type, const Options& o,
                                     Clock::time_point* lapse) {
    Rows r = db.exec(
        "WITH c AS (UPDATE flowy.executions e SET status = 'running', decider = $2, "
        "decider_token = e.decider_token + 1, lease_until = clock_timestamp() + $3 * interval '1 millisecond', "
        "started_at = coalesce(e.started_at, clock_timestamp()) "
        "FROM (SELECT id FROM flowy.executions WHERE workflow = $1 AND version = $4 AND status IN ('pending', "
        "'running') AND (lease_until IS NULL OR lease_until < clock_timestamp()) ORDER BY id LIMIT 1 "
        "FOR UPDATE SKIP LOCKED) c WHERE e.id = c.id RETURNING e.id, e.decider_token, e.input, e.deadline, "
        "e.created_at) "
        "SELECT id, decider_token, input, NULL::int8, "
        "floor(extract(epoch FROM deadline - clock_timestamp()) * 1000000)::int8, "
        "round(extract(epoch FROM deadline - created_at) * 1000)::int8 FROM c UNION ALL "
        "SELECT NULL, NULL, NULL, ceil(extract(epoch FROM min(lease_until) - clock_timestamp()) * 1000)::int8, NULL, "
        "NULL "
        "FROM flowy.executions WHERE workflow = $1 AND version = $4 AND status = 'running' "
        "AND NOT EXISTS (SELECT FROM c)",
        Params()
            .text(type.name)
            .text(host_name() + ":" + std::to_string(getpid()))
            .integer(o.lease.count())
            .text(o.version));
    for (int i = 0; i < r.size(); ++i) {
        if (!r.null(i, 0)) {
            Claim c{r.integer(i, 0), r.integer(i, 1), r.text(i, 2), std::nullopt, {}};
            if (!r.null(i, 4)) {
                c.deadline = Clock::now() + std::chrono::microseconds(r.integer(i, 4));
                c.timeout = milliseconds(r.integer(i, 5));  // for its message: to the millisecond
            }
            return c;
        }
        if (!r.null(i, 3)) *lapse = Clock::now() + milliseconds(std::max<std::int64_t>(r.integer(i, 3), 0) + 10);
    }
    return std::nullopt;
}

/// What an earlier decider of execution `id` recorded, for replay: its history and the
/// tasks that succeeded after its last flush. nullopt if it recorded nothing.
std::optional<History> recorded(Connection& db, std::int64_t id, int& next_seq) {
    std::string text = history_text(db, id, &next_seq);
    if (text.empty()) return std::nullopt;
    History hist = history_of(text, "the history of execution " + std::to_string(id));
    Rows t = db.exec(
        "SELECT id, result, args FROM flowy.tasks WHERE execution = $1 AND state = 'succeeded' "
        "ORDER BY finished_at",
        Params().integer(id));
    for (int i = 0; i < t.size(); ++i) {
        std::string full = t.text(i, 0);
        std::optional<TaskId> tid = TaskId::parse(full);
        if (!tid) continue;
        std::string first = tid->first_attempt().str();
        if (hist.finished.count(first)) continue;
        hist.finished[first] = {t.text(i, 1), args_hash(t.bytes(i, 2))};
        hist.finish_order[first] = ++hist.last_order;
    }
    return hist;
}

}  // namespace

SlotPtr run(const Config& config, const WorkflowType& type, std::string args, const Options& o) {
    if (std::string m = over_limit("flowy: the execution's arguments are", args.size()); !m.empty())
        throw std::length_error(m);
    Process p(config, type, o, false);
    Rows r = p.db->exec(
        "INSERT INTO flowy.executions (workflow, parameters, input, status, decider, decider_token, lease_until, "
        "started_at, version, deadline) VALUES ($1, $2, $3, 'running', $4, 1, clock_timestamp() + $5 * interval "
        "'1 millisecond', clock_timestamp(), $6, " FLOWY_DEADLINE("$7") ") RETURNING id",
        Params()
            .text(type.name)
            .text(type.parameters.name())
            .bytes(args)
            .text(host_name() + ":" + std::to_string(getpid()))
            .integer(o.lease.count())
            .text(o.version)
            .integer(config.execution_timeout.count()));
    std::int64_t id = r.integer(0, 0);
    try {
        return decide(p, config, type, id, 1, std::move(args), nullptr, 0, o);
    } catch (const TaskError& e) {
        if (e.type() != "flowy::LeaseLost" && e.type() != "flowy::ExecutionCancelled") throw;
        if (e.type() == "flowy::LeaseLost") log_warning(config.log, std::string(e.what()) + "; waiting for its result");
        return wait_for(*p.db, static_cast<std::uint64_t>(id));  // a cancelled one throws Cancelled
    }
}

std::uint64_t start(const Config& config, const WorkflowType& type, std::string args, const Options& o) {
    if (std::string m = over_limit("flowy: the execution's arguments are", args.size()); !m.empty())
        throw std::length_error(m);
    Registry registry;
    std::unique_ptr<Instance> first;
    std::unique_ptr<Plan> plan =
        plan_of(type, config, registry, &first);  // a configuration that cannot run is refused here
    std::unique_ptr<Connection> db = connect(o, config);
    ensure_schema(*db);
    Names names;
    name_plan(*plan, "", names);
    check_signatures(*db, type, o.version, names);
    Rows r = db->exec(
        "WITH e AS (INSERT INTO flowy.executions (workflow, parameters, input, status, version, deadline) "
        "VALUES ($1, $2, $3, 'pending', $4, " FLOWY_DEADLINE("$5") ") RETURNING id) "
        "SELECT id, pg_notify('flowy_executions', $1) FROM e",
        Params()
            .text(type.name)
            .text(type.parameters.name())
            .bytes(args)
            .text(o.version)
            .integer(config.execution_timeout.count()));
    return static_cast<std::uint64_t>(r.integer(0, 0));
}

SlotPtr result(const Config& config, const WorkflowType& type, std::uint64_t id, const Options& o) {
    std::unique_ptr<Connection> db = connect_to_read(o.conninfo, config.log);
    // Its value is decoded as this code's workflow type: it must be the one that ran it.
    Rows r = db->exec("SELECT workflow, version FROM flowy.executions WHERE id = $1",
                      Params().integer(static_cast<std::int64_t>(id)));
    if (r.size() == 0) throw std::invalid_argument("flowy: there is no execution " + std::to_string(id));
    if (r.text(0, 0) != type.name || r.text(0, 1) != o.version)
        throw ConfigError("flowy: execution " + std::to_string(id) + " is version " + r.text(0, 1) + " of workflow " +
                          r.text(0, 0) + ", not version " + o.version + " of " + type.name +
                          ": wait for it with the code of its version");
    return wait_for(*db, id);
}

/// serve(), until this process is asked to stop.
void serve_until_stopped(Process& p, const Config& config, const WorkflowType& type, const Options& o) {
    p.db->listen("flowy_executions");
    auto next_look = Clock::now();
    bool look = true;
    while (!cancel_signal()) {
        if (look || Clock::now() >= next_look) {
            look = false;
            next_look = Clock::now() + o.lease / 2;
            Clock::time_point lapse = next_look;
            if (std::optional<Claim> c = claim_execution(*p.db, type, o, &lapse)) {
                look = true;  // there may be more
                int seq = 0;
                std::optional<History> h = recorded(*p.db, c->id, seq);
                std::optional<Replay> replay;
                if (h) replay.emplace(std::move(*h));
                try {
                    decide(p, config, type, c->id, c->token, std::move(c->input), replay ? &*replay : nullptr, seq, o,
                           &*c);
                } catch (const Cancelled&) {
                    if (cancel_signal()) break;
                } catch (const TaskError& e) {
                    // The execution failed (recorded), or this process lost it: either way, serve on.
                    if (e.type() == "flowy::LeaseLost") log_warning(config.log, e.what());
                    if (e.type() == "flowy::ExecutionCancelled")
                        log_warning(config.log, std::string(e.what()) + ": this process stopped deciding it");
                } catch (const ConfigError& e) {
                    log_warning(config.log, std::string("execution ") + std::to_string(c->id) + ": " + e.what());
                }
                continue;
            }
            next_look = std::min(next_look, lapse);
        }
        p.server->step();
        p.server->wait(next_look);
        for (const std::string& ch : p.db->notifications()) {
            if (ch == "flowy_tasks") p.server->poke();
            if (ch == "flowy_limited") p.server->poke_limited();
            if (ch == "flowy_executions") look = true;
        }
    }
}

void serve(const Config& config, const WorkflowType& type, const Options& o) {
    StopSignals stop;
    Process p(config, type, o, true);
    try {
        serve_until_stopped(p, config, type, o);
    } catch (const ConnectError&) {
        // Asked to stop while the server did not answer: the connection was given up, and
        // what this process held lapses and goes on elsewhere.
        if (!cancel_signal()) throw;
    }
}

}  // namespace flowy::detail::pg

namespace flowy::detail::pg {

OptionsBox::OptionsBox(std::string conninfo) : p(new Options{std::move(conninfo)}) {}
OptionsBox::OptionsBox(const OptionsBox& o) : p(new Options(*o.p)) {}
OptionsBox& OptionsBox::operator=(const OptionsBox& o) {
    if (this != &o) *p = *o.p;
    return *this;
}
OptionsBox::~OptionsBox() {
    delete p;
}
void OptionsBox::lease(std::chrono::milliseconds l) {
    p->lease = l;
}
void OptionsBox::version(std::string v) {
    bool ok = !v.empty() && v.size() <= 64;
    for (char c : v) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_');
    if (!ok) throw ConfigError("flowy: version('" + v + "'): use 1 to 64 letters, digits, '.', '-' or '_'");
    p->version = std::move(v);
}

}  // namespace flowy::detail::pg

namespace flowy {

std::vector<ExecutionInfo> list_executions(const std::string& conninfo, int limit) {
    return list_executions(conninfo, ExecutionFilter{}, limit);
}

std::vector<ExecutionInfo> list_executions(const std::string& conninfo, const ExecutionFilter& filter, int limit) {
    using namespace detail::pg;
    static const char* const statuses[] = {"pending", "running", "succeeded", "failed", "cancelled"};
    if (!filter.status.empty() &&
        std::find(std::begin(statuses), std::end(statuses), filter.status) == std::end(statuses))
        throw std::invalid_argument("flowy: no execution status '" + filter.status +
                                    "' (pending, running, succeeded, failed or cancelled)");
    std::unique_ptr<Connection> db = connect_to_read(conninfo);
    Rows r = db->exec(
        "SELECT e.id, e.workflow, e.status, coalesce(e.decider, ''), e.created_at, e.started_at, e.finished_at, "
        "count(t.id) FILTER (WHERE t.state = 'queued'), count(t.id) FILTER (WHERE t.state = 'running'), "
        "count(t.id) FILTER (WHERE t.state = 'succeeded'), count(t.id) FILTER (WHERE t.state = 'failed'), "
        "coalesce(e.error_message, ''), e.version FROM flowy.executions e LEFT JOIN flowy.tasks t ON t.execution = "
        "e.id "
        "WHERE ($2 = '' OR e.status = $2) AND e.created_at >= to_timestamp($3 / 1e6) "
        "GROUP BY e.id ORDER BY e.id DESC LIMIT $1",
        Params().integer(limit).text(filter.status).integer(filter.since_us));
    std::vector<ExecutionInfo> out;
    for (int i = 0; i < r.size(); ++i) {
        ExecutionInfo e;
        e.id = ExecutionId(static_cast<std::uint64_t>(r.integer(i, 0)));
        e.workflow = r.text(i, 1);
        e.status = r.text(i, 2);
        e.decider = r.text(i, 3);
        e.created_us = r.time_us(i, 4);
        e.started_us = r.time_us(i, 5);
        e.finished_us = r.time_us(i, 6);
        e.queued = r.integer(i, 7);
        e.running = r.integer(i, 8);
        e.succeeded = r.integer(i, 9);
        e.failed = r.integer(i, 10);
        e.error = r.text(i, 11);
        e.version = r.text(i, 12);
        out.push_back(std::move(e));
    }
    // Task lists nobody serves: the lists of the queued tasks of these executions, against
    // what the live serving processes' connections say they serve.
    std::vector<std::int64_t> ids;
    for (const ExecutionInfo& e : out)
        if (e.queued > 0) ids.push_back(static_cast<std::int64_t>(e.id.value()));
    if (ids.empty()) return out;
    Rows serving = db->exec("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1",
                            Params().text(std::string(serving_prefix) + "%"));
    struct Served {
        std::string workflow;  // or its first bytes, when the name was cut at 63
        std::vector<std::string> lists;
        bool cut = false;  // all lists, as far as anyone can tell
    };
    std::vector<Served> served;
    for (int i = 0; i < serving.size(); ++i) {
        std::string name = serving.text(i, 0).substr(std::strlen(serving_prefix));
        Served s;
        s.cut = serving.bytes(i, 0).size() >= 63;
        std::size_t colon = name.rfind(": ");
        s.workflow = colon == std::string::npos ? name : name.substr(0, colon);
        for (std::size_t at = colon == std::string::npos ? name.size() : colon + 2; at < name.size();) {
            std::size_t comma = std::min(name.find(',', at), name.size());
            s.lists.push_back(name.substr(at, comma - at));
            at = comma + 1;
        }
        served.push_back(std::move(s));
    }
    auto nobody_serves = [&](const std::string& workflow, const std::string& list) {
        for (const Served& s : served) {
            if (s.cut ? workflow.compare(0, s.workflow.size(), s.workflow) == 0 : s.workflow == workflow)
                if (s.cut || std::find(s.lists.begin(), s.lists.end(), list) != s.lists.end()) return false;
        }
        return true;
    };
    Rows waiting = db->exec(
        "SELECT execution, task_list, min(queued_at) FROM flowy.tasks WHERE state = 'queued' "
        "AND execution = ANY($1) GROUP BY execution, task_list ORDER BY 3",
        Params().int8s(ids));
    for (int i = 0; i < waiting.size(); ++i) {
        auto id = static_cast<std::uint64_t>(waiting.integer(i, 0));
        for (ExecutionInfo& e : out)
            if (e.id.value() == id && e.waiting_list.empty() && nobody_serves(e.workflow, waiting.text(i, 1))) {
                e.waiting_list = waiting.text(i, 1);
                e.waiting_since_us = waiting.time_us(i, 2);
            }
    }
    return out;
}

bool cancel_execution(const std::string& conninfo, ExecutionId id) {
    using namespace detail::pg;
    std::unique_ptr<Connection> db = connect_to_read(conninfo);
    auto n = static_cast<std::int64_t>(id.value());
    // One transaction: the execution ends, its queued and running tasks are cancelled (a
    // running attempt's serving process stops it when its renewal finds that), and its
    // decider and those waiting for its result are woken.
    Rows r = db->exec(
        "WITH x AS (SELECT id, status FROM flowy.executions WHERE id = $1), "
        "e AS (UPDATE flowy.executions SET status = 'cancelled', error_kind = 'cancelled', "
        "error_message = $2, error_type = 'flowy::Cancelled', finished_at = clock_timestamp(), lease_until = NULL "
        "WHERE id = $1 AND status IN ('pending', 'running') RETURNING id), "
        "t AS (UPDATE flowy.tasks SET state = 'cancelled', lease_until = NULL, finished_at = clock_timestamp() "
        "WHERE execution = $1 AND state IN ('queued', 'running') AND EXISTS (SELECT FROM e) RETURNING id) "
        "SELECT x.status, (SELECT count(*) FROM e), (SELECT count(*) FROM t), "
        "pg_notify('flowy_result_' || $1, ''), pg_notify('flowy_done_' || $1, '') FROM x",
        Params().integer(n).text("flowy: execution " + to_string(id) + " was cancelled"));
    if (r.size() == 0) throw std::invalid_argument("flowy: there is no execution " + to_string(id));
    return r.integer(0, 1) > 0;
}

std::size_t purge_executions(const std::string& conninfo, std::chrono::seconds older_than) {
    using namespace detail::pg;
    if (older_than.count() < 0) throw std::invalid_argument("flowy: purge: a negative age");
    std::unique_ptr<Connection> db = connect_to_read(conninfo);
    Rows r = db->exec(
        "WITH d AS (DELETE FROM flowy.executions WHERE status IN ('succeeded', 'failed', 'cancelled') "
        "AND finished_at < clock_timestamp() - $1 * interval '1 second' RETURNING id) SELECT count(*) FROM d",
        Params().integer(older_than.count()));
    return static_cast<std::size_t>(r.integer(0, 0));
}

std::string export_trace(const std::string& conninfo, ExecutionId id) {
    using namespace detail::pg;
    std::unique_ptr<Connection> db = connect_to_read(conninfo);
    auto n = static_cast<std::int64_t>(id.value());
    Rows e = db->exec("SELECT status FROM flowy.executions WHERE id = $1", Params().integer(n));
    if (e.size() == 0) throw std::invalid_argument("flowy: there is no execution " + to_string(id));
    std::string text = history_text(*db, n);
    if (text.empty())
        throw std::invalid_argument("flowy: execution " + to_string(id) + " is " + e.text(0, 0) +
                                    ": nobody has decided it yet, so it has no history");
    return text;
}

}  // namespace flowy

#pragma once
// A thin layer over libpq for the PostgreSQL engine: one connection per process (a
// decider's and a serving process's statements, and the LISTEN that wakes them, share
// it), statements always parameterised (values are data, never SQL), results in
// binary, a bounded connect time, and reconnection with back-off when the server goes
// away. Every statement the engine sends is one transaction and safe to send again
// after an uncertain commit (see engine.cpp); `exec` retries it across reconnections.

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flowy::detail::pg {

// The libpq functions the engine calls, through Libpq.
// clang-format off
#define FLOWY_LIBPQ_FUNCTIONS(X) \
    X(PQclear) \
    X(PQconnectdbParams) \
    X(PQconsumeInput) \
    X(PQerrorMessage) \
    X(PQexec) \
    X(PQexecParams) \
    X(PQexecPrepared) \
    X(PQfinish) \
    X(PQflush) \
    X(PQfreemem) \
    X(PQgetisnull) \
    X(PQgetResult) \
    X(PQgetlength) \
    X(PQgetvalue) \
    X(PQisBusy) \
    X(PQnotifies) \
    X(PQntuples) \
    X(PQprepare) \
    X(PQresultErrorField) \
    X(PQresultErrorMessage) \
    X(PQresultStatus) \
    X(PQsendPrepare) \
    X(PQsendQuery) \
    X(PQsendQueryParams) \
    X(PQsendQueryPrepared) \
    X(PQsetNoticeProcessor) \
    X(PQsetnonblocking) \
    X(PQsocket) \
    X(PQstatus)
// clang-format on

/// libpq, loaded (dlopen) the first time the PostgreSQL engine or its tools need it: a
/// program that never uses the engine does not load it and what it pulls in (OpenSSL,
/// Kerberos, LDAP, GnuTLS: about 3 ms at every start on a 2-core VM).
struct Libpq {
#define FLOWY_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
    FLOWY_LIBPQ_FUNCTIONS(FLOWY_LIBPQ_MEMBER)
#undef FLOWY_LIBPQ_MEMBER
};
/// The loaded library; throws ConnectError (below) if it cannot be loaded.
const Libpq& pq();

/// The server could not be reached or refused us (a bad connection string, a wrong
/// password): what the engine's entry points turn into a ConfigError or TaskError.
struct ConnectError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A statement the server rejected (not a lost connection).
struct StatementError : std::runtime_error {
    StatementError(const std::string& what, std::string state) : std::runtime_error(what), sqlstate(std::move(state)) {}
    std::string sqlstate;
};

/// Statement parameters: text, binary bytes, and one-dimensional binary arrays.
class Params {
public:
    Params& text(std::string v);
    Params& bytes(std::string v);  // bytea
    Params& integer(std::int64_t v) { return text(std::to_string(v)); }
    Params& null();
    /// Arrays, sent in PostgreSQL's binary array format.
    Params& texts(const std::vector<std::string>& v);
    Params& byteas(const std::vector<std::string>& v);
    Params& int8s(const std::vector<std::int64_t>& v);
    std::size_t size() const { return values_.size(); }

private:
    friend class Connection;
    Params& add(std::string v, unsigned oid, int format, bool is_null = false);
    Params& strings(const std::vector<std::string>& v, unsigned elem_oid, unsigned array_oid);
    std::vector<std::string> values_;
    std::vector<unsigned> oids_;
    std::vector<int> formats_;
    std::vector<char> nulls_;
};

/// A statement's result, in binary format.
class Rows {
public:
    explicit Rows(PGresult* r) : r_(r, pq().PQclear) {}
    int size() const { return pq().PQntuples(r_.get()); }
    bool null(int row, int col) const { return pq().PQgetisnull(r_.get(), row, col) != 0; }
    std::string_view bytes(int row, int col) const {
        return {pq().PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(pq().PQgetlength(r_.get(), row, col))};
    }
    std::string text(int row, int col) const { return std::string(bytes(row, col)); }
    /// An int2, int4 or int8 column (by its length), or `otherwise` if null.
    std::int64_t integer(int row, int col, std::int64_t otherwise = 0) const;
    /// A timestamptz column, as microseconds since the Unix epoch (0 if null).
    std::int64_t time_us(int row, int col) const;

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class Connection {
public:
    /// Connects (within `connect_timeout` unless the connection string sets one);
    /// throws ConnectError with libpq's message.
    explicit Connection(std::string conninfo, std::function<void(const std::string&)> warn = {});
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one statement (one transaction). A lost connection is reconnected with
    /// back-off and the statement sent again, until the cancel signal is set; then
    /// ConnectError. A rejected statement throws StatementError. A statement with
    /// parameters is prepared on the connection the first time it is sent (per
    /// parameter types) and executed by name after that: the server parses and plans
    /// it once, not at every task.
    Rows exec(const char* sql, const Params& params = {});
    /// Runs SQL without parameters (several statements allowed), for the schema.
    void exec_script(const char* sql);

    /// Sets the session's application_name (pg_stat_activity shows it), now and on every
    /// new connection.
    void set_name(std::string name);
    /// LISTEN to `channel` (kept across reconnections).
    void listen(const std::string& channel);
    void unlisten(const std::string& channel);
    /// Reads what arrived and returns the channels of the notifications among it.
    std::vector<std::string> notifications();
    /// Waits until the server sends something (a notification) or `deadline`; also
    /// returns when `extra_fd` (if >= 0) is readable. Returns true if the socket is readable.
    bool wait_readable(std::chrono::steady_clock::time_point deadline, int extra_fd = -1);

    /// The connection's socket (changes after a reconnection).
    int socket() const { return pq().PQsocket(c_); }
    /// A statement whose answer has not come after `limit` is taken for a lost
    /// connection: the connection is made again and the statement sent again. This is
    /// what ends a wait on a connection that went silent without closing (a dropped
    /// NAT or firewall entry, a cut network path: TCP alone would wait many minutes).
    /// 30 s unless set; the engine sets four leases.
    void answer_within(std::chrono::milliseconds limit) { answer_within_ = limit; }
    /// How many times the connection was made again since the last call (a decider
    /// then looks again for what it may have missed).
    int take_reconnects() { return std::exchange(reconnects_, 0); }
    /// Called with each new socket (after a reconnection too), e.g. to close it in forked children.
    std::function<void(int fd)> on_socket;

private:
    void connect_or_throw();
    /// A statement's outcome: true if it succeeded (`r` is the caller's), false if the
    /// connection was lost and made again (send it again); throws StatementError if
    /// the server rejected it, ConnectError if reconnecting stopped.
    bool settle(PGresult* r);
    /// After a PQsend* call (`sent`: what it returned): sends what libpq holds and waits
    /// for the statement's results without blocking past `answer_within_` (nor past one
    /// second once the process is asked to stop); returns the result PQexec would
    /// return, or null with `lost_` set when the wait was given up.
    PGresult* answer(int sent);
    /// Waits for the socket to be ready for `events` until `give_up`; false if it did not.
    bool ready_for(short events, std::chrono::steady_clock::time_point since,
                   std::chrono::steady_clock::time_point give_up);
    bool reconnect();  // with back-off; false if it gave up
    std::string conninfo_;
    std::function<void(const std::string&)> warn_;
    PGconn* c_ = nullptr;
    std::vector<std::string> channels_;
    std::string name_;                  // application_name set on each connection (empty: the connection string's)
    std::vector<std::string> pending_;  // notifications heard while executing a statement
    std::unordered_map<std::string, std::string> prepared_;  // SQL and parameter types -> statement name
    int reconnects_ = 0;
    std::chrono::milliseconds answer_within_{30000};
    std::string lost_;  // why the last statement's wait was given up (empty: it was not)
};

/// A libpq-quoted SQL identifier (for LISTEN, which takes no parameters).
std::string quote_identifier(std::string_view name);

}  // namespace flowy::detail::pg

#include "postgres/db.hpp"

#include "engine/executor.hpp"

#include <dlfcn.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace flowy::detail::pg {

const Libpq& pq() {
    struct Loaded {
        Libpq lib;
        std::string error;
        Loaded() {
            // libpq's soname has been libpq.so.5 since PostgreSQL 8.2
            void* h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                const char* e = dlerror();
                error = std::string(
                            "the PostgreSQL engine needs libpq (Debian: apt-get install libpq5), which did "
                            "not load: ") +
                        (e ? e : "unknown error");
                return;
            }
#define FLOWY_LIBPQ_LOAD(name)                                       \
    lib.name = reinterpret_cast<decltype(&::name)>(dlsym(h, #name)); \
    if (!lib.name && error.empty()) error = "libpq.so.5 has no " #name ": it is too old";
            FLOWY_LIBPQ_FUNCTIONS(FLOWY_LIBPQ_LOAD)
#undef FLOWY_LIBPQ_LOAD
        }
    };
    static const Loaded loaded;  // once, thread-safe; never unloaded
    if (!loaded.error.empty()) throw ConnectError("flowy: " + loaded.error);
    return loaded.lib;
}

namespace {
constexpr unsigned oid_bytea = 17, oid_int8 = 20, oid_text = 25;
constexpr unsigned oid_bytea_array = 1001, oid_text_array = 1009, oid_int8_array = 1016;

void put32(std::string& out, std::uint32_t v) {
    char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.append(b, 4);
}
void put64(std::string& out, std::uint64_t v) {
    put32(out, static_cast<std::uint32_t>(v >> 32));
    put32(out, static_cast<std::uint32_t>(v));
}
std::uint64_t get_be(std::string_view b) {
    std::uint64_t v = 0;
    for (unsigned char c : b) v = (v << 8) | c;
    return v;
}

/// PostgreSQL's binary array: dimensions, then each element's length and bytes.
template <class Each>
std::string binary_array(unsigned elem_oid, std::size_t n, Each each) {
    std::string out;
    put32(out, n ? 1 : 0);  // dimensions
    put32(out, 0);          // no nulls
    put32(out, elem_oid);
    if (n) {
        put32(out, static_cast<std::uint32_t>(n));
        put32(out, 1);  // lower bound
    }
    for (std::size_t i = 0; i < n; ++i) each(out, i);
    return out;
}

std::string message_of(PGconn* c) {
    std::string m = c ? pq().PQerrorMessage(c) : "out of memory";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    for (char& ch : m)
        if (ch == '\n') ch = ' ';
    return m;
}
}  // namespace

Params& Params::add(std::string v, unsigned oid, int format, bool is_null) {
    values_.push_back(std::move(v));
    oids_.push_back(oid);
    formats_.push_back(format);
    nulls_.push_back(is_null ? 1 : 0);
    return *this;
}
Params& Params::text(std::string v) {
    return add(std::move(v), 0, 0);
}
Params& Params::bytes(std::string v) {
    return add(std::move(v), oid_bytea, 1);
}
Params& Params::null() {
    return add({}, 0, 0, true);
}
Params& Params::strings(const std::vector<std::string>& v, unsigned elem_oid, unsigned array_oid) {
    return add(binary_array(elem_oid, v.size(),
                            [&](std::string& out, std::size_t i) {
                                put32(out, static_cast<std::uint32_t>(v[i].size()));
                                out += v[i];
                            }),
               array_oid, 1);
}
Params& Params::texts(const std::vector<std::string>& v) {
    return strings(v, oid_text, oid_text_array);
}
Params& Params::byteas(const std::vector<std::string>& v) {
    return strings(v, oid_bytea, oid_bytea_array);
}
Params& Params::int8s(const std::vector<std::int64_t>& v) {
    return add(binary_array(oid_int8, v.size(),
                            [&](std::string& out, std::size_t i) {
                                put32(out, 8);
                                put64(out, static_cast<std::uint64_t>(v[i]));
                            }),
               oid_int8_array, 1);
}

std::int64_t Rows::integer(int row, int col, std::int64_t otherwise) const {
    if (null(row, col)) return otherwise;
    std::string_view b = bytes(row, col);
    std::uint64_t v = get_be(b);
    switch (b.size()) {
        case 2:
            return static_cast<std::int16_t>(v);
        case 4:
            return static_cast<std::int32_t>(v);
        default:
            return static_cast<std::int64_t>(v);
    }
}

std::int64_t Rows::time_us(int row, int col) const {
    if (null(row, col)) return 0;
    constexpr std::int64_t epoch_2000_us = 946684800LL * 1000000;
    return static_cast<std::int64_t>(get_be(bytes(row, col))) + epoch_2000_us;
}

Connection::Connection(std::string conninfo, std::function<void(const std::string&)> warn)
    : conninfo_(std::move(conninfo)), warn_(std::move(warn)) {
    connect_or_throw();
}

Connection::~Connection() {
    if (c_) pq().PQfinish(c_);
}

void Connection::connect_or_throw() {
    // The user's connection string comes last, so that what it sets wins.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "flowy", conninfo_.c_str(), nullptr};
    PGconn* c = pq().PQconnectdbParams(keys, values, 1);
    if (!c || pq().PQstatus(c) != CONNECTION_OK) {
        std::string m = message_of(c);
        if (c) pq().PQfinish(c);
        throw ConnectError("flowy: cannot connect to PostgreSQL: " + m);
    }
    if (c_) pq().PQfinish(c_);
    c_ = c;
    prepared_.clear();  // statements are prepared per connection
    pq().PQsetNoticeProcessor(
        c_, [](void*, const char*) {}, nullptr);  // NOTICEs (e.g. "already exists") are not ours to print
    if (on_socket) on_socket(pq().PQsocket(c_));
    // The engine's statements are prepared once and run thousands of times with values
    // that do not change their best plan: planned once too, not again at each run (W2,
    // a chain of 1,000 steps on 2 cores: 0.82x the time, medians of 8 interleaved runs).
    pq().PQclear(pq().PQexec(c_, "SET plan_cache_mode = force_generic_plan"));
    if (!name_.empty()) {
        const char* value = name_.c_str();
        pq().PQclear(pq().PQexecParams(c_, "SELECT set_config('application_name', $1, false)", 1, nullptr, &value,
                                       nullptr, nullptr, 0));
    }
    for (const auto& ch : channels_) {
        std::string sql = "LISTEN " + quote_identifier(ch);
        pq().PQclear(pq().PQexec(c_, sql.c_str()));
    }
    // From here on nothing blocks on the socket: answer() waits for it, within bounds.
    pq().PQsetnonblocking(c_, 1);
}

bool Connection::reconnect() {
    auto started = std::chrono::steady_clock::now();
    auto delay = std::chrono::milliseconds(50);
    for (int attempt = 0;; ++attempt) {
        if (cancel_signal()) return false;
        try {
            connect_or_throw();
            ++reconnects_;
            if (warn_) {
                auto s =
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
                warn_("reconnected to PostgreSQL after " + std::to_string(s.count()) + " ms");
            }
            return true;
        } catch (const ConnectError& e) {
            if (attempt == 0 && warn_) warn_(std::string(e.what()) + "; trying again with back-off");
        }
        std::this_thread::sleep_for(delay);
        delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(2));
    }
}

bool Connection::settle(PGresult* r) {
    ExecStatusType st = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        // Notifications that came with the result wait for notifications() (the socket
        // has nothing more to say about them, so wait_readable would not see them).
        while (PGnotify* n = pq().PQnotifies(c_)) {
            pending_.push_back(n->relname);
            pq().PQfreemem(n);
        }
        return true;
    }
    if (!lost_.empty() || pq().PQstatus(c_) == CONNECTION_BAD) {
        if (r) pq().PQclear(r);
        if (warn_) warn_("lost the connection to PostgreSQL (" + (lost_.empty() ? message_of(c_) : lost_) + ")");
        if (!reconnect()) throw ConnectError("flowy: lost the connection to PostgreSQL, and stopped reconnecting");
        return false;  // every statement is safe to send again (engine.cpp)
    }
    std::string state =
        r && pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) ? pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
    std::string m = r ? pq().PQresultErrorMessage(r) : message_of(c_);
    if (r) pq().PQclear(r);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    throw StatementError("flowy: PostgreSQL: " + m, state);
}

Rows Connection::exec(const char* sql, const Params& p) {
    std::vector<const char*> values(p.size());
    std::vector<int> lengths(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
        values[i] = p.nulls_[i] ? nullptr : p.values_[i].data();
        lengths[i] = static_cast<int>(p.values_[i].size());
    }
    std::string key(sql);
    key.append(reinterpret_cast<const char*>(p.oids_.data()), p.oids_.size() * sizeof(unsigned));
    for (;;) {
        if (p.size() == 0) {
            PGresult* r = answer(pq().PQsendQueryParams(c_, sql, 0, nullptr, nullptr, nullptr, nullptr, 1));
            if (settle(r)) return Rows(r);
            continue;
        }
        auto it = prepared_.find(key);
        if (it == prepared_.end()) {
            std::string name = "flowy_" + std::to_string(prepared_.size() + 1);
            PGresult* r = answer(pq().PQsendPrepare(c_, name.c_str(), sql, static_cast<int>(p.size()), p.oids_.data()));
            if (!settle(r)) continue;  // reconnected: prepare it on the new connection
            pq().PQclear(r);
            it = prepared_.emplace(key, std::move(name)).first;
        }
        PGresult* r = answer(pq().PQsendQueryPrepared(c_, it->second.c_str(), static_cast<int>(p.size()), values.data(),
                                                      lengths.data(), p.formats_.data(), 1));
        if (settle(r)) return Rows(r);
    }
}

bool Connection::ready_for(short events, std::chrono::steady_clock::time_point since,
                           std::chrono::steady_clock::time_point give_up) {
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (now >= give_up || (cancel_signal() && now - since >= std::chrono::seconds(1))) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - now).count();
        pollfd fd{pq().PQsocket(c_), events, 0};
        int n = ::poll(&fd, 1, static_cast<int>(std::clamp<long long>(left, 1, 100)));
        if (n > 0 || (n < 0 && errno != EINTR)) return true;  // ready, or an error for libpq to find
    }
}

PGresult* Connection::answer(int sent) {
    lost_.clear();
    if (!sent) return nullptr;  // settle() reports libpq's message, or reconnects if the connection broke
    auto since = std::chrono::steady_clock::now();
    auto give_up = since + answer_within_;
    auto lose = [&](PGresult* partial, bool waited) -> PGresult* {
        if (partial) pq().PQclear(partial);
        if (!waited)
            lost_ = message_of(c_);
        else if (std::chrono::steady_clock::now() >= give_up)
            lost_ = "PostgreSQL did not answer for " + std::to_string(answer_within_.count()) +
                    " ms: the connection is taken for lost";
        else
            lost_ = "PostgreSQL did not answer, and this process was asked to stop";
        return nullptr;
    };
    for (int left; (left = pq().PQflush(c_)) != 0;) {  // what libpq could not send at once
        if (left < 0) return lose(nullptr, false);
        if (!ready_for(POLLIN | POLLOUT, since, give_up)) return lose(nullptr, true);
        if (!pq().PQconsumeInput(c_)) return lose(nullptr, false);
    }
    PGresult* last = nullptr;
    for (;;) {
        while (pq().PQisBusy(c_)) {
            if (!ready_for(POLLIN, since, give_up)) return lose(last, true);
            if (!pq().PQconsumeInput(c_)) return lose(last, false);
        }
        PGresult* r = pq().PQgetResult(c_);
        if (!r) return last;
        // As PQexec: the first error, or else the last result.
        ExecStatusType st = last ? pq().PQresultStatus(last) : PGRES_COMMAND_OK;
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            pq().PQclear(r);
            continue;
        }
        if (last) pq().PQclear(last);
        last = r;
    }
}

void Connection::exec_script(const char* sql) {
    for (;;) {
        PGresult* r = answer(pq().PQsendQuery(c_, sql));
        if (settle(r)) {
            pq().PQclear(r);
            return;
        }
    }
}

void Connection::set_name(std::string name) {
    name_ = std::move(name);
    exec("SELECT set_config('application_name', $1, false)", Params().text(name_));
}

void Connection::listen(const std::string& channel) {
    if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end()) return;
    channels_.push_back(channel);
    exec_script(("LISTEN " + quote_identifier(channel)).c_str());
}

void Connection::unlisten(const std::string& channel) {
    auto it = std::find(channels_.begin(), channels_.end(), channel);
    if (it == channels_.end()) return;
    channels_.erase(it);
    exec_script(("UNLISTEN " + quote_identifier(channel)).c_str());
}

std::vector<std::string> Connection::notifications() {
    std::vector<std::string> out = std::move(pending_);
    pending_.clear();
    if (pq().PQconsumeInput(c_) == 0) return out;  // a broken connection: the next statement reconnects
    while (PGnotify* n = pq().PQnotifies(c_)) {
        out.emplace_back(n->relname);
        pq().PQfreemem(n);
    }
    return out;
}

bool Connection::wait_readable(std::chrono::steady_clock::time_point deadline, int extra_fd) {
    if (!pending_.empty()) return true;
    pollfd fds[2] = {{pq().PQsocket(c_), POLLIN, 0}, {extra_fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    int timeout = static_cast<int>(std::clamp<long long>(left.count() + 1, 0, 1000));
    if (deadline == std::chrono::steady_clock::time_point::max()) timeout = 1000;
    int n = ::poll(fds, extra_fd >= 0 ? 2 : 1, timeout);
    return n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR));
}

std::string quote_identifier(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        if (c != '\0') out += c;
    }
    return out + "\"";
}

}  // namespace flowy::detail::pg

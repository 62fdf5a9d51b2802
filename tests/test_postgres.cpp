// The PostgreSQL engine against a real PostgreSQL 15 on loopback (a throwaway cluster
// made by main), with real processes standing for other hosts (pg_node.cpp), killed,
// stopped and cut off for real. Rows D1-D10 of DISTRIBUTED.md.
#define DOCTEST_CONFIG_IMPLEMENT
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#include "pg_cluster.hpp"
#include "pg_workflows.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <flowy/command.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace {

pgtest::Cluster* cluster = nullptr;
int databases = 0;
std::string fresh_db() {
    return cluster->database("t" + std::to_string(++databases));
}
std::string db_name() {
    return "t" + std::to_string(databases);
}

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// A file for the activities' side effects, set in the environment children inherit.
std::string fresh_effects() {
    std::string path = cluster->dir + "/effects-" + std::to_string(databases);
    std::remove(path.c_str());
    setenv("FLOWY_TEST_EFFECTS", path.c_str(), 1);
    return path;
}
/// "<what> <i>" -> how many times it ran, and the pids of the processes that ran it.
struct Effects {
    std::map<std::string, int> count;
    std::map<std::string, std::vector<int>> pids;
    int lines = 0;
    int n(const std::string& key) const {
        auto it = count.find(key);
        return it == count.end() ? 0 : it->second;
    }
};
Effects read_effects(const std::string& path) {
    Effects e;
    std::ifstream f(path);
    std::string what;
    int i, pid;
    while (f >> what >> i >> pid) {
        std::string key = what + " " + std::to_string(i);
        ++e.count[key];
        e.pids[key].push_back(pid);
        ++e.lines;
    }
    return e;
}
/// Waits (bounded) until `ok(effects)` holds.
template <class F>
Effects wait_effects(const std::string& path, F ok, std::chrono::milliseconds limit = 20s) {
    auto until = Clock::now() + limit;
    for (;;) {
        Effects e = read_effects(path);
        if (ok(e)) return e;
        REQUIRE_MESSAGE(Clock::now() < until, "the activities did not get that far in time");
        std::this_thread::sleep_for(20ms);
    }
}

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

/// CPU time (user + system) process `pid` has used, in seconds.
double cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), {});
    std::istringstream rest(s.substr(s.rfind(')') + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoll(field);
        if (i == 15) stime = std::stoll(field);
    }
    return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

int parent_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), {});
    auto paren = s.rfind(')');
    std::istringstream rest(s.substr(paren + 2));
    char state;
    int ppid = 0;
    rest >> state >> ppid;
    return ppid;
}

/// A process of its own: a pg_node or a sample, its output in files.
class Node {
public:
    Node(const std::string& exe, std::vector<std::string> args) {
        static int n = 0;
        out_ = cluster->dir + "/node-" + std::to_string(++n) + ".out";
        err_ = cluster->dir + "/node-" + std::to_string(n) + ".err";
        std::fflush(stdout);  // or the child's freopen flushes our buffer a second time
        std::fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that dies (a crash, SIGKILL) leaves no node behind
            freopen(out_.c_str(), "w", stdout);
            freopen(err_.c_str(), "w", stderr);
            std::vector<char*> argv{const_cast<char*>(exe.c_str())};
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(exe.c_str(), argv.data());
            _exit(127);
        }
    }
    ~Node() {
        if (pid > 0 && !reaped_) {
            ::kill(pid, SIGCONT);
            ::kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    /// Waits (bounded) for it to exit; returns its exit status (-1: did not exit in time).
    int wait(std::chrono::milliseconds limit = 30s) {
        auto until = Clock::now() + limit;
        while (Clock::now() < until) {
            int status = 0;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                reaped_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }
    void signal(int sig) { ::kill(pid, sig); }
    bool alive() const { return !reaped_ && ::kill(pid, 0) == 0; }
    std::string out() const { return slurp(out_); }
    std::string err() const { return slurp(err_); }
    int pid = -1;

private:
    std::string out_, err_;
    bool reaped_ = false;
};

std::vector<std::string> node_args(const std::string& conninfo, std::vector<std::string> rest) {
    std::vector<std::string> a{conninfo};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
}

template <class W>
flowy::PostgresWorkflow<W> quiet(const std::string& conninfo, std::vector<std::string>* log = nullptr) {
    flowy::PostgresWorkflow<W> w{conninfo};
    w.log([log](std::string_view m) {
        if (log) log->emplace_back(m);
    });
    w.progress(false);
    return w;
}

std::string first_line(const std::string& s) {
    return s.substr(0, s.find('\n'));
}

}  // namespace

TEST_CASE("D1: the seed example with workers(0) and two serving processes: 104, the squares at once, elsewhere") {
    std::string db = fresh_db();
    Node a(POSTGRES_EXAMPLE, node_args(db, {"--workers", "2", "serve"}));
    Node b(POSTGRES_EXAMPLE, node_args(db, {"--workers", "2", "serve"}));
    Node run(POSTGRES_EXAMPLE, node_args(db, {"--workers", "0"}));
    REQUIRE(run.wait() == 0);
    CHECK(first_line(run.out()) == "104");
    // Where and when the squares ran: in the serving processes' workers, overlapping.
    std::string rows = cluster->psql(
        "SELECT pid, started_us, ended_us FROM flowy.tasks WHERE activity_name = 'square' ORDER BY id", db_name());
    std::istringstream in(rows);
    std::vector<std::int64_t> pid(2), s(2), e(2);
    char bar;
    for (int i = 0; i < 2; ++i) {
        bool read = bool(in >> pid[i] >> bar >> s[i] >> bar >> e[i]);
        REQUIRE(read);
    }
    CHECK(parent_of(int(pid[0])) != run.pid);
    CHECK((parent_of(int(pid[0])) == a.pid || parent_of(int(pid[0])) == b.pid));
    CHECK((parent_of(int(pid[1])) == a.pid || parent_of(int(pid[1])) == b.pid));
    CHECK(pid[0] != pid[1]);
    CHECK(std::max(s[0], s[1]) < std::min(e[0], e[1]));  // they overlapped
    a.signal(SIGTERM);
    b.signal(SIGTERM);
    CHECK(a.wait() == 0);
    CHECK(b.wait() == 0);
}

TEST_CASE("start() returns at once; result() in another process waits for the value; bad ids are refused") {
    std::string db = fresh_db();
    fresh_effects();
    auto w = quiet<pgtest::Stages>(db);
    pgtest::configure(w, 0);
    flowy::ExecutionId id = w.start(3, 10);
    CHECK(flowy::ExecutionId::parse(flowy::to_string(id)) == id);
    CHECK(cluster->psql("SELECT status FROM flowy.executions WHERE id = " + flowy::to_string(id), db_name()) ==
          "pending");
    Node serve(PG_NODE, node_args(db, {"serve"}));
    Node waiter(PG_NODE, node_args(db, {"result", flowy::to_string(id)}));
    REQUIRE(waiter.wait() == 0);
    CHECK(first_line(waiter.out()) == std::to_string(pgtest::stages_value(3)));
    CHECK(w.result(id) == pgtest::stages_value(3));
    CHECK_THROWS_AS(w.result(flowy::ExecutionId(999999)), std::invalid_argument);
    CHECK_THROWS_AS(flowy::ExecutionId::parse("12x"), std::invalid_argument);
    CHECK_THROWS_AS(flowy::ExecutionId::parse(""), std::invalid_argument);
}

TEST_CASE("D3: a serving process SIGKILLed while it runs a task: the task runs again elsewhere") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "--retries", "1", "run", "2", "1500"}));
    Node a(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    Node b(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    Effects e = wait_effects(effects, [](const Effects& x) { return x.n("work 0") + x.n("work 1") >= 2; });
    int victim_worker = e.pids["work 0"].front();
    int victim = parent_of(victim_worker);
    REQUIRE((victim == a.pid || victim == b.pid));
    ::kill(victim, SIGKILL);
    REQUIRE(decider.wait(40s) == 0);
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(2)));
    Effects end = read_effects(effects);
    CHECK(end.n("work 0") == 2);  // killed, then run again
    CHECK(end.n("work 1") == 1);
    CHECK(end.n("total 2") == 1);
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks WHERE id = 'work-0-1' AND state = 'succeeded'", db_name()) ==
          "1");
}

TEST_CASE("D4: a serving process SIGSTOPped past its lease: the task runs elsewhere, the late result is refused") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "--retries", "1", "run", "1", "1200"}));
    Node a(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    Node b(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    Effects e = wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 1; });
    Node& stopped = parent_of(e.pids["work 0"].front()) == a.pid ? a : b;
    stopped.signal(SIGSTOP);
    // The lease (1 s) lapses; the decider fails the attempt as a crash and retries it on the other.
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 2; });
    stopped.signal(SIGCONT);
    REQUIRE(decider.wait(40s) == 0);
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(1)));
    CHECK(cluster->psql("SELECT state FROM flowy.tasks WHERE id = 'work-0-0'", db_name()) == "failed");
    CHECK(cluster->psql("SELECT state FROM flowy.tasks WHERE id = 'work-0-1'", db_name()) == "succeeded");
    // The stopped process came back, had its result refused, and serves on.
    auto until = Clock::now() + 10s;
    while (stopped.err().find("came after its lease was lost") == std::string::npos && Clock::now() < until)
        std::this_thread::sleep_for(20ms);
    CHECK(stopped.err().find("came after its lease was lost") != std::string::npos);
    CHECK(stopped.alive());
    CHECK(read_effects(effects).count["again 0"] == 1);
}

/// pg_proxy (a TCP proxy on loopback) between some processes and the cluster:
/// `conninfo` is `db`'s connection string through it.
struct Proxy {
    explicit Proxy(const std::string& db) : node(PG_PROXY, {std::to_string(cluster->port)}) {
        auto until = Clock::now() + 10s;
        while (node.out().find('\n') == std::string::npos) {
            REQUIRE_MESSAGE(Clock::now() < until, "pg_proxy did not start");
            std::this_thread::sleep_for(10ms);
        }
        std::string direct = "port=" + std::to_string(cluster->port);
        conninfo = db;
        conninfo.replace(conninfo.find(direct), direct.size(), "port=" + first_line(node.out()));
    }
    Node node;
    std::string conninfo;
};

/// Waits (bounded) until `node`'s standard error says `what`.
bool says(const Node& node, const std::string& what, std::chrono::milliseconds limit = 20s) {
    for (auto until = Clock::now() + limit; Clock::now() < until; std::this_thread::sleep_for(20ms))
        if (node.err().find(what) != std::string::npos) return true;
    return node.err().find(what) != std::string::npos;
}

TEST_CASE(
    "a serving process cut off from PostgreSQL past its lease, then let through: the task runs elsewhere, "
    "the late result is refused, it serves on") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Proxy proxy(db);
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "--retries", "1", "run", "1", "1500"}));
    Node cut(PG_NODE, node_args(proxy.conninfo, {"--workers", "1", "serve"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 1; });
    REQUIRE(parent_of(read_effects(effects).pids["work 0"].front()) == cut.pid);
    Node other(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    proxy.node.signal(SIGSTOP);  // the partition: nothing gets through, either way
    // The lease (1 s) lapses: the decider fails the attempt as a crash and it runs on the other.
    Effects e = wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 2; });
    CHECK(parent_of(e.pids["work 0"].back()) == other.pid);
    proxy.node.signal(SIGCONT);  // healed, before the cut process gave its connection up
    REQUIRE(decider.wait(40s) == 0);
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(1)));
    CHECK(cluster->psql("SELECT state FROM flowy.tasks WHERE id = 'work-0-0'", db_name()) == "failed");
    CHECK(cluster->psql("SELECT state FROM flowy.tasks WHERE id = 'work-0-1'", db_name()) == "succeeded");
    CHECK(says(cut, "came after its lease was lost"));
    CHECK(cut.err().find("did not answer") == std::string::npos);
    CHECK(read_effects(effects).n("again 0") == 1);
    // It serves on: with the other one gone, a new execution's tasks can only run there.
    other.signal(SIGTERM);
    CHECK(other.wait() == 0);
    Node next(PG_NODE, node_args(db, {"--workers", "0", "run", "2", "10"}));
    REQUIRE(next.wait(30s) == 0);
    CHECK(first_line(next.out()) == std::to_string(pgtest::stages_value(2)));
    CHECK(cluster->psql("SELECT count(DISTINCT pid) FROM flowy.tasks WHERE execution = 2", db_name()) == "1");
    cut.signal(SIGTERM);
    CHECK(cut.wait() == 0);
}

TEST_CASE(
    "connections that go silent without closing (a dropped NAT entry): the decider and a serving process "
    "take them for lost after four leases, connect again and go on; SIGTERM ends a silent wait") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Proxy proxy(db);
    Node decider(PG_NODE, node_args(proxy.conninfo, {"--workers", "0", "--retries", "1", "run", "2", "1500"}));
    // The serving processes retry like the decider: one of them decides the execution after the takeover.
    Node cut(PG_NODE, node_args(proxy.conninfo, {"--workers", "1", "--retries", "1", "serve"}));
    Node other(PG_NODE, node_args(db, {"--workers", "1", "--retries", "1", "serve"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") + x.n("work 1") >= 2; });
    auto silenced = Clock::now();
    proxy.node.signal(SIGUSR1);  // every open connection through it goes silent for good; new ones get through
    // The decider's lease lapses: the other serving process takes the execution over and finishes it.
    // The old decider waits four leases (4 s) for an answer, connects again, finds its
    // lease gone, and waits for the value like any process.
    REQUIRE_MESSAGE(decider.wait(60s) == 0, decider.err());
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(2)));
    CHECK(Clock::now() - silenced >= 4s);
    CHECK(decider.err().find("PostgreSQL did not answer for 4000 ms") != std::string::npos);
    CHECK(says(cut, "PostgreSQL did not answer for 4000 ms"));
    CHECK(says(cut, "reconnected to PostgreSQL"));
    CHECK(cluster->psql("SELECT decider_token FROM flowy.executions WHERE id = 1", db_name()) == "2");
    Effects end = read_effects(effects);
    CHECK(end.n("total 2") == 1);
    for (int i = 0; i < 2; ++i) CHECK(end.n("work " + std::to_string(i)) <= 2);  // again only after a lost lease
    // The cut process serves on, on its new connection.
    other.signal(SIGTERM);
    CHECK(other.wait() == 0);
    Node next(PG_NODE, node_args(db, {"--workers", "0", "run", "2", "10"}));
    REQUIRE(next.wait(30s) == 0);
    CHECK(first_line(next.out()) == std::to_string(pgtest::stages_value(2)));
    // Silent again, and asked to stop: it does not wait for an answer that will not come.
    proxy.node.signal(SIGUSR1);
    std::this_thread::sleep_for(600ms);  // a claim (every half lease) is now waiting on the silent connection
    auto asked = Clock::now();
    cut.signal(SIGTERM);
    CHECK(cut.wait(10s) == 0);
    CHECK(Clock::now() - asked < 3s);
}

TEST_CASE("D5: the decider SIGKILLed mid-run: a serving process takes over, replays, finishes; nothing runs twice") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "run", "4", "400"}));
    Node a(PG_NODE, node_args(db, {"--workers", "2", "serve"}));
    Node b(PG_NODE, node_args(db, {"--workers", "2", "serve"}));
    // Every first-stage task has finished (its second stage started); then the decider dies.
    wait_effects(effects, [](const Effects& x) {
        return x.n("again 0") + x.n("again 1") + x.n("again 4") + x.n("again 9") >= 4;
    });
    decider.signal(SIGKILL);
    CHECK(decider.wait() == 128 + SIGKILL);
    std::string id = cluster->psql("SELECT max(id) FROM flowy.executions", db_name());
    auto w = quiet<pgtest::Stages>(db);
    pgtest::configure(w, 0);
    auto started = Clock::now();
    CHECK(w.result(flowy::ExecutionId::parse(id)) == pgtest::stages_value(4));
    CHECK(Clock::now() - started < 10s);
    Effects end = read_effects(effects);
    for (int i = 0; i < 4; ++i) {
        CHECK(end.n("work " + std::to_string(i)) == 1);
        CHECK(end.n("again " + std::to_string(i * i)) == 1);
    }
    CHECK(end.n("total 4") == 1);
    CHECK(cluster->psql("SELECT decider_token FROM flowy.executions WHERE id = " + id, db_name()) == "2");
}

TEST_CASE("D6: PostgreSQL restarted mid-run: everyone reconnects, nothing is lost or applied twice") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "--lease", "8000", "run", "6", "300"}));
    Node a(PG_NODE, node_args(db, {"--workers", "2", "--lease", "8000", "serve"}));
    wait_effects(effects, [](const Effects& x) { return x.lines >= 2; });
    cluster->restart();
    REQUIRE(decider.wait(60s) == 0);
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(6)));
    Effects end = read_effects(effects);
    CHECK(end.lines == 13);  // 6 + 6 + 1: every task ran exactly once
    for (const auto& [k, n] : end.count) CHECK_MESSAGE(n == 1, k);
    CHECK(decider.err().find("reconnected") != std::string::npos);
}

TEST_CASE("D8: a bad connection string, a closed port, a wrong password, a server that never answers") {
    auto w = quiet<pgtest::Stages>("this is not = a connection string");
    pgtest::configure(w, 0);
    CHECK_THROWS_AS(w.start(1, 1), flowy::ConfigError);

    auto closed = quiet<pgtest::Stages>("host=127.0.0.1 port=1 user=postgres");
    pgtest::configure(closed, 0);
    try {
        closed.start(1, 1);
        FAIL("connected to a closed port");
    } catch (const flowy::ConfigError& e) {
        CHECK(std::string(e.what()).find("cannot connect to PostgreSQL") != std::string::npos);
    }

    cluster->psql(
        "DO \\$\\$ BEGIN CREATE ROLE pw LOGIN PASSWORD 'right'; EXCEPTION WHEN duplicate_object THEN END \\$\\$");
    auto wrong = quiet<pgtest::Stages>("host=127.0.0.1 port=" + std::to_string(cluster->port) +
                                       " user=pw password=wrong dbname=postgres");
    pgtest::configure(wrong, 0);
    try {
        wrong.start(1, 1);
        FAIL("connected with a wrong password");
    } catch (const flowy::ConfigError& e) {
        CHECK(std::string(e.what()).find("password authentication failed") != std::string::npos);
    }

    // A server that accepts the connection and never says a word.
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(s, 4) == 0);
    socklen_t len = sizeof addr;
    getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
    auto mute = quiet<pgtest::Stages>("host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) +
                                      " user=postgres connect_timeout=2");
    pgtest::configure(mute, 0);
    auto started = Clock::now();
    CHECK_THROWS_AS(mute.start(1, 1), flowy::ConfigError);
    CHECK(Clock::now() - started < 6s);
    ::close(s);
}

namespace {
std::string echo(std::string s) {
    return s + s;
}
struct Echo {
    flowy::Activity<std::string(std::string)> echo{"echo"};
    flowy::Result<std::string> operator()(std::string s) { return echo(s); }
};
}  // namespace

TEST_CASE("D8: arguments and values with quotes, NULs and SQL keywords are data, never SQL") {
    std::string db = fresh_db();
    auto w = quiet<Echo>(db);
    w.conf_activity("echo", echo).workers(1);
    std::string evil = std::string("'); DROP TABLE flowy.tasks; --\"\\x00 \0 $1 SELECT pg_sleep(10) '", 60);
    CHECK(w.run(evil) == evil + evil);
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks", db_name()) == "1");
}

TEST_CASE("the schema is made once by flowy, and a newer one is refused with a clear error") {
    std::string db = fresh_db();
    auto w = quiet<Echo>(db);
    w.conf_activity("echo", echo).workers(1);
    CHECK(w.run(std::string("a")) == "aa");
    CHECK(cluster->psql("SELECT value FROM flowy.meta WHERE key = 'schema_version'", db_name()) == "3");
    // A version-1 schema (made by the release before heartbeats and versions) is brought up
    // to version 3, keeping its executions; then it runs as any other.
    cluster->psql(
        "ALTER TABLE flowy.tasks DROP COLUMN heartbeat_ms, DROP COLUMN version, DROP COLUMN start_by, "
        "DROP COLUMN concurrency; ALTER TABLE flowy.executions DROP COLUMN version, DROP COLUMN deadline; "
        "DROP TABLE flowy.activities; DROP FUNCTION flowy.claim_limited",
        db_name());
    cluster->psql("UPDATE flowy.meta SET value = '1' WHERE key = 'schema_version'", db_name());
    CHECK(w.run(std::string("c")) == "cc");
    CHECK(cluster->psql("SELECT value FROM flowy.meta WHERE key = 'schema_version'", db_name()) == "3");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks WHERE heartbeat_ms = 0 AND version = '1'", db_name()) == "2");
    CHECK(cluster->psql("SELECT string_agg(version, ',') FROM flowy.executions", db_name()) == "1,1");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.activities", db_name()) == "2");  // the workflow and echo
    cluster->psql("UPDATE flowy.meta SET value = '99' WHERE key = 'schema_version'", db_name());
    try {
        w.run(std::string("b"));
        FAIL("ran on a newer schema");
    } catch (const flowy::ConfigError& e) {
        CHECK(std::string(e.what()).find("version 99, newer than this library's (3)") != std::string::npos);
    }
}

TEST_CASE(
    "heartbeats through PostgreSQL: a silent attempt is stopped by its serving process and retried; an "
    "activity whose lease was lost is told by heartbeat()") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    std::string marker = cluster->dir + "/silent-" + std::to_string(databases);
    setenv("FLOWY_TEST_SILENT", marker.c_str(), 1);  // task 0's first attempt goes silent for 30 s
    {
        Node decider(PG_NODE,
                     node_args(db, {"--workers", "0", "--retries", "1", "--heartbeat", "500", "run", "1", "100"}));
        Node server(PG_NODE, node_args(db, {"--workers", "1", "--heartbeat", "500", "serve"}));
        REQUIRE_MESSAGE(decider.wait(20s) == 0, decider.err());
        CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(1)));
        CHECK(read_effects(effects).n("work 0") == 2);
        CHECK(cluster->psql("SELECT state, error_kind, error_message LIKE '%no heartbeat for 500 ms' FROM "
                            "flowy.tasks WHERE id = 'work-0-0'",
                            db_name()) == "failed|timed_out|t");
        CHECK(cluster->psql("SELECT heartbeat_ms FROM flowy.tasks WHERE id = 'work-0-1'", db_name()) == "500");
        server.signal(SIGTERM);
        CHECK(server.wait() == 0);
    }
    unsetenv("FLOWY_TEST_SILENT");

    // The serving process is stopped past its lease while its worker beats on: the task
    // runs again elsewhere; when the serving process comes back, the activity it still runs
    // learns from heartbeat() that its attempt was lost, and stops.
    db = fresh_db();
    effects = fresh_effects();
    Node decider(PG_NODE,
                 node_args(db, {"--workers", "0", "--retries", "1", "--heartbeat", "2000", "run", "1", "3000"}));
    Node first(PG_NODE, node_args(db, {"--workers", "1", "--retries", "1", "--heartbeat", "2000", "serve"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 1; });
    // Its one worker busy, the serving process sleeps until the worker is done (it spun at
    // a core's worth before: 0.84 s of CPU a second).
    double cpu = cpu_seconds(first.pid);
    std::this_thread::sleep_for(1s);
    CHECK(cpu_seconds(first.pid) - cpu < 0.3);
    Node second(PG_NODE, node_args(db, {"--workers", "1", "--retries", "1", "--heartbeat", "2000", "serve"}));
    first.signal(SIGSTOP);
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") >= 2; });  // the lease (1 s) lapsed
    first.signal(SIGCONT);
    Effects e = wait_effects(effects, [](const Effects& x) { return x.n("lost 0") >= 1; });
    CHECK(parent_of(e.pids["lost 0"].front()) == first.pid);
    REQUIRE_MESSAGE(decider.wait(30s) == 0, decider.err());
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(1)));
    CHECK(cluster->psql("SELECT state FROM flowy.tasks WHERE id = 'work-0-1'", db_name()) == "succeeded");
}

namespace {
int fails(int x) {
    if (x > 0) throw std::domain_error("no " + std::to_string(x));
    return x;
}
int crashes(int) {
    std::abort();
}
int sleeps(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
int add(int a, int b) {
    return a + b;
}
struct Semantics {
    flowy::Activity<int(int)> fails{"fails"};
    flowy::Activity<int(int)> crashes{"crashes"};
    flowy::Activity<int(int)> sleeps{"sleeps"};
    flowy::Activity<int(int, int)> add{"add"};
    flowy::Result<int> operator()(int mode) {
        switch (mode) {
            case 0:
                return add(fails(1), 2);  // fails; add is skipped
            case 1:
                return crashes(1);
            case 2:
                return sleeps(3000);  // past its timeout
            case 3: {
                std::vector<flowy::Result<int>> v;
                for (int i : {300, 10, 150}) v.push_back(sleeps(i));
                int order = 0;
                for (auto r : flowy::finish_order(v)) order = order * 1000 + r.get();
                return order;
            }
            case 4: {
                std::vector<flowy::Result<int>> v;
                for (int i = 1; i <= 6; ++i) v.push_back(sleeps(i * 10));
                return flowy::parallel_reduce(add, v);
            }
            case 20: {
                // Short tasks, then a long one with short ones queued behind it on the one
                // worker: the pool takes those back (requeue), and they must simply run.
                std::vector<flowy::Result<int>> warm;
                for (int i = 0; i < 30; ++i) warm.push_back(sleeps(0));
                for (auto& r : warm) r.get();
                std::vector<flowy::Result<int>> v{sleeps(300)};
                for (int i = 0; i < 20; ++i) v.push_back(sleeps(0));
                int sum = 0;
                for (auto& r : v) sum += r.get();
                return sum;
            }
            default:
                if (mode < 10) return flowy::restart(mode + 1);
                return add(mode, 0);
        }
    }
};
}  // namespace

TEST_CASE("D2: failures, skipped dependents, crashes, timeouts, finish_order, parallel_reduce, restart") {
    std::string db = fresh_db();
    auto w = quiet<Semantics>(db);
    w.conf_activity("fails", fails)
        .conf_activity("crashes", crashes)
        .conf_activity("sleeps", sleeps, {.timeout = 500ms})
        .conf_activity("add", add)
        .workers(2);
    try {
        w.run(0);
        FAIL("no error");
    } catch (const flowy::TaskError& e) {
        CHECK(std::string(e.what()) == "no 1");
        CHECK(e.type() == "std::domain_error");
        CHECK(e.task() == "fails-0-0");
    }
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks WHERE activity_name = 'add'", db_name()) == "0");
    CHECK_THROWS_AS(w.run(1), flowy::WorkerCrashed);
    CHECK_THROWS_AS(w.run(2), flowy::TaskTimedout);
    CHECK(w.run(3) == 10150300);
    CHECK(w.run(4) == 210);
    CHECK(w.run(5) == 10);
    CHECK(cluster->psql("SELECT string_agg(status, ',' ORDER BY id) FROM flowy.executions", db_name()) ==
          "failed,failed,failed,succeeded,succeeded,succeeded");
    w.workers(1);
    CHECK(w.run(20) == 300);  // no task behind the long one failed for having been taken back
}

TEST_CASE("D10: 10 serving processes, 60 executions started at once, each a fan-out of 50") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    auto w = quiet<pgtest::Stages>(db);
    pgtest::configure(w, 0);
    std::vector<flowy::ExecutionId> ids;
    for (int i = 0; i < 60; ++i) ids.push_back(w.start(25, 0));
    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < 10; ++i)
        nodes.push_back(
            std::make_unique<Node>(PG_NODE, node_args(db, {"--workers", "1", "--lease", "10000", "serve"})));
    for (auto id : ids) CHECK(w.result(id) == pgtest::stages_value(25));
    Effects end = read_effects(effects);
    CHECK(end.lines == 60 * 51);
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks WHERE state <> 'succeeded' OR id NOT LIKE '%-0'",
                        db_name()) == "0");
    for (auto& n : nodes) n->signal(SIGTERM);
    for (auto& n : nodes) CHECK(n->wait() == 0);
}

namespace {
int tool(const std::string& args) {
    int rc = std::system((std::string(FLOWY_TOOL) + " " + args + " > " + cluster->dir + "/tool.out 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
}  // namespace

TEST_CASE("D9: flowy executions lists them; flowy export of a finished, a failed and a running execution is a trace") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    auto w = quiet<pgtest::Stages>(db);
    pgtest::configure(w, 0);
    w.workers(2);
    CHECK(w.run(2, 10) == pgtest::stages_value(2));
    auto s = quiet<Semantics>(db);
    s.conf_activity("fails", fails)
        .conf_activity("crashes", crashes)
        .conf_activity("sleeps", sleeps)
        .conf_activity("add", add)
        .workers(1);
    CHECK_THROWS_AS(s.run(0), flowy::TaskError);
    flowy::ExecutionId running = w.start(2, 4000);
    Node serve(PG_NODE, node_args(db, {"--workers", "2", "serve"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 1") >= 2; });
    std::string q = "'" + db + "'";
    REQUIRE(tool("executions --db " + q) == 0);
    std::string list = slurp(cluster->dir + "/tool.out");
    CHECK(list.find("succeeded") != std::string::npos);
    CHECK(list.find("failed") != std::string::npos);
    CHECK(list.find("running") != std::string::npos);
    CHECK(list.find("no 1") != std::string::npos);
    std::string host = cluster->psql("SELECT host FROM flowy.tasks LIMIT 1", db_name());
    for (std::string id : {std::string("1"), std::string("2"), flowy::to_string(running)}) {
        CAPTURE(id);
        std::string trace = cluster->dir + "/export-" + id + ".jsonl";
        REQUIRE(tool("export --db " + q + " " + id + " -o " + trace) == 0);
        CHECK(tool("render " + trace + " -o " + trace + ".dot") == 0);
        CHECK(tool("timeline " + trace + " -o " + trace + ".json") == 0);
        if (id == "1") {  // where each finished task ran: the host and the worker process
            CHECK(slurp(trace + ".dot").find("on " + host + " pid ") != std::string::npos);
            CHECK(slurp(trace + ".json").find("(" + host + " pid ") != std::string::npos);
        }
        CHECK(tool("summary " + trace) == 0);
        flowy::Trace t = flowy::Trace::load(trace);
        CHECK(t.tasks().size() >= 2);
    }
    CHECK(flowy::Trace::load(cluster->dir + "/export-" + flowy::to_string(running) + ".jsonl").runs().back().outcome ==
          flowy::TraceRun::Outcome::running);
    CHECK(tool("export --db " + q + " 999 -o " + cluster->dir + "/none.jsonl") == 1);
    CHECK(w.result(running) == pgtest::stages_value(2));
}

namespace {
struct FailingStep {
    flowy::Activity<flowy::CommandResult(flowy::Command)> sh{"sh"};
    flowy::Result<flowy::CommandResult> operator()() {
        return sh(flowy::shell("seq 1 40; echo 'to stderr' >&2; exit 5").named("unit tests"));
    }
};
}  // namespace

TEST_CASE("a failed command's whole output goes through PostgreSQL into the exported trace and its JUnit report") {
    std::string db = fresh_db();
    auto w = quiet<FailingStep>(db);
    w.conf_activity("sh", flowy::run_command).workers(1);
    CHECK_THROWS_WITH_AS(w.run(), doctest::Contains("unit tests: exit 5"), flowy::TaskError);
    std::string q = "'" + db + "'", trace = cluster->dir + "/failed-command.jsonl";
    REQUIRE(tool("export --db " + q + " 1 -o " + trace) == 0);
    flowy::Trace t = flowy::Trace::load(trace);
    REQUIRE(t.tasks().size() == 1);
    CHECK(!t.tasks()[0].host.empty());  // where it failed
    CHECK(t.tasks()[0].pid > 0);
    CHECK(t.to_dot().find("on " + t.tasks()[0].host + " pid ") != std::string::npos);
    REQUIRE(!t.tasks()[0].detail.empty());
    auto r = flowy::detail::decode<flowy::CommandResult>(t.tasks()[0].detail);
    CHECK(r.exit_code == 5);
    CHECK(r.out.size() == 111);  // "1\n" ... "40\n": more than the message's tail
    CHECK(r.err == "to stderr\n");
    CHECK(t.junit().find("<system-out>$ /bin/sh -c") != std::string::npos);
}

TEST_CASE(
    "flowy cancel stops an execution's running attempts and result() throws Cancelled; executions filters "
    "by status and time; purge removes what ended long ago, with its tasks and history") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    std::string q = "'" + db + "'";
    Node server(PG_NODE, node_args(db, {"--workers", "2", "serve"}));
    Node starter(PG_NODE, node_args(db, {"start", "2", "4000"}));
    REQUIRE(starter.wait() == 0);
    flowy::ExecutionId a = flowy::ExecutionId::parse(first_line(starter.out()));
    Effects e = wait_effects(effects, [](const Effects& x) { return x.n("work 0") + x.n("work 1") >= 2; });
    std::vector<int> workers{e.pids["work 0"].front(), e.pids["work 1"].front()};

    REQUIRE(tool("cancel --db " + q + " " + flowy::to_string(a)) == 0);
    CHECK(slurp(cluster->dir + "/tool.out") == "execution " + flowy::to_string(a) + " cancelled\n");
    auto w = quiet<pgtest::Stages>(db);
    pgtest::configure(w, 0);
    CHECK_THROWS_WITH_AS(w.result(a), ("flowy: execution " + flowy::to_string(a) + " was cancelled").c_str(),
                         flowy::Cancelled);
    // Its running attempts are stopped: their workers are killed at the next lease renewal.
    auto until = Clock::now() + 10s;
    auto alive = [](int pid) { return ::kill(pid, 0) == 0 && parent_of(pid) != 1; };
    while ((alive(workers[0]) || alive(workers[1])) && Clock::now() < until) std::this_thread::sleep_for(20ms);
    CHECK(!alive(workers[0]));
    CHECK(!alive(workers[1]));
    CHECK(cluster->psql(
              "SELECT string_agg(DISTINCT state, ',') FROM flowy.tasks WHERE execution = " + flowy::to_string(a),
              db_name()) == "cancelled");
    CHECK(read_effects(effects).n("again 0") == 0);
    CHECK(tool("cancel --db " + q + " " + flowy::to_string(a)) == 1);  // it had ended already
    CHECK(slurp(cluster->dir + "/tool.out").find("had already ended") != std::string::npos);
    CHECK(tool("cancel --db " + q + " 999") == 1);
    CHECK(tool("cancel --db " + q + " x") == 1);

    // The serving process goes on: another execution finishes.
    w.workers(0);
    CHECK(w.run(1, 10) == pgtest::stages_value(1));
    std::string b = cluster->psql("SELECT max(id) FROM flowy.executions", db_name());

    auto listed = [&](const std::string& args) {
        REQUIRE(tool("executions --db " + q + " " + args) == 0);
        std::istringstream out(slurp(cluster->dir + "/tool.out"));
        std::string line, ids;
        std::getline(out, line);  // the header
        while (std::getline(out, line)) ids += line.substr(0, line.find(' ')) + ",";
        return ids;
    };
    CHECK(listed("--status cancelled") == flowy::to_string(a) + ",");
    CHECK(listed("--status succeeded") == b + ",");
    CHECK(listed("--since 1h") == b + "," + flowy::to_string(a) + ",");
    CHECK(listed("--since 2099-01-01") == "");
    CHECK(tool("executions --db " + q + " --since yesterday") == 2);
    CHECK(tool("executions --db " + q + " --status done") == 2);
    CHECK(flowy::list_executions(db, flowy::ExecutionFilter{"cancelled", 0}).size() == 1);
    CHECK_THROWS_AS(flowy::list_executions(db, flowy::ExecutionFilter{"done", 0}), std::invalid_argument);

    // Purge: nothing ended a day ago yet; then the cancelled one did (its clock set back).
    REQUIRE(tool("purge --db " + q + " --older-than 1d") == 0);
    CHECK(slurp(cluster->dir + "/tool.out") == "removed 0 executions that ended more than 1d ago\n");
    cluster->psql(
        "UPDATE flowy.executions SET finished_at = now() - interval '2 days' WHERE id = " + flowy::to_string(a),
        db_name());
    REQUIRE(tool("purge --db " + q + " --older-than 1d") == 0);
    CHECK(slurp(cluster->dir + "/tool.out") == "removed 1 execution that ended more than 1d ago\n");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks WHERE execution = " + flowy::to_string(a), db_name()) == "0");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.history WHERE execution = " + flowy::to_string(a), db_name()) ==
          "0");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.executions", db_name()) == "1");
    CHECK(flowy::purge_executions(db, 0s) == 1);  // the other one, ended just now
    CHECK(tool("purge --db " + q + " --older-than 30") == 2);
    server.signal(SIGTERM);
    CHECK(server.wait() == 0);
}

TEST_CASE(
    "task lists: a task on a list nobody serves waits, and flowy executions says so; a process that serves "
    "the list runs it") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    std::string q = "'" + db + "'";
    // `again` goes on list gpu; this serving process serves only the default list.
    Node plain(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    Node decider(PG_NODE, node_args(db, {"--workers", "0", "--list", "gpu", "run", "2", "10"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") + x.n("work 1") >= 2; });
    std::string out;
    for (auto until = Clock::now() + 20s; Clock::now() < until; std::this_thread::sleep_for(50ms)) {
        REQUIRE(tool("executions --db " + q) == 0);
        out = slurp(cluster->dir + "/tool.out");
        if (out.find("waiting for a worker of task list gpu since ") != std::string::npos) break;
    }
    CHECK_MESSAGE(out.find("waiting for a worker of task list gpu since ") != std::string::npos, out);
    auto listed = flowy::list_executions(db);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].waiting_list == "gpu");
    CHECK(listed[0].waiting_since_us > 0);
    CHECK(read_effects(effects).n("again 0") + read_effects(effects).n("again 1") == 0);
    CHECK(decider.alive());
    // A process that serves gpu: the tasks run, and nothing waits any more.
    Node gpu(PG_NODE, node_args(db, {"--workers", "1", "--list", "gpu", "serve"}));
    REQUIRE_MESSAGE(decider.wait(30s) == 0, decider.err());
    CHECK(first_line(decider.out()) == std::to_string(pgtest::stages_value(2)));
    for (int i = 0; i < 2; ++i) {
        std::vector<int> pids = read_effects(effects).pids["again " + std::to_string(i * i)];
        REQUIRE(pids.size() == 1);
        CHECK(parent_of(pids[0]) == gpu.pid);
    }
    CHECK(flowy::list_executions(db)[0].waiting_list.empty());
    plain.signal(SIGTERM);
    gpu.signal(SIGTERM);
    CHECK(plain.wait() == 0);
    CHECK(gpu.wait() == 0);
}

namespace {
std::string as_role(const std::string& db, const std::string& role) {
    std::string c = db;
    c.replace(c.find("user=postgres"), std::string("user=postgres").size(), "user=" + role);
    return c;
}
}  // namespace

TEST_CASE(
    "least privilege: the owner makes and migrates the schema, a worker role runs without DDL, a read-only "
    "role lists and exports and can change nothing") {
    std::string db = fresh_db();
    cluster->psql("CREATE ROLE flowy_owner LOGIN; CREATE ROLE flowy_worker LOGIN; CREATE ROLE flowy_reader LOGIN");
    cluster->psql("ALTER DATABASE " + db_name() + " OWNER TO flowy_owner");
    auto owner = quiet<Echo>(as_role(db, "flowy_owner"));
    owner.conf_activity("echo", echo).workers(1);
    CHECK(owner.run(std::string("a")) == "aa");  // it makes the schema
    // The grants the README shows.
    cluster->psql(
        "GRANT USAGE ON SCHEMA flowy TO flowy_worker, flowy_reader; "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA flowy TO flowy_worker; "
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA flowy TO flowy_worker; "
        "GRANT SELECT ON ALL TABLES IN SCHEMA flowy TO flowy_reader; "
        "ALTER DEFAULT PRIVILEGES FOR ROLE flowy_owner IN SCHEMA flowy "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flowy_worker; "
        "ALTER DEFAULT PRIVILEGES FOR ROLE flowy_owner IN SCHEMA flowy GRANT SELECT ON TABLES TO flowy_reader",
        db_name());
    auto worker = quiet<Echo>(as_role(db, "flowy_worker"));
    worker.conf_activity("echo", echo).workers(1);
    CHECK(worker.run(std::string("b")) == "bb");
    CHECK(flowy::cancel_execution(as_role(db, "flowy_worker"), flowy::ExecutionId(2)) == false);
    std::string denied = "psql -X -q -A -t -h 127.0.0.1 -p " + std::to_string(cluster->port) + " -d " + db_name();
    auto psql_as = [&](const std::string& role, const std::string& sql) {
        return std::system((std::string(pgtest::pg_bin) + "/" + denied + " -U " + role + " -v ON_ERROR_STOP=1 -c \"" +
                            sql + "\" > /dev/null 2>&1")
                               .c_str());
    };
    CHECK(psql_as("flowy_worker", "CREATE TABLE flowy.x (a int)") != 0);
    CHECK(psql_as("flowy_worker", "DROP TABLE flowy.history") != 0);
    CHECK(psql_as("flowy_worker", "ALTER TABLE flowy.tasks ADD COLUMN y int") != 0);
    // A worker role cannot migrate an older schema: a clear error, nothing changed. (A
    // version-1 schema had no flowy.activities: the owner's migration makes it, and the
    // default privileges give the worker role its rights on it.)
    cluster->psql("DROP TABLE flowy.activities; UPDATE flowy.meta SET value = '1' WHERE key = 'schema_version'",
                  db_name());
    try {
        worker.run(std::string("c"));
        FAIL("a role without DDL migrated the schema");
    } catch (const flowy::ConfigError& e) {
        CHECK(std::string(e.what()).find("cannot bring the flowy schema from version 1 to 3") != std::string::npos);
    }
    CHECK(owner.run(std::string("d")) == "dd");  // the owner migrates it
    CHECK(cluster->psql("SELECT value FROM flowy.meta WHERE key = 'schema_version'", db_name()) == "3");
    CHECK(worker.run(std::string("e")) == "ee");

    // The reader lists and exports; it can start, cancel and purge nothing.
    std::string reader = as_role(db, "flowy_reader");
    CHECK(flowy::list_executions(reader).size() == 4);  // a, b, d and e: c was refused before it started
    CHECK(!flowy::export_trace(reader, flowy::ExecutionId(1)).empty());
    auto r = quiet<Echo>(reader);
    r.conf_activity("echo", echo).workers(0);
    CHECK_THROWS_WITH(r.start(std::string("f")), doctest::Contains("permission denied"));
    CHECK_THROWS_WITH(flowy::cancel_execution(reader, flowy::ExecutionId(1)), doctest::Contains("permission denied"));
    CHECK_THROWS_WITH(flowy::purge_executions(reader, 0s), doctest::Contains("permission denied"));
    CHECK(psql_as("flowy_reader", "UPDATE flowy.executions SET status = 'failed'") != 0);
    CHECK(cluster->psql("SELECT count(*) FROM flowy.executions", db_name()) == "4");
    cluster->psql("REASSIGN OWNED BY flowy_owner TO postgres", db_name());
    cluster->psql("DROP OWNED BY flowy_worker, flowy_reader, flowy_owner", db_name());
}

TEST_CASE("TLS through the connection string: sslmode=verify-full against a certificate made for the test") {
    std::string db = fresh_db();
    std::string d = cluster->dir;
    // A CA, and a server certificate it signed for 127.0.0.1.
    std::string sh =
        "cd " + d + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=flowy-test-ca -keyout ca.key " +
        "-out ca.crt && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr " +
        "&& printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in server.csr -CA ca.crt -CAkey " +
        "ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt && chmod 600 server.key && " +
        "(chown postgres server.key server.crt 2>/dev/null || true)";
    REQUIRE(std::system(("(" + sh + ") > " + d + "/openssl.log 2>&1").c_str()) == 0);
    cluster->psql("ALTER SYSTEM SET ssl_cert_file = '" + d + "/server.crt'");
    cluster->psql("ALTER SYSTEM SET ssl_key_file = '" + d + "/server.key'");
    cluster->psql("ALTER SYSTEM SET ssl = on");
    cluster->psql("SELECT pg_reload_conf()");
    struct Off {
        ~Off() {
            cluster->psql("ALTER SYSTEM RESET ssl");
            cluster->psql("SELECT pg_reload_conf()");
        }
    } off;
    auto w = quiet<Echo>(db + " sslmode=verify-full sslrootcert=" + d + "/ca.crt");
    w.conf_activity("echo", echo).workers(1);
    CHECK(w.run(std::string("tls")) == "tlstls");
    CHECK(cluster->psql("SELECT count(*) FROM flowy.executions WHERE status = 'succeeded'", db_name()) == "1");
    // The certificate is checked: another CA, or another name, is refused.
    REQUIRE(std::system(("cd " + d + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other " +
                         "-keyout other.key -out other.crt > /dev/null 2>&1")
                            .c_str()) == 0);
    auto wrong_ca = quiet<Echo>(db + " sslmode=verify-full sslrootcert=" + d + "/other.crt");
    wrong_ca.conf_activity("echo", echo).workers(1);
    CHECK_THROWS_WITH_AS(wrong_ca.run(std::string("x")), doctest::Contains("certificate verify failed"),
                         flowy::ConfigError);
    std::string by_name = db;
    by_name.replace(by_name.find("host=127.0.0.1"), std::string("host=127.0.0.1").size(), "host=localhost");
    auto wrong_name = quiet<Echo>(by_name + " sslmode=verify-full sslrootcert=" + d + "/ca.crt");
    wrong_name.conf_activity("echo", echo).workers(1);
    CHECK_THROWS_WITH_AS(wrong_name.run(std::string("x")), doctest::Contains("does not match host name"),
                         flowy::ConfigError);
}

namespace {
/// Stages configured for the tests below; `work` gets `opts` (its retries too).
flowy::PostgresWorkflow<pgtest::Stages> stages(const std::string& db, flowy::ActivityOptions opts = {}) {
    auto w = quiet<pgtest::Stages>(db);
    w.conf_activity("work", pgtest::work, opts);
    w.conf_activity("again", pgtest::again);
    w.conf_activity("total", pgtest::total);
    w.workers(0).lease(1000ms);
    return w;
}
/// Waits (bounded) until process `pid` is gone; whether it went.
bool gone_within(int pid, std::chrono::milliseconds limit) {
    for (auto until = Clock::now() + limit; Clock::now() < until; std::this_thread::sleep_for(20ms))
        if (::kill(pid, 0) != 0) return true;
    return false;
}
/// [started_us, ended_us] of the tasks `where` selects, from the tasks table.
std::vector<std::pair<long long, long long>> intervals(const std::string& where) {
    std::istringstream in(cluster->psql(
        "SELECT string_agg(started_us || ' ' || ended_us, ' ' ORDER BY started_us) FROM flowy.tasks WHERE " + where,
        db_name()));
    std::vector<std::pair<long long, long long>> out;
    long long a, b;
    while (in >> a >> b) out.emplace_back(a, b);
    return out;
}
/// The most of `spans` that overlap at one time.
int most_at_once(const std::vector<std::pair<long long, long long>>& spans) {
    std::vector<std::pair<long long, int>> edges;
    for (auto [a, b] : spans) edges.emplace_back(a, 1), edges.emplace_back(b, -1);
    std::sort(edges.begin(), edges.end());  // an end before a start at the same time
    int now = 0, most = 0;
    for (auto [t, d] : edges) most = std::max(most, now += d);
    return most;
}
}  // namespace

TEST_CASE(
    "timeouts through PostgreSQL: schedule_to_start, schedule_to_close (stopped on another host), "
    "execution_timeout (kept by whichever process decides)") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    {
        // Nobody serves: the task waits past its schedule_to_start, and is not retried.
        auto w = stages(db, {.retries = 2, .schedule_to_start = 300ms});
        auto t0 = Clock::now();
        try {
            w.run(1, 10);
            FAIL("it ran");
        } catch (const flowy::TaskTimedout& e) {
            std::string m = e.what();
            CHECK_MESSAGE(
                m.find("task work-0-0 (work(0, 10), attempt 1 of 3) timed out: schedule_to_start passed after ") == 0,
                m);
            CHECK_MESSAGE(m.find(" ms waiting for a worker of task list default") != std::string::npos, m);
        }
        CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 3.0);
        CHECK(cluster->psql("SELECT count(*) || ' ' || min(error_kind) FROM flowy.tasks", db_name()) ==
              "1 not_started");
    }
    {
        // Nobody serves, and only schedule_to_close is set: it is the one named, and the
        // queued row ends as timed out (never claimed).
        auto w = stages(db, {.schedule_to_close = 300ms});
        CHECK_THROWS_WITH_AS(w.run(1, 10),
                             "task work-0-0 (work(0, 10), attempt 1 of 1) timed out: schedule_to_close of 300 ms "
                             "passed before it ended (its attempt was stopped)",
                             flowy::TaskTimedout);
        CHECK(cluster->psql("SELECT state || ' ' || error_kind FROM flowy.tasks WHERE execution = 2", db_name()) ==
              "failed timed_out");
    }
    Node server(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    {
        // Running on the serving process past its schedule_to_close: the decider ends it and
        // the serving process kills its worker.
        auto w = stages(db, {.schedule_to_close = 1000ms});
        try {
            w.run(1, 30000);
            FAIL("it ran");
        } catch (const flowy::TaskTimedout& e) {
            CHECK(std::string(e.what()) ==
                  "task work-0-0 (work(0, 30000), attempt 1 of 1) timed out: schedule_to_close of 1000 ms "
                  "passed before it ended (its attempt was stopped)");
        }
        Effects x = read_effects(effects);
        REQUIRE(x.pids["work 0"].size() == 1);
        int worker = x.pids["work 0"][0];
        CHECK(parent_of(worker) == server.pid);
        CHECK(gone_within(worker, 3s));
        CHECK(cluster->psql("SELECT state || ' ' || error_kind FROM flowy.tasks WHERE execution = 3", db_name()) ==
              "failed timed_out");
        CHECK(server.alive());
    }
    {
        // execution_timeout: started here, decided by the serving process, which has no such
        // option of its own: the deadline is the execution's.
        auto w = stages(db);
        w.execution_timeout(1500ms);
        flowy::ExecutionId id = w.start(1, 30000);
        auto t0 = Clock::now();
        CHECK_THROWS_WITH_AS(w.result(id), "flowy: the execution ran past its execution_timeout of 1500 ms",
                             flowy::TaskTimedout);
        CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 5.0);
        Effects x = wait_effects(effects, [](const Effects& e) { return e.n("work 0") == 2; });
        CHECK(gone_within(x.pids["work 0"][1], 3s));  // its running task was stopped
        CHECK(flowy::list_executions(db)[0].status == "failed");
    }
    server.signal(SIGTERM);
    CHECK(server.wait() == 0);
}

TEST_CASE(
    "D7: executions are decided and their tasks run only by processes of their version; another "
    "signature within a version is refused before any task") {
    std::string db = fresh_db();
    fresh_effects();
    auto v1 = stages(db);
    auto v2 = stages(db);
    v2.version("2");
    flowy::ExecutionId old = v1.start(2, 10);
    Node serve2(PG_NODE, node_args(db, {"--workers", "1", "--version", "2", "serve"}));
    flowy::ExecutionId fresh = v2.start(2, 10);
    CHECK(v2.result(fresh) == pgtest::stages_value(2));
    // Version 1's execution waits: no process of version 1 serves.
    auto listed = flowy::list_executions(db);
    REQUIRE(listed.size() == 2);
    CHECK(listed[1].id == old);
    CHECK(listed[1].status == "pending");
    CHECK(listed[1].version == "1");
    CHECK(listed[0].version == "2");
    REQUIRE(tool("executions --db '" + db + "'") == 0);
    std::string out = slurp(cluster->dir + "/tool.out");
    char row[128];
    std::snprintf(row, sizeof row, "%-8s %-24s %-8s %-10s", flowy::to_string(fresh).c_str(), "pgtest::Stages", "2",
                  "succeeded");
    CHECK_MESSAGE(out.find(row) != std::string::npos, out);
    CHECK_THROWS_WITH_AS(v2.result(old),
                         ("flowy: execution " + flowy::to_string(old) +
                          " is version 1 of workflow pgtest::Stages, not version 2 of pgtest::Stages: wait for it "
                          "with the code of its version")
                             .c_str(),
                         flowy::ConfigError);
    Node serve1(PG_NODE, node_args(db, {"--workers", "1", "--version", "1", "serve"}));
    CHECK(v1.result(old) == pgtest::stages_value(2));
    // Each execution's tasks ran on the workers of its own version's process.
    for (auto [id, node] : {std::pair{old, serve1.pid}, std::pair{fresh, serve2.pid}}) {
        std::istringstream pids(cluster->psql(
            "SELECT string_agg(DISTINCT pid::text, ' ') FROM flowy.tasks WHERE execution = " + flowy::to_string(id),
            db_name()));
        int pid, n = 0;
        while (pids >> pid) {
            CHECK(parent_of(pid) == node);
            ++n;
        }
        CHECK(n >= 1);
    }
    // Version 1 as registered by other code: `work` took (long, int) there.
    cluster->psql("UPDATE flowy.activities SET signature = 'int (long, int)' WHERE name = 'work' AND version = '1'",
                  db_name());
    std::string refused =
        "flowy: activity 'work' is int (int, int) in this process but int (long, int) in version 1 of workflow "
        "pgtest::Stages in the database";
    CHECK_THROWS_WITH_AS(v1.start(1, 10), doctest::Contains(refused.c_str()), flowy::ConfigError);
    std::string tasks = cluster->psql("SELECT count(*) FROM flowy.tasks", db_name());
    Node bad(PG_NODE, node_args(db, {"--workers", "1", "serve"}));
    CHECK(bad.wait(20s) == 1);
    CHECK_MESSAGE(bad.err().find(refused) != std::string::npos, bad.err());
    CHECK(cluster->psql("SELECT count(*) FROM flowy.tasks", db_name()) == tasks);
    CHECK_THROWS_WITH_AS(v2.version("two words"), doctest::Contains("use 1 to 64 letters"), flowy::ConfigError);
    serve1.signal(SIGTERM);
    serve2.signal(SIGTERM);
    CHECK(serve1.wait() == 0);
    CHECK(serve2.wait() == 0);
}

TEST_CASE("limits: an activity's concurrency across two hosts and two executions; max_in_flight per execution") {
    std::string db = fresh_db();
    std::string effects = fresh_effects();
    // b configured no limit of its own: it honours the one the tasks carry (their
    // deciders': two processes that run an execution each, with no workers). It serves
    // alone until two `work` tasks ran, then a (which has the limit too) joins.
    Node b(PG_NODE, node_args(db, {"--workers", "2", "serve"}));
    Node one(PG_NODE, node_args(db, {"--workers", "0", "--concurrency", "1", "run", "3", "150"}));
    Node two(PG_NODE, node_args(db, {"--workers", "0", "--concurrency", "1", "run", "3", "150"}));
    wait_effects(effects, [](const Effects& x) { return x.n("work 0") + x.n("work 1") + x.n("work 2") >= 2; });
    Node a(PG_NODE, node_args(db, {"--workers", "2", "--concurrency", "1", "serve"}));
    for (Node* n : {&one, &two}) {
        REQUIRE_MESSAGE(n->wait(60s) == 0, n->err());
        CHECK(first_line(n->out()) == std::to_string(pgtest::stages_value(3)));
    }
    auto work = intervals("activity_name = 'work'");
    REQUIRE(work.size() == 6);
    CHECK(most_at_once(work) == 1);                                   // one at a time, over both hosts and executions
    CHECK(most_at_once(intervals("activity_name <> 'total'")) >= 2);  // `again` ran beside `work`
    std::istringstream hosts(cluster->psql(
        "SELECT string_agg(DISTINCT pid::text, ' ') FROM flowy.tasks WHERE activity_name = 'work'", db_name()));
    std::set<int> nodes;
    for (int pid; hosts >> pid;) nodes.insert(parent_of(pid));
    CHECK(nodes.count(b.pid) == 1);
    CHECK(nodes.size() == nodes.count(a.pid) + nodes.count(b.pid));
    // max_in_flight(2): of an execution's tasks, at most two are queued or running at once.
    auto paced = stages(db);
    paced.max_in_flight(2);
    CHECK(paced.run(4, 150) == pgtest::stages_value(4));
    auto spans = intervals("execution = 3");
    REQUIRE(spans.size() == 9);
    CHECK(most_at_once(spans) == 2);
    a.signal(SIGTERM);
    b.signal(SIGTERM);
    CHECK(a.wait() == 0);
    CHECK(b.wait() == 0);
}

namespace {
void stop_cluster(int sig) {
    if (cluster) cluster->stop();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}
}  // namespace

int main(int argc, char** argv) {
    pgtest::Cluster c("host all pw 127.0.0.1/32 scram-sha-256");
    cluster = &c;
    std::signal(SIGTERM, stop_cluster);
    std::signal(SIGINT, stop_cluster);
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    cluster = nullptr;
    return rc;
}

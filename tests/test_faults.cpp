// Faults and limits (SEMANTICS.md rows 16, 17, 20, 21): timeouts, retries, crashes of
// every kind and in a storm, signals to the scheduler, 64 MiB payloads, bad inputs.
// Each process test checks that nothing is left behind.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"
#include "worker/protocol.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using flowy::Activity;
using flowy::Result;
using test::Shared;

namespace {
void quiet(std::string_view) {}
}  // namespace

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

int hang(int x) {
    ++Shared::get().calls;
    sleep(30);
    return x;
}
int quick(int x) {
    return x + 1;
}

struct OneTask {
    Activity<int(int)> t{"t"};
    Activity<int(int)> other{"other"};
    std::vector<std::string> operator()() {
        auto r = t(1);
        auto o = other(1);
        std::vector<std::string> seen;
        try {
            seen.push_back(std::to_string(r.get()));
        } catch (const flowy::TaskTimedout& e) {
            seen.push_back(std::string("timed out: ") + e.what());
            seen.push_back(e.task());
        }
        seen.push_back(std::to_string(o.get() + other(2).get()));  // the pool goes on
        return seen;
    }
};

}  // namespace

TEST_CASE("a task past its timeout is stopped with its worker, which is replaced") {
    test::NoLeaks no_leaks;
    Shared::reset();
    auto w = test::on<OneTask>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", hang, {.timeout = 100ms});
    w.conf_activity("other", quick);
    auto t0 = Clock::now();
    auto seen = w.run();
    CHECK(seconds_since(t0) < 5);
    REQUIRE(seen.size() == 3);
    CHECK(seen[0] == "timed out: task t-0-0 (t(1), attempt 1 of 1) timed out after 100 ms");
    CHECK(seen[1] == "t-0-0");
    CHECK(seen[2] == "5");
}

TEST_CASE("retries = 2 makes three attempts, each with its own id, then TaskTimedout") {
    test::NoLeaks no_leaks;
    Shared::reset();
    test::Log log;
    auto w = test::on<OneTask>(flowy::Executor::processes, 2, quiet);
    w.log(log.sink());
    w.conf_activity("t", hang, {.timeout = 50ms, .retries = 2});
    w.conf_activity("other", quick);
    auto seen = w.run();
    CHECK(Shared::get().calls == 3);
    CHECK(seen[0] == "timed out: task t-0-2 (t(1), attempt 3 of 3) timed out after 50 ms");
    CHECK(seen[1] == "t-0-2");
    CHECK(log.text.find("retrying as t-0-1") != std::string::npos);
    CHECK(log.text.find("retrying as t-0-2") != std::string::npos);
}

namespace {
int slow_late(int x) {
    std::this_thread::sleep_for(150ms);
    return x;
}
}  // namespace

TEST_CASE("threads and synchronous: a task that returns after its timeout is TaskTimedout") {
    for (auto e : {flowy::Executor::threads, flowy::Executor::synchronous}) {
        CAPTURE(test::name(e));
        auto w = test::on<OneTask>(e, 2, quiet);
        w.conf_activity("t", slow_late, {.timeout = 20ms});
        w.conf_activity("other", quick);
        auto seen = w.run();
        CHECK(seen[0] == "timed out: task t-0-0 (t(1), attempt 1 of 1) timed out after 20 ms");
    }
}

namespace {
int flaky(int x) {
    // attempt 0 crashes, attempt 1 hangs past its timeout, attempt 2 works
    int attempt = Shared::get().calls++;
    if (attempt == 0) raise(SIGKILL);
    if (attempt == 1) sleep(30);
    return x * 100;
}
int throws_once(int x) {
    if (Shared::get().calls++ == 0) throw std::runtime_error("first time");
    return x;
}
struct Single {
    Activity<int(int)> t{"t"};
    Result<int> operator()(int x) { return t(x); }
};
}  // namespace

TEST_CASE("retries cover crashes and timeouts, not the activity's own exceptions unless asked") {
    test::NoLeaks no_leaks;
    Shared::reset();
    auto w = test::on<Single>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", flaky, {.timeout = 200ms, .retries = 2});
    CHECK(w.run(3) == 300);
    CHECK(Shared::get().calls == 3);

    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        Shared::reset();
        auto plain = test::on<Single>(e, 2, quiet);
        plain.conf_activity("t", throws_once, {.retries = 3});
        CHECK_THROWS_WITH_AS(plain.run(1), "first time", flowy::TaskError);
        CHECK(Shared::get().calls == 1);

        Shared::reset();
        auto asked = test::on<Single>(e, 2, quiet);
        asked.conf_activity("t", throws_once, {.retries = 3, .retry_on_error = true});
        CHECK(asked.run(7) == 7);
        CHECK(Shared::get().calls == 2);
    }
}

namespace {
int fails_then_marks(int x) {
    Shared& s = Shared::get();
    if (s.calls++ == 0) raise(SIGKILL);
    s.counter[1] = s.counter[0].load();  // how many chain steps had finished before the retry ran
    return x;
}
int chain_step(int x) {
    ++Shared::get().counter[0];
    return x + 1;
}
struct DelayAndChain {
    Activity<int(int)> t{"t"};
    Activity<int(int)> step{"step"};
    int operator()() {
        auto r = t(1);
        Result<int> acc = 0;
        for (int i = 0; i < 5; ++i) acc = step(acc);
        return r.get() + acc.get();
    }
};
}  // namespace

TEST_CASE("retry_delay waits without blocking anything else") {
    test::NoLeaks no_leaks;
    Shared::reset();
    auto w = test::on<DelayAndChain>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", fails_then_marks, {.retries = 1, .retry_delay = 500ms});
    w.conf_activity("step", chain_step);
    auto t0 = Clock::now();
    CHECK(w.run() == 6);
    CHECK(seconds_since(t0) >= 0.5);
    CHECK(Shared::get().counter[1] == 5);  // the whole chain ran during the delay
}

namespace {
[[noreturn]] void throw_it() {
    throw std::runtime_error("escapes");
}
void terminate_in_noexcept() noexcept {
    throw_it();
}  // std::terminate: abort
int die(int how) {
    switch (how) {
        case 1:
            raise(SIGSEGV);
            break;
        case 2:
            std::abort();
        case 3:
            _exit(3);
        case 4:
            raise(SIGKILL);
            break;
        case 5:
            terminate_in_noexcept();
            break;
        default:
            break;
    }
    return how;
}
}  // namespace

TEST_CASE("SIGSEGV, abort, _exit(3), SIGKILL and an exception escaping a noexcept each fail one task") {
    struct Case {
        int how;
        const char* says;
    } cases[] = {{1, "SIGSEGV"}, {2, "SIGABRT"}, {3, "exited with code 3"}, {4, "SIGKILL"}, {5, "SIGABRT"}};
    for (auto c : cases) {
        CAPTURE(c.says);
        test::NoLeaks no_leaks;
        auto w = test::on<Single>(flowy::Executor::processes, 2, quiet);
        w.conf_activity("t", die);
        try {
            w.run(c.how);
            FAIL("no crash reported");
        } catch (const flowy::WorkerCrashed& e) {
            CHECK(std::string(e.what()).find(c.says) != std::string::npos);
            CHECK(e.task() == "t-0-0");
        }
    }
}

namespace {
int every_third_crashes(int i) {
    if (i % 3 == 2) raise(SIGKILL);
    return i;
}
struct Storm {
    Activity<int(int)> t{"t"};
    std::vector<int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        std::vector<int> out;  // the value, or -1 for a crash
        for (auto& r : rs) {
            try {
                out.push_back(r.get());
            } catch (const flowy::WorkerCrashed&) {
                out.push_back(-1);
            }
        }
        return out;
    }
};
}  // namespace

TEST_CASE("a storm: 1,000 tasks of which every third kills its worker end with exactly the right results") {
    test::NoLeaks no_leaks;
    auto w = test::on<Storm>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", every_third_crashes);
    auto out = w.run(1000);
    REQUIRE(out.size() == 1000);
    int wrong = 0;
    for (int i = 0; i < 1000; ++i) wrong += out[static_cast<std::size_t>(i)] != (i % 3 == 2 ? -1 : i);
    CHECK(wrong == 0);
}

// ---- signals to the scheduler: each case runs a workflow in a forked child ----

namespace {
int record_and_hang(int x) {
    Shared& s = Shared::get();
    s.counter[x] = getpid();
    ++s.calls;
    // Sleeps counter[7] seconds, signals or not (sleep() would return early on one).
    auto until = Clock::now() + std::chrono::seconds(s.counter[7].load());
    while (Clock::now() < until) std::this_thread::sleep_for(10ms);
    return x;
}
struct TwoHangs {
    Activity<int(int)> t{"t"};
    int operator()() {
        auto a = t(0);
        auto b = t(1);
        return a.get() + b.get();
    }
};

/// Forks a child that runs TwoHangs on `e` (tasks lasting `hang_s`); returns its pid once they run.
pid_t start_hanging_run(flowy::Executor e, int hang_s = 30) {
    Shared::reset();
    Shared::get().counter[7] = hang_s;
    std::fflush(nullptr);  // or the child would print our buffered output again
    pid_t child = fork();
    if (child == 0) {
        int code = 1;
        try {
            auto w = test::on<TwoHangs>(e, 2, quiet);
            w.conf_activity("t", record_and_hang);
            w.run();
        } catch (const flowy::Cancelled&) {
            code = 42;
        } catch (...) {
            code = 2;
        }
        _exit(code);
    }
    int expected = e == flowy::Executor::synchronous ? 1 : 2;
    auto deadline = Clock::now() + 10s;
    while (Shared::get().calls < expected && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    REQUIRE(Shared::get().calls == expected);
    return child;
}

bool gone(pid_t pid) {
    if (pid <= 0) return true;
    if (kill(pid, 0) != 0) return true;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string p, comm, state;
    return !(f >> p >> comm >> state) || state == "Z";
}

int wait_exit(pid_t child, double limit_s, int* status) {
    auto deadline = Clock::now() + std::chrono::duration<double>(limit_s);
    while (Clock::now() < deadline) {
        pid_t r = waitpid(child, status, WNOHANG);
        if (r == child) return 0;
        std::this_thread::sleep_for(1ms);
    }
    kill(child, SIGKILL);
    waitpid(child, status, 0);
    return -1;
}
}  // namespace

TEST_CASE("SIGINT or SIGTERM stops the run cleanly: run() throws Cancelled, workers are gone") {
    for (int sig : {SIGINT, SIGTERM}) {
        for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {
            CAPTURE(sig);
            CAPTURE(test::name(e));
            test::NoLeaks no_leaks;
            // threads cannot be stopped: there the run is cancelled once the tasks return (in 1 s)
            pid_t child = start_hanging_run(e, e == flowy::Executor::threads ? 1 : 30);
            pid_t w0 = Shared::get().counter[0], w1 = Shared::get().counter[1];
            kill(child, sig);
            int status = 0;
            REQUIRE(wait_exit(child, 5, &status) == 0);
            if (e == flowy::Executor::processes) {
                CHECK(WIFEXITED(status));
                CHECK(WEXITSTATUS(status) == 42);
                CHECK(gone(w0));
                CHECK(gone(w1));
            } else {
                CHECK(WIFEXITED(status));
                CHECK(WEXITSTATUS(status) == 42);
            }
        }
    }
}

TEST_CASE("a second SIGINT forces the scheduler out") {
    test::NoLeaks no_leaks;
    pid_t child = start_hanging_run(flowy::Executor::synchronous);  // the first cannot stop a running task
    kill(child, SIGINT);
    std::this_thread::sleep_for(50ms);  // two distinct signals, not one merged pending one
    kill(child, SIGINT);
    int status = 0;
    REQUIRE(wait_exit(child, 5, &status) == 0);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("a scheduler killed with SIGKILL takes its workers with it within a second") {
    test::NoLeaks no_leaks;
    pid_t child = start_hanging_run(flowy::Executor::processes);
    pid_t w0 = Shared::get().counter[0], w1 = Shared::get().counter[1];
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    auto deadline = Clock::now() + 1s;
    while (!(gone(w0) && gone(w1)) && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    CHECK(gone(w0));
    CHECK(gone(w1));
}

// ---- payloads ----

namespace {
std::vector<std::byte> flip(std::vector<std::byte> v) {
    for (auto& b : v) b = ~b;
    return v;
}
std::string reverse(std::string s) {
    return std::string(s.rbegin(), s.rend());
}
std::map<std::string, std::vector<std::vector<int>>> nest(std::map<std::string, std::vector<std::vector<int>>> m) {
    m["added"] = {{1, 2, 3}};
    return m;
}
struct Payloads {
    Activity<std::vector<std::byte>(std::vector<std::byte>)> flip{"flip"};
    Activity<std::string(std::string)> reverse{"reverse"};
    Activity<std::map<std::string, std::vector<std::vector<int>>>(std::map<std::string, std::vector<std::vector<int>>>)>
        nest{"nest"};
    bool operator()(std::size_t n) {
        std::vector<std::byte> bytes(n);
        for (std::size_t i = 0; i < n; ++i) bytes[i] = std::byte(i * 7 + 3);
        std::string text(n, '\0');
        for (std::size_t i = 0; i < n; ++i) text[i] = char('a' + i % 26);
        std::map<std::string, std::vector<std::vector<int>>> tree;
        tree["big"] = std::vector<std::vector<int>>(n / 4096, std::vector<int>(1024, 5));
        auto f = flip(bytes);
        auto r = reverse(text);
        auto t = nest(tree);
        auto back = flip(f);  // a big result passed on as an argument
        bool ok = back.get() == bytes;
        for (std::size_t i = 0; i < n && ok; i += 4099) ok = f.get()[i] == ~bytes[i];
        ok = ok && r.get() == std::string(text.rbegin(), text.rend());
        tree["added"] = {{1, 2, 3}};
        return ok && t.get() == tree;
    }
};
}  // namespace

TEST_CASE("64 MiB arguments and results arrive intact") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<Payloads>(e, 2, quiet);
        w.conf_activity("flip", flip);
        w.conf_activity("reverse", reverse);
        w.conf_activity("nest", nest);
        CHECK(w.run(std::size_t(64) << 20));
    }
}

// ---- bad inputs ----

namespace {
struct Unsavable {
    int x = 0;
    template <class A>
    void save(A&) const {
        throw std::runtime_error("cannot save this one");
    }
    template <class A>
    void load(A& a) {
        a(x);
    }
};
Unsavable make_unsavable(int x) {
    return Unsavable{x};
}
struct ReturnsUnsavable {
    Activity<Unsavable(int)> t{"t"};
    std::string operator()() {
        try {
            t(1).get();
            return "no throw";
        } catch (const flowy::TaskError& e) {
            return e.what();
        }
    }
};
int garbage(int x) {
    if (auto* w = flowy::detail::worker::this_worker()) {
        char junk[flowy::detail::worker::ReplyHead::size];
        std::memset(junk, 0xff, sizeof junk);  // a length no reply has
        flowy::detail::worker::reply_ring(w).write_some(junk, sizeof junk);
    }
    sleep(30);  // the scheduler kills us first
    return x;
}
}  // namespace

TEST_CASE("bad inputs: a result that cannot be serialised, a worker writing garbage") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<ReturnsUnsavable>(e, 2, quiet);
        w.conf_activity("t", make_unsavable);
        CHECK(w.run() == "cannot save this one");
    }
    test::NoLeaks no_leaks;
    auto w = test::on<Single>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", garbage);
    auto t0 = Clock::now();
    CHECK_THROWS_WITH_AS(w.run(1), doctest::Contains("sent a malformed reply"), flowy::WorkerCrashed);
    CHECK(seconds_since(t0) < 10);
}

// ---- streamed arguments and results (processes: straight from and to the rings) ----

namespace {
/// A big value whose loading fails after its first field: the rest of the request
/// (half a megabyte) is still on the ring when the activity's call fails.
struct Picky {
    bool refuse = false;
    std::vector<int> data;
    template <class A>
    void save(A& a) const {
        a(refuse, data);
    }
    template <class A>
    void load(A& a) {
        a(refuse);
        if (refuse) throw std::runtime_error("refused to load");
        a(data);
    }
};
long total(Picky p) {
    long s = 0;
    for (int x : p.data) s += x;
    return s;
}
struct PickyFlow {
    Activity<long(Picky)> total{"total"};
    std::string operator()(int n) {
        std::string out;
        for (bool refuse : {true, false, true, false}) {
            Picky p{refuse, std::vector<int>(static_cast<std::size_t>(n), 3)};
            try {
                out += std::to_string(total(p).get()) + " ";
            } catch (const flowy::TaskError& e) {
                out += std::string(e.what()) + " ";
            }
        }
        return out;
    }
};

/// A result that writes other bytes each time it is saved: the worker counts the size
/// first, then writes, and cannot send what it did not announce.
struct Fickle {
    int n = 0;
    template <class A>
    void save(A& a) const {
        static int calls = 0;
        a(std::vector<int>(static_cast<std::size_t>(n + calls++), 1));
    }
    template <class A>
    void load(A& a) {
        std::vector<int> v;
        a(v);
        n = static_cast<int>(v.size());
    }
};
Fickle make_fickle(int n) {
    return Fickle{n};
}
struct FickleFlow {
    Activity<Fickle(int)> t{"t"};
    int operator()(int n) { return t(n).get().n; }
};
}  // namespace

TEST_CASE("an argument that fails to load part way: the task fails, the worker drops the rest of it and goes on") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::vector<std::string> warnings;  // a worker that lost its place would be replaced, with a warning
        auto w = test::on<PickyFlow>(e, 1, [&](std::string_view m) { warnings.emplace_back(m); });
        w.conf_activity("total", total);  // one worker: every task on the same ring
        const int n = 150000;             // 600 KB of arguments
        std::string expect = std::to_string(3L * n);
        CHECK(w.run(n) == "refused to load " + expect + " refused to load " + expect + " ");
        CHECK(warnings.empty());
    }
}

TEST_CASE("a result that writes other bytes than it counted ends its worker: the task is reported crashed") {
    test::NoLeaks no_leaks;
    auto w = test::on<FickleFlow>(flowy::Executor::processes, 1, quiet);
    w.conf_activity("t", make_fickle);
    CHECK_THROWS_AS(w.run(5000), flowy::WorkerCrashed);
    // in-process executors encode once: the result arrives
    auto s = test::on<FickleFlow>(flowy::Executor::synchronous, 1, quiet);
    s.conf_activity("t", make_fickle);
    CHECK(s.run(5000) >= 5000);
}

namespace {
/// Beats every 20 ms for `ms`, far longer than its heartbeat timeout: it must not be lost.
int beating(int ms) {
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < until) {
        if (!flowy::heartbeat()) return -1;
        std::this_thread::sleep_for(20ms);
    }
    return ms;
}
/// Beats, then goes silent for 900 ms (stuck), then beats again: counter[0] holds what
/// that late heartbeat() said (1 true, 2 false), and counter[1] is set if it got there.
int goes_silent(int x) {
    ++Shared::get().calls;
    flowy::heartbeat();
    std::this_thread::sleep_for(900ms);
    Shared::get().counter[1] = 1;
    Shared::get().counter[0] = flowy::heartbeat() ? 1 : 2;
    return x;
}
/// Its first attempt stops its own worker process (SIGSTOP: neither dead nor finished);
/// the second beats and finishes.
int stops_itself(int x) {
    if (Shared::get().calls++ == 0) raise(SIGSTOP);
    flowy::heartbeat();
    return x * 10;
}
}  // namespace

TEST_CASE("heartbeat_timeout: beating runs on past it; silence loses the attempt as timed out, on every executor") {
    test::NoLeaks no_leaks;
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        Shared::reset();
        auto w = test::on<OneTask>(e, 2, quiet);
        w.conf_activity("t", goes_silent, {.heartbeat_timeout = 300ms});
        w.conf_activity("other", beating, {.heartbeat_timeout = 300ms});
        auto seen = w.run();
        REQUIRE(seen.size() == 3);
        CHECK(seen[0] == "timed out: task t-0-0 (t(1), attempt 1 of 1) timed out: no heartbeat for 300 ms");
        CHECK(seen[2] == "3");  // other(1) + other(2): 1 ms and 2 ms of beating
        if (e == flowy::Executor::processes) {
            // its worker was stopped while silent: it never got to its late heartbeat
            CHECK(Shared::get().counter[1] == 0);
        } else {
            // a thread cannot be stopped: its late heartbeat() says the attempt is lost
            CHECK(Shared::get().counter[0] == 2);
        }
    }
    // An activity that beats runs as long as it likes.
    auto w = test::on<Single>(flowy::Executor::processes, 1, quiet);
    w.conf_activity("t", beating, {.heartbeat_timeout = 300ms});
    CHECK(w.run(1000) == 1000);
    // Outside an attempt (direct mode, a unit test) it has nothing to report.
    CHECK(flowy::heartbeat());
}

TEST_CASE("heartbeat_timeout catches a worker stopped with SIGSTOP: it is killed, the task retried elsewhere") {
    test::NoLeaks no_leaks;
    Shared::reset();
    test::Log log;
    std::string trace = "/tmp/flowy-test-stopped-worker-" + std::to_string(getpid()) + ".trace";
    struct Remove {
        const std::string& path;
        ~Remove() { std::remove(path.c_str()); }  // also when a check stops the test
    } remove{trace};
    auto w = test::on<Single>(flowy::Executor::processes, 2, quiet);
    w.log(log.sink()).trace(trace);
    w.conf_activity("t", stops_itself, {.retries = 1, .heartbeat_timeout = 200ms});
    CHECK(w.run(4) == 40);
    CHECK(Shared::get().calls == 2);
    CHECK(log.text.find("no heartbeat for 200 ms") != std::string::npos);
    CHECK(log.text.find("retrying as t-0-1") != std::string::npos);
    flowy::Trace t = flowy::Trace::load(trace);
    REQUIRE(t.tasks().size() == 1);
    CHECK(t.tasks()[0].attempts == 2);
    CHECK(t.tasks()[0].state == flowy::TraceTask::State::finished);
}

TEST_CASE("a heartbeat timeout that is not positive is a ConfigError") {
    auto w = test::on<Single>(flowy::Executor::synchronous, 1, quiet);
    w.conf_activity("t", quick, {.heartbeat_timeout = 0ms});
    CHECK_THROWS_WITH_AS(w.run(1), doctest::Contains("the heartbeat timeout must be positive"), flowy::ConfigError);
}

namespace {
int sleeps_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
/// Counts its calls (Shared::calls) and runs `ms`, failing at once if it is told to.
int counted_hang(int ms) {
    ++Shared::get().calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
/// Waits up to 150 ms to meet Shared::meet others inside it: records how many ran at once.
int meets(int x) {
    test::rendezvous(150ms);
    return x;
}
struct BehindSlow {
    Activity<int(int)> slow{"slow"};
    Activity<int(int)> t{"t"};
    std::vector<std::string> operator()() {
        auto s = slow(400);
        auto r = t(7);
        std::vector<std::string> seen;
        try {
            seen.push_back(std::to_string(r.get()));
        } catch (const flowy::TaskTimedout& e) {
            seen.push_back(e.what());
        }
        seen.push_back(std::to_string(s.get()));
        return seen;
    }
};
/// t(30000) (30 s) and, beside it, other(1) + other(2).
struct LongAndOther {
    Activity<int(int)> t{"t"};
    Activity<int(int)> other{"other"};
    std::vector<std::string> operator()() {
        auto r = t(30000);
        auto o = other(1);
        std::vector<std::string> seen;
        try {
            seen.push_back(std::to_string(r.get()));
        } catch (const flowy::TaskTimedout& e) {
            seen.push_back(e.what());
        }
        seen.push_back(std::to_string(o.get() + other(2).get()));
        return seen;
    }
};
struct Many {
    Activity<int(int)> t{"t"};
    int operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        int sum = 0;
        for (auto& r : rs) sum += r.get();
        return sum;
    }
};
}  // namespace

TEST_CASE("schedule_to_start: a task that waits past it for a worker ends as TaskTimedout and is not retried") {
    test::NoLeaks no_leaks;
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        Shared::reset();
        // One worker, busy with slow(400) for 400 ms: t(7) waits for it.
        auto w = test::on<BehindSlow>(e, 1, quiet);
        w.conf_activity("slow", sleeps_ms);
        w.conf_activity("t", counted_hang, {.retries = 3, .schedule_to_start = 100ms});
        auto t0 = Clock::now();
        auto seen = w.run();
        REQUIRE(seen.size() == 2);
        CHECK(seen[0] ==
              "task t-0-0 (t(7), attempt 1 of 4) timed out: schedule_to_start of 100 ms passed waiting for a worker");
        CHECK(seen[1] == "400");
        CHECK(Shared::get().calls == 0);  // it never ran, and was not retried
        CHECK(seconds_since(t0) < 2.0);
        // With room to start in time, it runs.
        auto w2 = test::on<BehindSlow>(e, 2, quiet);
        w2.conf_activity("slow", sleeps_ms);
        w2.conf_activity("t", counted_hang, {.schedule_to_start = 2000ms});
        CHECK(w2.run() == std::vector<std::string>{"7", "400"});
    }
}

TEST_CASE("schedule_to_close bounds all attempts and retry delays; the running attempt is stopped") {
    test::NoLeaks no_leaks;
    Shared::reset();
    // Each attempt times out after 200 ms and would be retried 10 times (over 2 s): the
    // task's 500 ms in all end it with its third attempt running.
    auto w = test::on<Single>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", counted_hang,
                    {.timeout = 200ms, .retries = 10, .retry_delay = 20ms, .schedule_to_close = 500ms});
    auto t0 = Clock::now();
    CHECK_THROWS_WITH_AS(w.run(30000), doctest::Contains("timed out: schedule_to_close of 500 ms passed"),
                         flowy::TaskTimedout);
    double took = seconds_since(t0);
    CHECK(took < 1.5);
    CHECK(Shared::get().calls >= 2);
    CHECK(Shared::get().calls <= 3);
    // A task with no timeout of its own is stopped at its schedule_to_close: its worker is
    // killed (NoLeaks finds no process left), the run goes on with the other task.
    Shared::reset();
    auto w2 = test::on<LongAndOther>(flowy::Executor::processes, 2, quiet);
    w2.conf_activity("t", counted_hang, {.schedule_to_close = 300ms});
    w2.conf_activity("other", quick);
    t0 = Clock::now();
    auto seen = w2.run();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] ==
          "task t-0-0 (t(30000), attempt 1 of 1) timed out: schedule_to_close of 300 ms passed before it "
          "ended (its attempt was stopped)");
    CHECK(seen[1] == "5");
    CHECK(seconds_since(t0) < 2.0);
}

TEST_CASE("execution_timeout ends the whole run: TaskTimedout, its running tasks stopped") {
    test::NoLeaks no_leaks;
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {
        CAPTURE(test::name(e));
        Shared::reset();
        auto w = test::on<Single>(e, 2, quiet);
        w.conf_activity("t", counted_hang).execution_timeout(300ms);
        auto t0 = Clock::now();
        CHECK_THROWS_WITH_AS(w.run(e == flowy::Executor::processes ? 30000 : 1000),
                             "flowy: the execution ran past its execution_timeout of 300 ms", flowy::TaskTimedout);
        CHECK(Shared::get().calls == 1);
        if (e == flowy::Executor::processes) CHECK(seconds_since(t0) < 2.0);  // a thread runs its task out
    }
    // In time, it changes nothing.
    auto w = test::on<Many>(flowy::Executor::processes, 2, quiet);
    w.conf_activity("t", quick).execution_timeout(10s);
    CHECK(w.run(10) == 55);
}

TEST_CASE("concurrency and max_in_flight cap how many tasks run at once") {
    test::NoLeaks no_leaks;
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {
        CAPTURE(test::name(e));
        // Without a cap, 4 workers run 4 at once (they meet).
        Shared::reset();
        Shared::get().meet = 4;
        auto free = test::on<Many>(e, 4, quiet);
        free.conf_activity("t", meets);
        CHECK(free.run(8) == 28);
        CHECK(Shared::get().max_running == 4);
        // concurrency = 2: never more than 2, and every task runs.
        Shared::reset();
        Shared::get().meet = 3;
        auto capped = test::on<Many>(e, 4, quiet);
        capped.conf_activity("t", meets, {.concurrency = 2});
        CHECK(capped.run(8) == 28);
        CHECK(Shared::get().max_running == 2);
        // max_in_flight(3): at most 3 handed out at once.
        Shared::reset();
        Shared::get().meet = 4;
        auto paced = test::on<Many>(e, 4, quiet);
        paced.conf_activity("t", meets).max_in_flight(3);
        CHECK(paced.run(8) == 28);
        CHECK(Shared::get().max_running == 3);
    }
}

TEST_CASE("schedule timeouts, concurrency, max_in_flight and execution_timeout refuse bad values") {
    auto check = [](auto configure, const char* message) {
        auto w = test::on<Single>(flowy::Executor::synchronous, 1, quiet);
        configure(w);
        CHECK_THROWS_WITH_AS(w.run(1), doctest::Contains(message), flowy::ConfigError);
    };
    check([](auto& w) { w.conf_activity("t", quick, {.schedule_to_start = 0ms}); },
          "schedule_to_start must be positive");
    check([](auto& w) { w.conf_activity("t", quick, {.schedule_to_close = -1ms}); },
          "schedule_to_close must be positive");
    check([](auto& w) { w.conf_activity("t", quick, {.concurrency = -1}); }, "concurrency must not be negative");
    check([](auto& w) { w.conf_activity("t", quick).max_in_flight(-2); }, "max_in_flight(-2): must not be negative");
    check([](auto& w) { w.conf_activity("t", quick).execution_timeout(0ms); }, "execution_timeout must be positive");
}

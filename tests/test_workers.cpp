// Worker processes: a worker that dies fails only its own task, is replaced, and
// a run leaves no process and no shared memory behind.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "common/clock.hpp"
#include "support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using flowy::Activity;
using flowy::Result;
using test::Shared;
using namespace std::chrono_literals;

namespace {

enum Death { segv = 1, abrt, exit3, sigkill };

int die(int how) {
    switch (how) {
        case segv:
            raise(SIGSEGV);
            break;
        case abrt:
            std::abort();
        case exit3:
            _exit(3);
        case sigkill:
            raise(SIGKILL);
            break;
        default:
            break;
    }
    return how;
}

struct OneCrash {
    Activity<int(int)> die{"die"};
    Activity<int(int)> ok{"ok"};
    std::vector<std::string> operator()(int how) {
        auto a = ok(1);
        auto crashed = die(how);
        auto b = ok(2);
        std::vector<std::string> seen;
        try {
            crashed.get();
            seen.push_back("no crash");
        } catch (const flowy::WorkerCrashed& e) {
            seen.push_back(e.what());
            seen.push_back(e.task());
        }
        auto after = ok(3);  // runs on the replacement
        seen.push_back(std::to_string(a.get() + b.get() + after.get()));
        return seen;
    }
};

}  // namespace

TEST_CASE("a worker dying of a signal or an exit fails its task only, naming the cause, and is replaced") {
    struct Case {
        int how;
        const char* says;
    } cases[] = {{segv, "signal 11 (SIGSEGV"},
                 {abrt, "signal 6 (SIGABRT"},
                 {exit3, "exited with code 3"},
                 {sigkill, "signal 9 (SIGKILL"}};
    for (auto c : cases) {
        CAPTURE(c.says);
        test::NoLeaks no_leaks;
        test::Log log;
        flowy::LocalWorkflow<OneCrash> w;
        w.workers(2).log(log.sink());
        w.conf_activity("die", die);
        w.conf_activity("ok", [](int x) { return x * 10; });
        auto seen = w.run(c.how);
        REQUIRE(seen.size() == 3);
        CHECK(seen[0].find(c.says) != std::string::npos);
        CHECK(seen[0].find("while running task die-0-0 (die(") != std::string::npos);
        CHECK(seen[1] == "die-0-0");
        CHECK(seen[2] == "60");
        CHECK(log.text.find("a new worker took its place") != std::string::npos);
    }
}

TEST_CASE("an uncaught crash fails the run with WorkerCrashed") {
    test::NoLeaks no_leaks;
    struct Flow {
        Activity<int(int)> die{"die"};
        Result<int> operator()() { return die(segv); }
    };
    flowy::LocalWorkflow<Flow> w;
    w.workers(1).log([](std::string_view) {});
    w.conf_activity("die", die);
    CHECK_THROWS_AS(w.run(), flowy::WorkerCrashed);
}

namespace {
int crash_some(int i) {
    if (i % 10 == 7) raise(SIGKILL);
    return i;
}
struct CrashingFanOut {
    Activity<int(int)> t{"t"};
    std::pair<long, int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        long sum = 0;
        int crashed = 0;
        for (int i = 0; i < n; ++i) {
            try {
                sum += rs[static_cast<std::size_t>(i)].get();
            } catch (const flowy::WorkerCrashed& e) {
                ++crashed;
                CHECK(e.task() == "t-" + std::to_string(i) + "-0");
            }
        }
        return {sum, crashed};
    }
};
}  // namespace

TEST_CASE("crashes among many queued tasks: every other task still runs exactly once") {
    test::NoLeaks no_leaks;
    flowy::LocalWorkflow<CrashingFanOut> w;
    w.workers(2).log([](std::string_view) {});
    w.conf_activity("t", crash_some);
    long expected = 0;
    for (int i = 0; i < 500; ++i)
        if (i % 10 != 7) expected += i;
    auto [sum, crashed] = w.run(500);
    CHECK(sum == expected);
    CHECK(crashed == 50);
}

namespace {
int spawn_grandchild(int) {
    if (fork() == 0) {
        sleep(30);  // outlives the task unless its process group is killed
        _exit(0);
    }
    return 1;
}
}  // namespace

TEST_CASE("processes an activity leaves running are stopped with its worker's process group") {
    // The grandchild inherits the write end of a pipe: EOF on the read end means it is gone.
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    {
        test::NoLeaks no_leaks;
        struct Flow {
            Activity<int(int)> t{"t"};
            Result<int> operator()() { return t(0); }
        };
        flowy::LocalWorkflow<Flow> w;
        w.workers(1);
        w.conf_activity("t", spawn_grandchild);
        CHECK(w.run() == 1);
    }
    close(fds[1]);
    pollfd p{fds[0], POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);  // the grandchild would hold it open for 30 s
    char c;
    CHECK(read(fds[0], &c, 1) == 0);
    close(fds[0]);
}

TEST_CASE("a failed run leaves no process and no shared memory behind") {
    test::NoLeaks no_leaks;
    struct Flow {
        Activity<int(int)> t{"t"};
        Activity<int(int)> slow{"slow"};
        Result<int> operator()() {
            slow(0);  // still running when the run fails
            return t(1);
        }
    };
    flowy::LocalWorkflow<Flow> w;
    w.workers(2);
    w.conf_activity("t", [](int) -> int { throw std::runtime_error("fails at once"); });
    w.conf_activity("slow", [](int x) {
        sleep(30);
        return x;
    });
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(w.run(), "fails at once", flowy::TaskError);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));  // the slow task was stopped
}

// ---- no task waits behind a busy worker ----

namespace {
using flowy::detail::monotonic_us;  // shared by the processes of one host
/// Sleeps `ms` milliseconds; returns when it ended.
std::int64_t work(int ms) {
    if (ms > 0) usleep(static_cast<useconds_t>(ms) * 1000);
    return monotonic_us();
}
std::int64_t sum_ends(std::vector<std::int64_t> v) {
    std::int64_t m = 0;
    for (auto x : v) m = std::max(m, x);
    return m;
}
std::int64_t step(std::int64_t after, int ms) {
    (void)after;
    return work(ms);
}

/// The reproduction of issue 13: a long task, then short ones that depend on nothing
/// it makes. On two workers the short ones belong on the other worker.
struct LongAndShort {
    Activity<std::int64_t(int)> big{"big"};
    Activity<std::int64_t(int)> small{"small"};
    Activity<std::int64_t(int)> tiny{"tiny"};
    Activity<std::int64_t(std::vector<std::int64_t>)> reduce{"reduce"};
    Activity<std::int64_t(std::int64_t, int)> chain{"chain"};
    std::vector<std::int64_t> operator()() {
        auto b = big(1500);
        small(50).get();
        std::vector<Result<std::int64_t>> rs;
        for (int i = 0; i < 200; ++i) rs.push_back(tiny(0));
        Result<std::int64_t> acc = reduce(rs);
        for (int i = 0; i < 30; ++i) acc = chain(acc, 10);
        return {b.get(), acc.get()};
    }
};

/// Known-short tasks, one of which turns out long: the ones queued behind it move.
struct OneTurnsLong {
    Activity<std::int64_t(int)> tiny{"tiny"};
    std::vector<std::int64_t> operator()(int n, int slow_at) {
        for (int i = 0; i < 50; ++i) tiny(0).get();  // now known to be short
        std::vector<Result<std::int64_t>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(tiny(i == slow_at ? 1000 : 0));
        std::vector<std::int64_t> ends;
        for (auto& r : rs) ends.push_back(r.get());
        return ends;
    }
};
}  // namespace

TEST_CASE("short tasks never wait behind a long one while another worker is free") {
    test::NoLeaks no_leaks;
    auto w = test::on<LongAndShort>(flowy::Executor::processes, 2);
    w.conf_activity("big", work).conf_activity("small", work).conf_activity("tiny", work);
    w.conf_activity("reduce", sum_ends).conf_activity("chain", step);
    auto t0 = monotonic_us();
    auto ends = w.run();
    // The chain (about 0.4 s of work after `small`) runs on the other worker while `big`
    // runs: it ends well before `big` does. Queued behind `big`, it ended after it.
    CHECK_MESSAGE(ends[1] < ends[0] - 500000, "chain ended ", (ends[1] - t0) / 1000, " ms in, big at ",
                  (ends[0] - t0) / 1000, " ms");
}

TEST_CASE("tasks queued behind a task that turns out long are taken back and run elsewhere") {
    test::NoLeaks no_leaks;
    auto w = test::on<OneTurnsLong>(flowy::Executor::processes, 2);
    w.conf_activity("tiny", work);
    const int n = 400, slow_at = 100;
    auto ends = w.run(n, slow_at);
    std::int64_t slow_end = ends[slow_at], others = 0;
    for (int i = 0; i < n; ++i)
        if (i != slow_at) others = std::max(others, ends[std::size_t(i)]);
    // Up to 15 requests were pipelined behind the slow one; they must not wait for it.
    CHECK_MESSAGE(others < slow_end - 500000, "the last short task ended ", (slow_end - others) / 1000,
                  " ms before the long one (it should be about 1000)");
}

namespace {
// An activity that closes every descriptor it did not open and opens a file of its own,
// which gets the lowest number (3): then writes a letter into it per task.
int closes_everything(int x) {
    static int fd = -1;
    if (fd < 0) {
        close_range(3, ~0U, 0);
        std::string path = "/tmp/flowy-test-user-file-" + std::to_string(getpid());
        fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    }
    [[maybe_unused]] ssize_t n = write(fd, "x", 1);
    std::this_thread::sleep_for(std::chrono::microseconds(x % 3 * 300));
    return x;
}
struct ManyOf {
    flowy::Activity<int(int)> t{"t"};
    flowy::Result<long> operator()(int n) {
        long total = 0;
        for (int i = 0; i < n; ++i) total += t(i).get();  // the scheduler sleeps between tasks
        return total;
    }
};
}  // namespace

TEST_CASE("an activity that closes flowy's descriptors and opens a file: no flowy byte in it, no result lost") {
    test::NoLeaks no_leaks;
    test::Log log;
    auto w = test::on<ManyOf>(flowy::Executor::processes, 2, log.sink());
    w.conf_activity("t", closes_everything);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(w.run(60) == 59 * 60 / 2);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));  // was 19 s of lost wake-ups
    CHECK(log.text.find("lost its wake-up pipe") != std::string::npos);
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator("/tmp")) {
        std::string name = e.path().filename().string();
        if (name.rfind("flowy-test-user-file-", 0) != 0) continue;
        std::ifstream f(e.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        CHECK_MESSAGE(bytes.find_first_not_of('x') == std::string::npos, name,
                      " holds other bytes than the activity's");
        ++files;
        std::filesystem::remove(e.path());
    }
    CHECK(files > 0);
}

namespace {
int sleepy(int ms) {
    Shared::get().counter[0] = getpid();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
struct OneNap {
    flowy::Activity<int(int)> t{"t"};
    flowy::Result<int> operator()(int ms) { return t(ms); }
};
}  // namespace

TEST_CASE("a worker stopped with SIGSTOP: a warning names it and how to go on; after SIGCONT the run ends right") {
    test::NoLeaks no_leaks;
    Shared::reset();
    test::Log log;
    auto w = test::on<OneNap>(flowy::Executor::processes, 1, log.sink());
    w.conf_activity("t", sleepy);
    std::thread stopper([] {
        auto until = std::chrono::steady_clock::now() + 10s;
        while (Shared::get().counter[0] == 0 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(1ms);
        pid_t pid = Shared::get().counter[0];
        kill(pid, SIGSTOP);
        std::this_thread::sleep_for(3500ms);  // the stop this test is about, not a wait for a result
        kill(pid, SIGCONT);
    });
    CHECK(w.run(200) == 200);
    stopper.join();
    std::string pid = std::to_string(Shared::get().counter[0].load());
    CHECK(log.text.find("worker process " + pid + " is stopped (SIGSTOP, or a debugger) with 1 task(s) in flight") !=
          std::string::npos);
    CHECK(log.text.find("kill -CONT " + pid) != std::string::npos);
}

namespace {
// Daemonises a `sleep 30` (fork, setsid, fork again, exec) and returns at once.
int daemonise(int) {
    pid_t first = fork();
    if (first == 0) {
        setsid();
        pid_t second = fork();
        if (second == 0) {
            Shared::get().counter[1] = getpid();
            execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
            _exit(127);
        }
        _exit(0);
    }
    waitpid(first, nullptr, 0);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (Shared::get().counter[1] == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    return 1;
}
}  // namespace

TEST_CASE("a process an activity daemonised is ended with the run, on every executor; the program's own are not") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;  // which also checks that the run left no child behind
        Shared::reset();
        auto w = test::on<OneNap>(e, 1);
        w.conf_activity("t", daemonise);
        CHECK(w.run(0) == 1);
        pid_t left = Shared::get().counter[1];
        REQUIRE(left > 0);
        CHECK_MESSAGE(kill(left, 0) != 0, "the daemonised sleep ", left, " outlived the run");
    }
    pid_t mine = fork();  // a child of the program's own, from before the run
    if (mine == 0) {
        execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        _exit(127);
    }
    Shared::reset();
    auto w = test::on<OneNap>(flowy::Executor::processes, 1);
    w.conf_activity("t", daemonise);
    CHECK(w.run(0) == 1);
    CHECK(kill(mine, 0) == 0);  // still running, and still ours to wait for
    kill(mine, SIGKILL);
    int status = 0;
    CHECK(waitpid(mine, &status, 0) == mine);
}

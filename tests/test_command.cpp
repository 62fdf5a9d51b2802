// Command activities: programs as workflow steps, with captured output, errors that
// say what happened, bounded capture, and timeouts that stop the whole process group.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"

#include <flowy/command.hpp>

#include <signal.h>

#include <fstream>
#include <string>

using namespace std::chrono_literals;
using flowy::Activity;
using flowy::Command;
using flowy::CommandResult;
using flowy::Result;

namespace {

struct One {
    Activity<CommandResult(Command)> sh{"sh"};
    Result<CommandResult> operator()(Command c) { return sh(c); }
};

template <class W>
flowy::LocalWorkflow<W> on(flowy::Executor e) {
    flowy::LocalWorkflow<W> w;
    w.executor(e).workers(2).log([](std::string_view) {});
    w.conf_activity("sh", flowy::run_command);
    return w;
}

}  // namespace

TEST_CASE("a command's output, exit code, input, directory and environment") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<One>(e);
        CommandResult r = w.run(flowy::command("echo", {"hello", "world"}));
        CHECK(r.exit_code == 0);
        CHECK(r.out == "hello world\n");
        CHECK(r.command == "echo hello world");
        CHECK(r.describe() == "echo: exit 0");

        Command cat = flowy::command("cat");
        cat.input = "from stdin\n";
        CHECK(w.run(cat).out == "from stdin\n");

        Command pwd = flowy::command("pwd");
        pwd.cwd = "/tmp";
        CHECK(w.run(pwd).out == "/tmp\n");

        Command env = flowy::shell("printf '%s' \"$FLOWY_TEST_VAR\"");
        env.env["FLOWY_TEST_VAR"] = "set by the command";
        CHECK(w.run(env).out == "set by the command");
    }
}

TEST_CASE("a non-zero exit is a TaskError with the command line, the code and the end of stderr") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<One>(e);
        try {
            w.run(flowy::shell("echo first >&2; echo 'last words' >&2; exit 3"));
            FAIL("no error");
        } catch (const flowy::TaskError& err) {
            std::string m = err.what();
            CHECK(m.find("/bin/sh -c 'echo first >&2; echo '\\''last words'\\'' >&2; exit 3'") != std::string::npos);
            CHECK(m.find("exited with code 3") != std::string::npos);
            CHECK(m.find("last words") != std::string::npos);
            CHECK(err.type() == "flowy::CommandFailed");
        }
        CHECK(flowy::CommandResult{"/bin/sh -c 'make -j2 test'", 2, {}, {}, 0, 0, 0}.describe() == "make: exit 2");
        Command expected = flowy::shell("exit 4");
        expected.expect_failure = true;
        CHECK(w.run(expected).exit_code == 4);
    }
}

TEST_CASE("a program that cannot be started is a TaskError saying why") {
    test::NoLeaks no_leaks;
    auto w = on<One>(flowy::Executor::processes);
    CHECK_THROWS_WITH_AS(w.run(flowy::command("no-such-program-flowy")), doctest::Contains("is not on PATH"),
                         flowy::TaskError);
    CHECK_THROWS_WITH_AS(w.run(flowy::command("/nonexistent/program")), doctest::Contains("cannot start"),
                         flowy::TaskError);
}

TEST_CASE("10 MiB on both streams: no deadlock, capture bounded to 1 MiB each, the cut is said") {
    test::NoLeaks no_leaks;
    auto w = on<One>(flowy::Executor::processes);
    CommandResult r =
        w.run(flowy::shell("head -c 10485760 /dev/zero | tr '\\0' o & "
                           "head -c 10485760 /dev/zero | tr '\\0' e >&2; wait"));
    CHECK(r.out_bytes == 10485760);
    CHECK(r.err_bytes == 10485760);
    CHECK(r.out.size() < CommandResult::output_limit + 200);
    CHECK(r.err.size() < CommandResult::output_limit + 200);
    CHECK(r.out.find("[... flowy cut 9437184 bytes of output here ...]") != std::string::npos);
}

TEST_CASE("a timeout kills the command and everything it started") {
    test::NoLeaks no_leaks;
    std::string pidfile = "/tmp/flowy-test-" + std::to_string(getpid()) + "-grandchild";
    flowy::LocalWorkflow<One> w;
    w.workers(1).log([](std::string_view) {});
    w.conf_activity("sh", flowy::run_command, {.timeout = 300ms});
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(w.run(flowy::shell("sleep 30 & echo $! > " + pidfile + "; sleep 30")), flowy::TaskTimedout);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    int pid = 0;
    std::ifstream(pidfile) >> pid;
    REQUIRE(pid > 0);
    bool gone = kill(pid, 0) != 0;
    if (!gone) {  // a zombie waiting for its reaper counts as gone
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string p, comm, state;
        gone = (stat >> p >> comm >> state) && state == "Z";
    }
    CHECK(gone);
    std::remove(pidfile.c_str());
}

TEST_CASE("the trace records the command line, the exit code and the output; the picture says exit N") {
    test::NoLeaks no_leaks;
    std::string path = "/tmp/flowy-test-" + std::to_string(getpid()) + "-cmd.jsonl";
    auto w = on<One>(flowy::Executor::processes);
    w.trace(path);
    w.run(flowy::command("echo", {"traced"}));
    auto t = flowy::Trace::load(path);
    REQUIRE(t.tasks().size() == 1);
    CHECK(t.tasks()[0].short_value == "echo: exit 0");
    auto r = flowy::detail::decode<CommandResult>(t.tasks()[0].value);
    CHECK(r.command == "echo traced");
    CHECK(r.out == "traced\n");
    CHECK(t.to_dot().find("echo: exit 0") != std::string::npos);
    std::remove(path.c_str());
}

namespace {
/// Writes to a pipe nobody reads: 1 when the write fails with EPIPE (SIGPIPE ignored).
int write_to_closed_pipe(int) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    close(fds[0]);
    ssize_t n = write(fds[1], "x", 1);
    int e = errno;
    close(fds[1]);
    return n < 0 && e == EPIPE ? 1 : 0;
}
struct PipeWriter {
    Activity<int(int)> write{"write"};
    Activity<CommandResult(Command)> sh{"sh"};  // configured by on<>(), unused
    Result<int> operator()(int x) { return write(x); }
};
}  // namespace

TEST_CASE("a program that ignores SIGPIPE: its activities keep that, its commands get the default back") {
    struct sigaction ignore {
    }, before{};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &before);
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<PipeWriter>(e);
        w.conf_activity("write", write_to_closed_pipe);
        CHECK(w.run(1) == 1);  // EPIPE, not "killed by signal 13"
        // `yes | head -1`: yes ends of SIGPIPE as usual, quietly
        auto one = on<One>(e);
        CommandResult r = one.run(flowy::shell("yes | head -n 1"));
        CHECK(r.exit_code == 0);
        CHECK(r.out == "y\n");
        CHECK(r.err == "");  // not "yes: standard output: Broken pipe"
    }
    sigaction(SIGPIPE, &before, nullptr);
}

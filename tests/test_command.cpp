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
        CHECK(r.describe() == "exit 0");
        CHECK(r.name == "echo hello world");

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
            // it leads with the step (the script's first line) and the exit code
            CHECK(m.rfind("echo first >&2; echo 'last words' >&2; exit 3: exit 3: `", 0) == 0);
            CHECK(m.find("last words") != std::string::npos);
            CHECK(err.type() == "flowy::CommandFailed");
        }
        CHECK(flowy::CommandResult{"/bin/sh -c 'make -j2 test'", 2, {}, {}, 0, 0, 0, "make -j2 test"}.describe() ==
              "exit 2");
        Command expected = flowy::shell("exit 4");
        expected.expect_failure = true;
        CHECK(w.run(expected).exit_code == 4);
    }
}

TEST_CASE("a failed command keeps its whole output: CommandFailed::result(), and the trace's failure") {
    Command many = flowy::shell("seq 1 40; echo 'to stderr' >&2; exit 5");
    try {
        flowy::run_command(many);
        FAIL("no error");
    } catch (const flowy::CommandFailed& f) {
        REQUIRE(f.result() != nullptr);
        CHECK(f.result()->exit_code == 5);
        CHECK(f.result()->out.rfind("1\n2\n3\n", 0) == 0);  // beyond the message's tail
        CHECK(std::string(f.what()).find("\n3\n") == std::string::npos);
        CHECK(f.result()->err == "to stderr\n");
    }
    CHECK(flowy::CommandFailed("no result").result() == nullptr);
    std::string dir = test::temp_dir("command-failed-trace");
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<One>(e);
        std::string path = dir + "/" + test::name(e) + ".trace";
        w.trace(path);
        CHECK_THROWS_AS(w.run(many), flowy::TaskError);
        auto trace = flowy::Trace::load(path);
        REQUIRE(trace.tasks().size() == 1);
        const flowy::TraceTask& t = trace.tasks()[0];
        CHECK(t.state == flowy::TraceTask::State::failed);
        REQUIRE(!t.detail.empty());
        auto r = flowy::detail::decode<CommandResult>(t.detail);
        CHECK(r.exit_code == 5);
        CHECK(r.out.size() == 111);  // "1\n" ... "40\n"
        CHECK(r.err == "to stderr\n");
    }
    test::remove_all(dir);
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

TEST_CASE("the trace records the command line, its name, the exit code and the output; the picture says exit N") {
    test::NoLeaks no_leaks;
    std::string path = "/tmp/flowy-test-" + std::to_string(getpid()) + "-cmd.trace";
    auto w = on<One>(flowy::Executor::processes);
    w.trace(path);
    w.run(flowy::command("echo", {"traced"}));
    auto t = flowy::Trace::load(path);
    REQUIRE(t.tasks().size() == 1);
    CHECK(t.tasks()[0].short_value == "exit 0");
    CHECK(t.tasks()[0].name == "echo traced");
    auto r = flowy::detail::decode<CommandResult>(t.tasks()[0].value);
    CHECK(r.command == "echo traced");
    CHECK(r.out == "traced\n");
    CHECK(t.to_dot().find("echo traced") != std::string::npos);
    CHECK(t.to_dot().find("= exit 0") != std::string::npos);
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

// ---- named steps and ordering without data (CI pipelines) ----

namespace {

// `after` without values: `check` must not run before `make` wrote its file.
struct Ordered {
    Activity<CommandResult(Command)> sh{"sh"};
    Activity<int(int)> twice{"twice"};
    Activity<void(std::string)> note{"note"};
    std::string dir;

    std::vector<std::string> operator()(std::string where, bool fail_first) {
        auto made = sh(flowy::shell("sleep 0.2; " + std::string(fail_first ? "exit 7" : "touch " + where + "/made"))
                           .named("make"));
        Result<void> noted = note.after(made)(where);  // a void activity after a command
        std::vector<Result<int>> numbers{twice(1), twice(2)};
        auto check = sh.named("check").after(made, numbers, noted)(flowy::shell("test -f " + where + "/made"));
        auto last = twice.after(check)(21);  // a plain activity after a command, named by nothing
        std::vector<std::string> seen;
        for (auto* r : {&made, &check}) try {
                seen.push_back(r->get().describe());
            } catch (const flowy::TaskError& e) {
                seen.push_back(e.task() + ": " + e.what());
            }
        try {
            seen.push_back(std::to_string(last.get()));
        } catch (const flowy::TaskError& e) {
            seen.push_back(e.task() + ": " + e.what());
        }
        return seen;
    }
};

template <class W>
flowy::LocalWorkflow<W> ordered_on(flowy::Executor e, const std::string& trace = {}) {
    flowy::LocalWorkflow<W> w;
    w.executor(e).workers(4).log([](std::string_view) {});
    if (!trace.empty()) w.trace(trace);
    w.conf_activity("sh", flowy::run_command);
    w.conf_activity("twice", [](int x) { return 2 * x; });
    w.conf_activity("note", [](std::string) {});
    return w;
}

}  // namespace

TEST_CASE("after(...): a step runs once the given results finished, without their values; a failure skips it") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::string dir = test::temp_dir("after");
        std::string trace = dir + "/run.trace";
        auto w = ordered_on<Ordered>(e, trace);
        // 4 workers: without the edge, `check` would start at once and find no file
        CHECK(w.run(dir, false) == std::vector<std::string>{"exit 0", "exit 0", "42"});
        auto t = flowy::Trace::load(trace);
        const flowy::TraceTask* check = nullptr;
        for (const auto& task : t.tasks())
            if (task.name == "check") check = &task;
        REQUIRE(check != nullptr);
        CHECK(check->args.empty());
        CHECK(check->after == std::vector<std::string>{"sh-0-0", "twice-0-0", "twice-1-0", "note-0-0"});
        CHECK(t.tasks()[0].name == "make");
        // drawn as its own kind of edge, and counted on the critical path
        CHECK(t.to_dot().find("ran after (no value)") != std::string::npos);
        std::vector<std::string> path;
        for (const auto* p : t.critical_path()) path.push_back(p->id);
        // make (0.2 s) leads, through check, to the last call (note, if it took any time, between)
        REQUIRE(path.size() >= 3);
        CHECK(path.front() == "sh-0-0");
        CHECK(path[path.size() - 2] == "sh-1-0");
        CHECK(path.back() == "twice-2-0");

        auto failing = ordered_on<Ordered>(e);
        auto seen = failing.run(dir + "/none", true);
        REQUIRE(seen.size() == 3);
        CHECK(seen[0].rfind("sh-0-0: make: exit 7: `/bin/sh -c", 0) == 0);
        CHECK(seen[1].rfind("sh-0-0: make: exit 7", 0) == 0);  // skipped: the error of the step it waited for
        CHECK(seen[2].rfind("sh-0-0: make: exit 7", 0) == 0);
        test::remove_all(dir);
    }
}

TEST_CASE("after(...) in direct mode (no engine): waits for nothing, and a failed result skips the call") {
    struct Direct {
        Activity<int(int)> inc = [](int x) { return x + 1; };
        Activity<int(int)> boom = [](int) -> int { throw std::runtime_error("boom"); };
        std::pair<int, std::string> operator()() {
            auto a = inc(1);
            auto b = inc.after(a)(10);
            auto bad = boom(0);
            auto c = inc.named("never").after(b, bad)(100);
            std::string why;
            try {
                c.get();
            } catch (const flowy::TaskError& e) {
                why = e.what();
            }
            return {b.get(), why};
        }
    };
    Direct d;
    auto [b, why] = d();
    CHECK(b == 11);
    CHECK(why == "boom");
}

TEST_CASE("a named step's failure, timeout and crash lead with its name; an unnamed one's say its arguments") {
    struct Steps {
        Activity<int(int)> fail{"fail"};
        Activity<CommandResult(Command)> sh{"sh"};
        Activity<int(int, std::string)> hang{"hang"};
        std::vector<std::string> operator()() {
            std::vector<std::string> out;
            auto keep = [&](auto r) {
                try {
                    r.get();
                    out.push_back("ok");
                } catch (const flowy::TaskError& e) {
                    out.push_back(e.what());
                }
            };
            keep(fail.named("unit tests")(1));
            keep(sh(flowy::shell("sleep 0.4").named("integration")));  // threads: late, then timed out
            keep(sh(flowy::command("sleep", {"0.3", "0.1"})));
            keep(hang(7, "text"));
            return out;
        }
    };
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        flowy::LocalWorkflow<Steps> w;
        w.executor(e).workers(4).log([](std::string_view) {});
        w.conf_activity("fail", [](int) -> int { throw std::runtime_error("2 of 9 failed"); });
        w.conf_activity("sh", flowy::run_command, {.timeout = 200ms, .retries = 1});
        w.conf_activity("hang",
                        [](int, std::string) {
                            std::this_thread::sleep_for(400ms);
                            return 0;
                        },
                        {.timeout = 100ms});
        auto seen = w.run();
        REQUIRE(seen.size() == 4);
        CHECK(seen[0] == "unit tests: 2 of 9 failed");
        CHECK(seen[1] == "\"integration\" (task sh-0-1, attempt 2 of 2) timed out after 200 ms");
        CHECK(seen[2] == "\"sleep 0.3 0.1\" (task sh-1-1, attempt 2 of 2) timed out after 200 ms");
        CHECK(seen[3] == "task hang-0-0 (hang(7, \"text\"), attempt 1 of 1) timed out after 100 ms");
    }
}

TEST_CASE("a Command's step name: its own, or the program and first arguments, or a script's first line") {
    CHECK(flowy::command("/usr/bin/ctest", {"-j2", "--output-on-failure"}).step_name() ==
          "ctest -j2 --output-on-failure");
    CHECK(flowy::shell("make test\necho done").step_name() == "make test");
    CHECK(flowy::shell("make test").named("unit tests").step_name() == "unit tests");
    CHECK(flowy::command("echo", {"two words"}).step_name() == "echo 'two words'");
    std::string cyrillic = flowy::shell(std::string(40, 'a') + "ЖЖЖЖЖЖЖЖ").step_name();
    CHECK(cyrillic.size() <= 48);
    CHECK(cyrillic == std::string(40, 'a') + "ЖЖ...");  // cut between characters, never inside one
    const Command base = flowy::command("true");
    Command copy = base.named("copy");
    CHECK(base.name.empty());
    CHECK(copy.step_name() == "copy");
}

TEST_CASE("a command gets its three standard streams and no other descriptor of the worker's") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<One>(e);
        // the shell lists its own descriptors: 0, 1 and 2, nothing of the worker's rings,
        // wake-up descriptors or trace (nor the test's)
        CommandResult r = w.run(flowy::shell("ls /proc/$$/fd"));
        CHECK(r.out == "0\n1\n2\n");
    }
}

TEST_CASE("input larger than a pipe holds, a program that reads none of it, and a missing directory") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = on<One>(e);
        Command count = flowy::shell("wc -c");
        count.input = std::string(3 << 20, 'x');  // 3 MiB: written as the program reads it
        CHECK(w.run(count).out == std::to_string(3 << 20) + "\n");
        Command deaf = flowy::command("true");
        deaf.input = std::string(3 << 20, 'y');  // it exits without reading: EPIPE, not SIGPIPE
        CHECK(w.run(deaf).exit_code == 0);
        CHECK(w.run(flowy::command("echo", {"still", "here"})).out == "still here\n");
        Command lost = flowy::command("pwd");
        lost.cwd = "/nonexistent/flowy-dir";
        CHECK_THROWS_WITH_AS(
            w.run(lost),
            "pwd: cannot start `pwd`: its working directory /nonexistent/flowy-dir: No such file or directory",
            flowy::TaskError);
    }
}

TEST_CASE("a program that never uses the PostgreSQL engine does not load libpq") {
    auto w = on<One>(flowy::Executor::processes);
    w.run(flowy::command("true"));
    std::ifstream maps("/proc/self/maps");
    std::string line;
    bool libpq = false;
    while (std::getline(maps, line)) libpq = libpq || line.find("libpq.so") != std::string::npos;
    CHECK_FALSE(libpq);
}

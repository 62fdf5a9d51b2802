// Traces (SEMANTICS.md rows 7, 21-23, 25): what a run records, reading traces back
// (and refusing bad ones), the picture, and resume after a kill or a fixed failure.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"
#include "trace/writer.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using flowy::Activity;
using flowy::Result;
using flowy::TraceTask;
using test::Shared;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string temp_path(const std::string& name) {
    return "/tmp/flowy-test-" + std::to_string(getpid()) + "-" + name;
}

const TraceTask* find(const flowy::Trace& t, const std::string& id) {
    for (const auto& x : t.tasks())
        if (x.id == id) return &x;
    return nullptr;
}

int square(int n) {
    return n * n;
}
/// Sleeps `ms` milliseconds, returns them: a task of a given length.
int nap(int ms) {
    if (ms > 0) usleep(static_cast<useconds_t>(ms) * 1000);
    return ms;
}
int sum(int a, int b) {
    return a + b;
}

}  // namespace

TEST_CASE("the picture: DOT of the recorded seed, failing, child, restart and folded runs") {
    for (const char* name : {"seed", "failing", "child", "restart", "large"}) {
        CAPTURE(name);
        std::string dir = FLOWY_TEST_DATA;
        auto trace = flowy::Trace::load(dir + "/" + name + ".jsonl");
        CHECK(trace.to_dot() == slurp(dir + "/" + name + ".dot"));
    }
}

TEST_CASE("a program draws picture after picture: each is whole, and Graphviz reads no freed memory") {
    // Graphviz's pango plugin kept a font name owned by the previous Graphviz context:
    // the second picture read freed memory (found by AddressSanitizer).
    auto trace = flowy::Trace::load(std::string(FLOWY_TEST_DATA) + "/child.jsonl");
    std::string first = trace.to_svg();
    CHECK(first.find("</svg>") != std::string::npos);
    for (int i = 0; i < 3; ++i) CHECK(trace.to_svg() == first);
    CHECK(trace.report_html().find(first.substr(first.find("<svg"), 200)) != std::string::npos);
}

TEST_CASE("the folded picture: 1,000 sibling tasks are one node, the graph stays small") {
    auto trace = flowy::Trace::load(std::string(FLOWY_TEST_DATA) + "/large.jsonl");
    REQUIRE(trace.tasks().size() == 1001);
    std::string dot = trace.to_dot();
    CHECK(dot.find("square x 1000") != std::string::npos);
    CHECK(std::count(dot.begin(), dot.end(), '\n') < 150);
    std::string svg = temp_path("large.svg");
    trace.write_svg(svg);
    CHECK(slurp(svg).find("<svg") != std::string::npos);
    std::remove(svg.c_str());
}

namespace {
struct ChainOf {
    Activity<int(int, int)> sum{"sum"};
    Result<int> operator()(int n) {
        Result<int> acc = sum(0, 1);
        for (int i = 1; i < n; ++i) acc = sum(acc, 1);
        return acc;
    }
};
struct Tree {
    Activity<int(int)> square{"square"};
    Activity<int(int, int)> sum{"sum"};
    Result<int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(square(i % 10));
        return flowy::parallel_reduce(sum, rs);
    }
};
std::size_t nodes_in(const std::string& dot) {  // task nodes: their labels name a call "#"
    std::size_t n = 0;
    for (std::size_t at = dot.find("label=\""); at != std::string::npos; at = dot.find("label=\"", at + 1))
        if (dot.compare(at + 7, 6, "legend") != 0 && dot.find('#', at) < dot.find('"', at + 7)) ++n;
    return n;
}
}  // namespace

TEST_CASE("the folding rule: long chains keep their ends, wide levels fold, small runs stay whole") {
    std::string path = temp_path("fold.trace");
    SUBCASE("a chain of 1,000: its first and last task, and one node for the 998 between") {
        std::remove(path.c_str());
        auto w = test::on<ChainOf>(flowy::Executor::synchronous, 1);
        w.conf_activity("sum", sum).trace(path);
        CHECK(w.run(1000) == 1000);
        std::string dot = flowy::Trace::load(path).to_dot();
        CHECK(dot.find("sum x 998, a chain") != std::string::npos);
        CHECK(dot.find("sum #0\n") != std::string::npos);
        CHECK(dot.find("sum #999\n") != std::string::npos);
        CHECK(nodes_in(dot) == 3);
    }
    SUBCASE("a chain of 12 is drawn whole") {
        std::remove(path.c_str());
        auto w = test::on<ChainOf>(flowy::Executor::synchronous, 1);
        w.conf_activity("sum", sum).trace(path);
        w.run(12);
        std::string dot = flowy::Trace::load(path).to_dot();
        CHECK(dot.find(" x ") == std::string::npos);
        CHECK(nodes_in(dot) == 12);
    }
    SUBCASE("a reduce of 200 (a tree): no level wider than 12 nodes, the tree's top drawn task by task") {
        std::remove(path.c_str());
        auto w = test::on<Tree>(flowy::Executor::processes, 2);
        w.conf_activity("square", square).conf_activity("sum", sum).trace(path);
        CHECK(w.run(200) == 200 / 10 * 285);
        std::string dot = flowy::Trace::load(path).to_dot();
        CHECK(dot.find("square x 200") != std::string::npos);
        CHECK(dot.find("sum #198\n") != std::string::npos);  // the last merge, with its value
        CHECK(nodes_in(dot) < 60);
    }
    std::remove(path.c_str());
}

TEST_CASE("a run records its events: tasks, arguments, values, the result; on every executor") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::string path = temp_path("seed.trace");
        flowy::LocalWorkflow<test::Seed> w;
        w.executor(e).workers(2).trace(path);
        w.conf_activity("square", square).conf_activity("sum", sum);
        CHECK(w.run(2, 10) == 104);
        auto t = flowy::Trace::load(path);
        REQUIRE(t.runs().size() == 1);
        CHECK(t.runs()[0].outcome == flowy::TraceRun::Outcome::finished);
        CHECK(t.runs()[0].short_value == "104");
        CHECK(t.runs()[0].from == "sum-0-0");
        CHECK(t.runs()[0].workflow == "test::Seed");
        REQUIRE(t.tasks().size() == 3);
        const TraceTask* s = find(t, "sum-0-0");
        REQUIRE(s);
        CHECK(s->args == std::vector<std::string>{"square-0-0", "square-1-0"});
        CHECK(s->state == TraceTask::State::finished);
        CHECK(s->short_value == "104");
        CHECK(find(t, "square-1-0")->short_value == "100");
        CHECK(t.warnings().empty());
        std::remove(path.c_str());
    }
}

namespace {
int boom(int) {
    throw std::runtime_error("boom");
}
struct Ignores {
    Activity<int(int)> t{"t"};
    Activity<int(int)> ok{"ok"};
    Result<int> operator()() {
        t(1);
        auto a = ok(2);
        a.get();
        return ok(a);  // reads a, then passes it: an argument edge, no extra control edge
    }
};
}  // namespace

TEST_CASE("an ignored failure is in the trace, and failures, reads and skips are recorded") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("ignored.trace");
    flowy::LocalWorkflow<Ignores> w;
    w.workers(2).trace(path).log([](std::string_view) {});
    w.conf_activity("t", boom).conf_activity("ok", square);
    CHECK(w.run() == 16);
    auto t = flowy::Trace::load(path);
    CHECK(t.ignored() == std::vector<std::string>{"t-0-0"});
    CHECK(find(t, "t-0-0")->state == TraceTask::State::failed);
    CHECK(find(t, "t-0-0")->message == "boom");
    CHECK(find(t, "ok-1-0")->reads == std::vector<std::string>{"ok-0-0"});
    std::remove(path.c_str());

    auto failing = flowy::Trace::load(std::string(FLOWY_TEST_DATA) + "/failing.jsonl");
    CHECK(find(failing, "sum-0-0")->state == TraceTask::State::skipped);
    CHECK(find(failing, "sum-0-0")->because == "check-0-0");
    CHECK(find(failing, "check-0-0")->reads == std::vector<std::string>{"square-0-0"});
    CHECK(failing.runs()[0].outcome == flowy::TraceRun::Outcome::failed);
}

namespace {
/// Returns a value computed from results it read after its last call (one of them retried).
struct ComputesItsValue {
    Activity<int(int)> sq{"sq"};
    Activity<int(int)> flaky{"flaky"};
    int operator()() {
        auto a = sq(2), b = sq(3);
        auto c = flaky(4);
        int early = a.get();  // read before the last call: that call's control edge
        auto d = sq(early);
        return b.get() + c.get() + d.get();
    }
};
int flaky_calls = 0;  // reset before each run; a forked worker starts with the parent's
int fails_once(int n) {
    if (flaky_calls++ == 0) throw std::runtime_error("first time");
    return n;
}
}  // namespace

TEST_CASE("a value computed from the results read after the last call: recorded, drawn into the result") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::string path = temp_path("computed.trace");
        flowy::LocalWorkflow<ComputesItsValue> w;
        w.executor(e).workers(1).trace(path).log([](std::string_view) {});
        w.conf_activity("sq", square).conf_activity("flaky", fails_once, {.retries = 1, .retry_on_error = true});
        flaky_calls = 0;
        CHECK(w.run() == 9 + 4 + 16);
        auto t = flowy::Trace::load(path);
        REQUIRE(t.runs().size() == 1);
        CHECK(t.runs()[0].from.empty());
        CHECK(t.runs()[0].reads == std::vector<std::string>{"sq-1-0", "flaky-0-1", "sq-2-0"});
        std::string dot = t.to_dot();
        for (const char* from : {"\"sq-1-0\" -> result", "\"flaky-0-0\" -> result", "\"sq-2-0\" -> result"})
            CHECK_MESSAGE(dot.find(from) != std::string::npos, from);
        CHECK(dot.find("\"sq-0-0\" -> result") == std::string::npos);  // read before a call: not the value's
        CHECK(dot.find("input -> result") == std::string::npos);
        std::remove(path.c_str());
    }
}

namespace {
struct BigTrace {
    Activity<std::string(std::size_t, int)> make{"make"};
    std::size_t operator()() {
        std::vector<Result<std::string>> all;
        for (int i = 0; i < 2000; ++i) all.push_back(make(4096 + std::size_t(i), i));
        all.push_back(make(std::size_t(9) << 20, 25));  // one line longer than the reader's chunk
        std::size_t total = 0;
        for (auto& r : all) total += r.get().size();
        return total;
    }
};
std::string text_of(std::size_t n, int i) {
    return std::string(n, char('a' + i % 26));
}
}  // namespace

TEST_CASE("a trace larger than the reader's chunks loads as its whole text parses: lines across chunks, a long line") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("big.jsonl");
    flowy::LocalWorkflow<BigTrace> w;
    w.workers(2).trace(path).log([](std::string_view) {});
    w.conf_activity("make", text_of);
    std::size_t expected = 2000 * 4096 + 1999 * 2000 / 2 + (std::size_t(9) << 20);
    CHECK(w.run() == expected);
    std::string text = slurp(path);
    CHECK(text.size() > (std::size_t(20) << 20));
    auto loaded = flowy::Trace::load(path);
    auto parsed = flowy::Trace::parse(text, path);
    REQUIRE(loaded.tasks().size() == 2001);
    REQUIRE(parsed.tasks().size() == 2001);
    for (std::size_t i = 0; i < loaded.tasks().size(); ++i) {
        CAPTURE(i);
        CHECK(loaded.tasks()[i].id == parsed.tasks()[i].id);
        CHECK(loaded.tasks()[i].state == TraceTask::State::finished);
        CHECK(loaded.tasks()[i].value == parsed.tasks()[i].value);
    }
    CHECK(loaded.runs().back().short_value == std::to_string(expected));
    CHECK(loaded.warnings().empty());
    // torn in the middle of its long line: the same warning as a whole text gives
    text.resize(text.size() - (std::size_t(5) << 20));
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << text << std::string(std::size_t(3) << 20, '\0');  // and the zeros a killed run leaves
    }
    auto torn = flowy::Trace::load(path);
    auto torn_whole = flowy::Trace::parse(slurp(path), path);
    CHECK(torn.tasks().size() == 2001);
    CHECK(torn.warnings() == torn_whole.warnings());
    CHECK(std::any_of(torn.warnings().begin(), torn.warnings().end(),
                      [](const std::string& m) { return m.find("the last line is incomplete") != std::string::npos; }));
    CHECK(torn.runs().back().outcome == torn_whole.runs().back().outcome);
    std::remove(path.c_str());
}

TEST_CASE("a corrupt trace is refused with the line and the reason") {
    std::string ok = slurp(std::string(FLOWY_TEST_DATA) + "/seed.jsonl");
    std::string first = ok.substr(0, ok.find('\n') + 1);
    std::string second = ok.substr(first.size(), ok.find('\n', first.size()) + 1 - first.size());
    struct Case {
        std::string text;
        std::size_t line;
        const char* says;
    } cases[] = {
        {first + "{\"t\": 1, \"event\": \n", 2, "bad JSON"},
        {first + "[1, 2]\n", 2, "not a JSON object"},
        {"{\"t\":1,\"event\":\"run_started\",\"version\":99}\n", 1, "unknown trace format version 99"},
        {first + "{\"t\":99999999999,\"event\":\"task_scheduled\",\"id\":\"a-0-0\"}\n", 2,
         "missing field \"activity\""},
        {first + "{\"t\":1,\"event\":\"task_finished\",\"id\":\"x-0-0\",\"value\":\"\",\"short\":\"\"}\n", 2,
         "events out of order"},
        {first + "{\"t\":99999999999,\"event\":\"task_finished\",\"id\":\"x-0-0\",\"value\":\"\",\"short\":\"\"}\n", 2,
         "task x-0-0 was not scheduled"},
        {first + second + "{\"t\":99999999999,\"event\":\"mystery\"}\n", 3, "unknown event \"mystery\""},
        {"{\"t\":1,\"event\":\"task_scheduled\"}\n", 1, "an event before run_started"},
        {first + "{\"t\":99999999999,\"event\":\"task_scheduled\",\"id\":\"a-0-1\",\"activity\":\"a\",\"call\":0,"
                 "\"frame\":\"\",\"args\":[],\"reads\":[]}\n",
         2, "bad task id a-0-1 (a task is scheduled as its attempt 0)"},
        {"\n\n", 1, "empty line"},
        {"", 0, "no run in the trace"},
        {first + std::string(100, '[') + "\n", 2, "nested too deeply"},
        // a line that is one huge array of tiny values: refused before it costs gigabytes
        {first + second + "[" +
             [] {
                 std::string xs;
                 for (int i = 0; i < 1000000; ++i) xs += "1,";
                 return xs;
             }() +
             "1]\n",
         3, "too many values for its length"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text.substr(0, 120));
        try {
            flowy::Trace::parse(c.text, "bad.jsonl");
            FAIL("accepted");
        } catch (const flowy::TraceError& e) {
            CHECK(e.line() == c.line);
            CHECK(std::string(e.what()).find(c.says) != std::string::npos);
            CHECK(std::string(e.what()).find("bad.jsonl") == 0);
        }
    }
}

TEST_CASE("tasks are found by any attempt's id; a call number far past the others costs no table of its size") {
    std::string ok = slurp(std::string(FLOWY_TEST_DATA) + "/seed.jsonl");
    std::string first = ok.substr(0, ok.find('\n') + 1);
    auto scheduled = [](const std::string& id, const std::string& args) {
        return "{\"t\":99999999990,\"event\":\"task_scheduled\",\"id\":\"" + id +
               "\",\"activity\":\"a\",\"call\":0,\"frame\":\"\",\"args\":" + args + ",\"reads\":[]}\n";
    };
    std::string text = first + scheduled("a-0-0", "[]") + scheduled("a-4000000000-0", "[]") +
                       scheduled("b-0-0", "[\"a-4000000000-0\",\"a-0-0\"]") +
                       "{\"t\":99999999991,\"event\":\"task_retried\",\"id\":\"a-4000000000-0\",\"next\":\"a-"
                       "4000000000-1\"}\n"
                       "{\"t\":99999999992,\"event\":\"task_skipped\",\"id\":\"b-0-0\",\"input\":\"a-4000000000-1\","
                       "\"message\":\"m\"}\n";
    // In a child with 2 GB of address space: a table indexed by that call would need 32 GB.
    std::fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer reserves terabytes of address space for itself
        rlimit as{rlim_t(2) << 30, rlim_t(2) << 30};
        setrlimit(RLIMIT_AS, &as);
#endif
        try {
            flowy::Trace t = flowy::Trace::parse(text, "ids.jsonl");
            bool right = t.tasks().size() == 3 && t.tasks()[1].last_id == "a-4000000000-1" &&
                         t.tasks()[2].state == flowy::TraceTask::State::skipped;
            _exit(right ? 0 : 1);
        } catch (...) {
            _exit(2);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a torn last line (a killed run) is dropped with a warning; trailing zeros are ignored") {
    std::string ok = slurp(std::string(FLOWY_TEST_DATA) + "/seed.jsonl");
    auto torn = flowy::Trace::parse(ok + "{\"t\":99999999999,\"event\":\"task_fin", "torn.jsonl");
    CHECK(torn.tasks().size() == 3);
    REQUIRE(torn.warnings().size() == 1);
    CHECK(torn.warnings()[0].find("incomplete") != std::string::npos);
    auto zeros = flowy::Trace::parse(ok + std::string(4096, '\0'), "zeros.jsonl");
    CHECK(zeros.warnings().empty());
    CHECK(zeros.tasks().size() == 3);
}

TEST_CASE("a trace that cannot be written is reported once and the run goes on") {
    for (const char* path : {"/nonexistent-dir/x.jsonl", "/dev/full"}) {
        CAPTURE(path);
        test::NoLeaks no_leaks;
        test::Log log;
        flowy::LocalWorkflow<test::Seed> w;
        w.workers(2).trace(path).log(log.sink());
        w.conf_activity("square", square).conf_activity("sum", sum);
        CHECK(w.run(2, 10) == 104);
        CHECK(std::count(log.text.begin(), log.text.end(), '\n') == 1);
        CHECK(log.text.find("tracing stopped, the run goes on") != std::string::npos);
    }
}

namespace {
struct Naps {  // n tasks of `ms` each, each traced as it ends
    Activity<int(int)> nap{"nap"};
    Result<int> operator()(int n, int ms) {
        Result<int> total = 0;
        for (int i = 0; i < n; ++i) total = nap(ms).get() + total.get();
        return total;
    }
};
}  // namespace

TEST_CASE("one trace, two runs: the second is not traced and names the process writing it") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("locked.trace");
    std::remove(path.c_str());
    std::fflush(nullptr);
    pid_t first = fork();
    if (first == 0) {
        auto w = test::on<Naps>(flowy::Executor::processes, 1);
        w.conf_activity("nap", nap).trace(path);
        _exit(w.run(40, 10) == 400 ? 0 : 1);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (test::finished_in(path, nullptr) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    test::Log log;
    auto w = test::on<Naps>(flowy::Executor::processes, 1, log.sink());
    w.conf_activity("nap", nap).trace(path);
    CHECK(w.run(3, 1) == 3);
    CHECK(log.text.find("another run (process " + std::to_string(first) + ") is writing it") != std::string::npos);
    CHECK(std::count(log.text.begin(), log.text.end(), '\n') == 1);
    int status = 0;
    REQUIRE(waitpid(first, &status, 0) == first);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    auto t = flowy::Trace::load(path);  // the first run's trace, whole
    REQUIRE(t.runs().size() == 1);
    CHECK(t.runs()[0].outcome == flowy::TraceRun::Outcome::finished);
    CHECK(t.tasks().size() == 40);
    std::remove(path.c_str());
}

TEST_CASE("a trace cut short under a running scheduler: one warning, the run and its result survive") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::string path = temp_path("cut.trace");
        std::remove(path.c_str());
        test::Log log;
        auto w = test::on<Naps>(e, 1, log.sink());
        w.conf_activity("nap", nap).trace(path);
        std::fflush(nullptr);
        pid_t cutter = fork();  // another process, as `truncate -s 0` or a careless log rotation
        if (cutter == 0) {
            auto until = std::chrono::steady_clock::now() + 10s;
            while (test::finished_in(path, nullptr) == 0 && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(1ms);
            _exit(truncate(path.c_str(), 0) == 0 ? 0 : 1);
        }
        CHECK(w.run(30, 5) == 150);
        int status = 0;
        REQUIRE(waitpid(cutter, &status, 0) == cutter);
        CHECK(WEXITSTATUS(status) == 0);
        CHECK(log.text.find("cut short by another program") != std::string::npos);
        CHECK(std::count(log.text.begin(), log.text.end(), '\n') == 1);
        std::remove(path.c_str());
    }
}

TEST_CASE("processes executor in a process with other threads: a warning that says why it may hang") {
    test::NoLeaks no_leaks;
    std::atomic<bool> stop{false};
    std::thread other([&] {
        while (!stop) std::this_thread::sleep_for(1ms);
    });
    test::Log log;
    auto w = test::on<test::Seed>(flowy::Executor::processes, 2, log.sink());
    w.conf_activity("square", square).conf_activity("sum", sum);
    CHECK(w.run(2, 10) == 104);
    CHECK(log.text.find("this process has 1 other thread: the processes executor forks") != std::string::npos);
    stop = true;
    other.join();
    test::Log quiet;
    auto again = test::on<test::Seed>(flowy::Executor::processes, 2, quiet.sink());
    again.conf_activity("square", square).conf_activity("sum", sum);
    CHECK(again.run(2, 10) == 104);
    CHECK(quiet.text.empty());
}

TEST_CASE("the trace writer writes numbers, strings, ids and lists exactly") {
    std::string path = temp_path("writer.jsonl");
    std::vector<std::int64_t> numbers = {0,         9,        10,        99,        100,
                                         12345678,  99999999, 100000000, 100000001, 123456789012,
                                         INT64_MAX, -1,       -100,      INT64_MIN, 4294967296};
    std::vector<std::string> warnings;
    {
        flowy::detail::trace::Writer w(path, false, [&](const std::string& m) { warnings.push_back(m); });
        REQUIRE(w.ok());
        for (std::int64_t n : numbers) w.begin("n").field("v", n).end();
        w.begin(std::string_view("run_time_name"))
            .field("s", std::string_view("q\"b\\n\nt\tc\x01\x7f"))
            .field_bool("yes", true)
            .field_bool("no", false)
            .field_hex("h", 0x0123456789abcdefULL)
            .field_bytes("b", std::string_view("\x00\xff\x10", 3))
            .field_id("id", {"child-0-0/", "sq", 4294967295U, 10})
            .list_begin("ids")
            .list_id({"", "a", 0, 0})
            .list_id({"p/", "b", 1, 2})
            .list_end()
            .list_begin("none")
            .list_end()
            .field_list("names", {"x", "y\"z"})
            .end();
    }
    CHECK(warnings.empty());
    std::istringstream lines(slurp(path));
    std::string line;
    for (std::int64_t n : numbers) {
        REQUIRE(std::getline(lines, line));
        CAPTURE(line);
        std::size_t t_end = line.find(',');
        REQUIRE(line.rfind("{\"t\":", 0) == 0);
        CHECK(std::stoll(line.substr(5, t_end - 5)) > 0);
        CHECK(line.substr(t_end) == ",\"event\":\"n\",\"v\":" + std::to_string(n) + "}");
    }
    REQUIRE(std::getline(lines, line));
    CHECK(line.substr(line.find(',')) ==
          ",\"event\":\"run_time_name\",\"s\":\"q\\\"b\\\\n\\nt\\tc\\u0001\x7f\",\"yes\":true,\"no\":false,"
          "\"h\":\"0123456789abcdef\",\"b\":\"AP8Q\",\"id\":\"child-0-0/sq-4294967295-10\","
          "\"ids\":[\"a-0-0\",\"p/b-1-2\"],\"none\":[],\"names\":[\"x\",\"y\\\"z\"]}");
    CHECK_FALSE(std::getline(lines, line));
    std::remove(path.c_str());
}

TEST_CASE("a disk that fills up in the middle of a run: reported once, the run goes on, the trace loads") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("full.trace");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // A file size limit plays the full disk: the trace's first 1.5 MiB fit, growing past them does not.
        signal(SIGXFSZ, SIG_IGN);
        rlimit limit{std::size_t(1536) << 10, std::size_t(1536) << 10};
        setrlimit(RLIMIT_FSIZE, &limit);
        test::Log log;
        flowy::LocalWorkflow<test::FanOut> w;
        w.workers(2).trace(path).log(log.sink());
        w.conf_activity("t", square).conf_activity("join", test::join);
        // the journal takes under 100 bytes a task: 30,000 tasks outgrow 1.5 MiB
        constexpr long n = 30000;
        bool right = w.run(int(n)) == (n - 1) * n * (2 * n - 1) / 6;
        bool once = std::count(log.text.begin(), log.text.end(), '\n') == 1 &&
                    log.text.find("cannot grow the file") != std::string::npos;
        std::size_t finished = 0;  // the trace holds the run up to the moment the file could not grow
        bool says = false;         // and says that the run went on untraced, and why
        try {
            auto trace = flowy::Trace::load(path);
            for (const auto& t : trace.tasks()) finished += t.state == TraceTask::State::finished;
            says = trace.runs().back().trace_stopped.find("cannot grow the file") != std::string::npos &&
                   trace.summary().find("went on untraced (its trace stopped)") != std::string::npos &&
                   !trace.warnings().empty() && trace.warnings().back().find("the run went on") != std::string::npos;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
        }
        _exit(right && once && says && finished > 100 && finished < n ? 0 : 1 + right + 2 * once + 4 * says);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    std::remove(path.c_str());
}

// ---- resume ----

namespace {

/// How many times each task ran, in memory shared with the workers.
std::atomic<int>* runs() {
    static auto* r = [] {
        void* p =
            mmap(nullptr, 64 * sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return static_cast<std::atomic<int>*>(p);
    }();
    return r;
}

int slow_second_half(int i) {
    ++runs()[i];
    if (i >= 20) test::wait_for_flag(30s);  // the first run is killed while these wait
    return i * 2;
}
struct Twice {
    Activity<int(int)> t{"t"};
    Activity<int(int, int)> add{"add"};
    Result<int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        Result<int> acc = 0;
        for (auto& r : rs) acc = add(acc, r);
        return acc;
    }
};
int add(int a, int b) {
    return a + b;
}

}  // namespace

TEST_CASE("a run killed with SIGKILL halfway resumes from its trace; finished tasks do not run again") {
    test::NoLeaks no_leaks;
    Shared::reset();
    for (int i = 0; i < 64; ++i) runs()[i] = 0;
    std::string path = temp_path("killed.trace");
    std::fflush(nullptr);
    pid_t child = fork();
    if (child == 0) {
        flowy::LocalWorkflow<Twice> w;
        w.workers(2).trace(path).log([](std::string_view) {});
        w.conf_activity("t", slow_second_half).conf_activity("add", add);
        w.run(40);
        _exit(0);
    }
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (test::finished_in(path) < 20 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    REQUIRE(test::finished_in(path) == 20);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);

    auto killed = flowy::Trace::load(path);  // loadable as it was left
    CHECK(killed.runs().back().outcome == flowy::TraceRun::Outcome::running);

    Shared::get().flag = 1;  // this time nothing waits
    flowy::LocalWorkflow<Twice> w;
    w.workers(2).log([](std::string_view) {});
    w.conf_activity("t", slow_second_half).conf_activity("add", add);
    CHECK(w.resume(path) == 2 * (39 * 40 / 2));
    for (int i = 0; i < 20; ++i) CHECK(runs()[i] == 1);  // not run again
    for (int i = 20; i < 40; ++i) CHECK(runs()[i] >= 1);
    auto t = flowy::Trace::load(path);
    REQUIRE(t.runs().size() == 2);
    CHECK(t.runs()[1].resumed);
    CHECK(t.runs()[1].outcome == flowy::TraceRun::Outcome::finished);
    CHECK(find(t, "t-3-0")->cached);
    std::remove(path.c_str());
}

namespace {
// Every operation, with tasks whose lengths make them finish out of call order: the
// calls made after first, finish_order and parallel_reduce depend on that order.
int nap_out_of_order(int x) {
    Shared::get().calls++;
    std::this_thread::sleep_for(std::chrono::milliseconds((x * 7) % 5));
    return x;
}
struct Double {
    Activity<int(int, int)> add{"add"};
    Result<int> operator()(int x) { return add(x, x); }
};
struct EveryOperation {
    Activity<int(int)> nap{"nap"};
    Activity<int(int, int)> add{"add"};
    flowy::Workflow<int(int)> twice{"twice"};
    Result<int> operator()(int round, int n) {
        std::vector<Result<int>> a, b, c;
        for (int i = 0; i < n; ++i) {
            a.push_back(nap(round * 1000 + i));
            b.push_back(nap(round * 1000 + 100 + i));
            c.push_back(nap(round * 1000 + 200 + i));
        }
        flowy::wait(a[static_cast<std::size_t>(n) - 1]);
        add(flowy::first(c), 0);  // its arguments are whichever finished first
        Result<int> folded = add(0, 0);
        for (auto r : flowy::finish_order(b)) folded = add(folded, r);
        auto total = add(add(flowy::parallel_reduce(add, a), folded), twice(flowy::parallel_reduce(add, c)));
        if (round == 0) return flowy::restart(1, n);
        return total;
    }
};
constexpr int every_operation_result = (10 * 1000 + 45) + (10 * 1100 + 45) + 2 * (10 * 1200 + 45);
flowy::LocalWorkflow<EveryOperation> every_operation(flowy::Executor e) {
    flowy::LocalWorkflow<Double> twice;
    twice.conf_activity("add", add);
    auto w = test::on<EveryOperation>(e, 2, [](std::string_view) {});
    w.conf_activity("nap", nap_out_of_order).conf_activity("add", add).conf_workflow("twice", twice);
    return w;
}
}  // namespace

TEST_CASE("every operation resumes: killed at several points, then resumed on every executor, and again") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("every-op.trace");
    for (std::size_t kill_after : {5, 30, 70, 110}) {
        for (auto e : test::all_executors) {
            CAPTURE(kill_after);
            CAPTURE(test::name(e));
            std::remove(path.c_str());
            std::fflush(nullptr);
            pid_t child = fork();
            if (child == 0) {
                auto w = every_operation(flowy::Executor::processes);
                w.trace(path);
                w.run(0, 10);
                _exit(0);
            }
            auto deadline = std::chrono::steady_clock::now() + 20s;
            while (test::finished_in(path, nullptr) < kill_after && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(1ms);
            kill(child, SIGKILL);
            waitpid(child, nullptr, 0);
            REQUIRE(test::finished_in(path, nullptr) >= kill_after);
            auto w = every_operation(e);
            CHECK(w.resume(path) == every_operation_result);
            // resuming the finished run: every task's value is in the trace, nothing runs
            Shared::reset();
            CHECK(every_operation(e).resume(path) == every_operation_result);
            CHECK(Shared::get().calls == 0);
            auto t = flowy::Trace::load(path);
            REQUIRE(t.runs().size() == 3);
            CHECK(t.runs()[2].outcome == flowy::TraceRun::Outcome::finished);
        }
    }
    std::remove(path.c_str());
}

namespace {
int fails_on_five(int i) {
    ++runs()[i];
    if (i == 5) throw std::runtime_error("five is broken");
    return i * 2;
}
int fixed(int i) {
    ++runs()[i];
    return i * 2;
}
// One workflow whose body changes between the run and its resume, as code does.
int evolving_version = 0;
struct Evolving {
    Activity<int(int)> t{"t"};
    Activity<int(int, int)> add{"add"};
    Result<int> operator()(int n) {
        if (evolving_version == 1) return add(0, 0);            // calls add where the trace has t
        if (evolving_version == 2) return add(t(n + 1), t(n));  // t's arguments differ from the trace
        return add(t(n), t(n - 1));
    }
};
}  // namespace

TEST_CASE("resume after a failed run whose cause was fixed reruns only what did not succeed") {
    test::NoLeaks no_leaks;
    for (int i = 0; i < 64; ++i) runs()[i] = 0;
    std::string path = temp_path("fixed.trace");
    flowy::LocalWorkflow<Twice> broken;
    broken.workers(2).trace(path).log([](std::string_view) {});
    broken.conf_activity("t", fails_on_five).conf_activity("add", add);
    CHECK_THROWS_WITH_AS(broken.run(10), "five is broken", flowy::TaskError);
    std::vector<bool> succeeded(10);
    auto first_run = flowy::Trace::load(path);
    for (const auto& x : first_run.tasks())
        if (x.activity == "t" && x.state == TraceTask::State::finished) succeeded[std::size_t(x.call)] = true;
    CHECK(!succeeded[5]);
    std::vector<int> before(10);
    for (int i = 0; i < 10; ++i) before[std::size_t(i)] = runs()[i];

    flowy::LocalWorkflow<Twice> w;
    w.workers(2).log([](std::string_view) {});
    w.conf_activity("t", fixed).conf_activity("add", add);
    CHECK(w.resume(path) == 90);
    CHECK(runs()[5] == 2);  // failed, then ran again
    for (int i = 0; i < 10; ++i) {
        CAPTURE(i);
        // what succeeded is not run again; what was stopped when the run failed runs now
        CHECK(runs()[i] == before[std::size_t(i)] + (succeeded[std::size_t(i)] ? 0 : 1));
    }
    std::remove(path.c_str());
}

TEST_CASE("resume with another workflow, or with other parameters: a TaskError, and the trace untouched") {
    test::NoLeaks no_leaks;
    for (const char* name : {"other-class.trace", "other-class.jsonl"}) {  // a journal, JSON Lines
        CAPTURE(name);
        std::string path = temp_path(name);
        std::remove(path.c_str());
        auto w = test::on<test::Seed>(flowy::Executor::synchronous);
        w.conf_activity("square", square).conf_activity("sum", sum).trace(path);
        REQUIRE(w.run(2, 10) == 104);
        std::string before = slurp(path);
        auto other = test::on<Naps>(flowy::Executor::synchronous);
        other.conf_activity("nap", nap);
        CHECK_THROWS_WITH_AS(other.resume(path), doctest::Contains("records a run of test::Seed, not of"),
                             flowy::TaskError);
        CHECK(slurp(path) == before);
        std::remove(path.c_str());
    }
    std::string path = temp_path("other-parameters.jsonl");  // edited as text: JSON Lines
    auto w = test::on<test::Seed>(flowy::Executor::synchronous);
    w.conf_activity("square", square).conf_activity("sum", sum).trace(path);
    REQUIRE(w.run(2, 10) == 104);
    std::string before = slurp(path);
    REQUIRE(before.find("\"parameters\":\"void (int, int)\"") != std::string::npos);

    std::string changed = before;
    changed.replace(changed.find("void (int, int)"), 15, "void (long)");
    std::ofstream(path, std::ios::trunc) << changed;
    auto same = test::on<test::Seed>(flowy::Executor::synchronous);
    same.conf_activity("square", square).conf_activity("sum", sum);
    CHECK_THROWS_WITH_AS(same.resume(path),
                         doctest::Contains("with parameters void (long), but the workflow now takes void (int, int)"),
                         flowy::TaskError);
    CHECK(slurp(path) == changed);
    std::remove(path.c_str());
}

TEST_CASE("a resumed body that makes other calls stops with an error naming the first diverging call") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("diverge.trace");
    flowy::LocalWorkflow<Evolving> w;
    w.workers(2).conf_activity("t", fixed).conf_activity("add", add);
    evolving_version = 0;
    w.trace(path);
    CHECK(w.run(2) == 6);

    flowy::LocalWorkflow<Evolving> order;
    order.workers(2).conf_activity("t", fixed).conf_activity("add", add);
    evolving_version = 1;
    CHECK_THROWS_WITH_AS(order.resume(path), doctest::Contains("call 1 is add-0-0, but the trace recorded t-0-0"),
                         flowy::TaskError);
    evolving_version = 2;
    CHECK_THROWS_WITH_AS(order.resume(path), doctest::Contains("t-0-0 is called with other arguments"),
                         flowy::TaskError);
    evolving_version = 0;
    CHECK_THROWS_AS(order.resume("/nonexistent/trace.jsonl"), flowy::TraceError);
    std::remove(path.c_str());
}

TEST_CASE("the live status line, when asked for") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("stderr.txt");
    std::fflush(stderr);
    int saved = dup(2);
    FILE* f = std::fopen(path.c_str(), "w");
    dup2(fileno(f), 2);
    flowy::LocalWorkflow<test::Seed> w;
    w.workers(2).progress(true);
    w.conf_activity("square", square).conf_activity("sum", sum);
    int v = w.run(2, 10);
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    std::fclose(f);
    CHECK(v == 104);
    std::string out = slurp(path);
    CHECK(out.find("flowy: 0/") != std::string::npos);
    std::remove(path.c_str());
}

// ---- times where they happen ----

namespace {
/// Tasks of mixed lengths: sleeps of 0-40 ms (seeded) and many empty tasks among them.
struct Mixed {
    Activity<int(int)> slow{"slow"};
    Activity<int(int)> tiny{"tiny"};
    int operator()(int n) {
        std::vector<Result<int>> rs;
        unsigned x = 12345;
        for (int i = 0; i < n; ++i) {
            x = x * 1103515245u + 12345u;
            rs.push_back(i % 4 == 0 ? slow(int(x >> 16) % 40) : tiny(0));
        }
        int total = 0;
        for (auto& r : rs) total += r.get();
        return total;
    }
};
}  // namespace

TEST_CASE("a trace's times are run times: rows never overlap, utilisation stays under 100%, queueing apart") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        std::string path = temp_path("mixed.trace");
        std::remove(path.c_str());
        auto w = test::on<Mixed>(e, 2);
        w.conf_activity("slow", nap).conf_activity("tiny", nap).trace(path);
        w.run(200);
        auto t = flowy::Trace::load(path);
        std::map<std::int64_t, std::vector<const TraceTask*>> by_worker;
        for (const auto& task : t.tasks()) {
            REQUIRE(task.run_started_us >= 0);  // stamped by the worker (format version 2)
            // the dispatch is stamped just after the hand-over: a worker may start a little sooner
            CHECK(task.run_started_us >= task.dispatched_us - 1000);
            CHECK(task.run_ended_us <= task.ended_us);
            // an empty task took microseconds, however long it waited to start
            if (task.activity == "tiny") CHECK_MESSAGE(task.run_us() < 5000, task.id, " ran ", task.run_us(), " µs");
            REQUIRE(task.worker >= 0);  // the thread pool's too: the completion names the thread
            by_worker[task.worker].push_back(&task);
        }
        {
            for (auto& [worker, tasks] : by_worker) {
                std::sort(tasks.begin(), tasks.end(), [](const TraceTask* a, const TraceTask* b) {
                    return std::pair(a->run_start(), a->run_end()) < std::pair(b->run_start(), b->run_end());
                });
                for (std::size_t i = 1; i < tasks.size(); ++i)
                    CHECK_MESSAGE(tasks[i]->run_start() >= tasks[i - 1]->run_end(), "worker ", worker, ": ",
                                  tasks[i - 1]->id, " (", tasks[i - 1]->run_start(), "-", tasks[i - 1]->run_end(),
                                  ") and ", tasks[i]->id, " (", tasks[i]->run_start(), "-", tasks[i]->run_end(),
                                  ") overlap");
            }
        }
        std::string summary = t.summary();
        std::istringstream lines(summary);
        int workers_seen = 0;
        for (std::string line; std::getline(lines, line);) {
            auto at = line.find("% busy");
            if (at == std::string::npos) continue;
            ++workers_seen;
            double pct = std::stod(line.substr(line.rfind(' ', at - 1) + 1));
            CHECK_MESSAGE(pct <= 100.0, line);
        }
        CHECK(workers_seen > 0);
        std::remove(path.c_str());
    }
}

TEST_CASE("a version 1 trace (no run times) still loads, and its times are dispatch to end") {
    auto t = flowy::Trace::load(std::string(FLOWY_TEST_DATA) + "/seed.jsonl");
    const TraceTask* sq = find(t, "square-0-0");
    REQUIRE(sq);
    CHECK(sq->run_started_us == -1);
    CHECK(sq->run_start() == sq->dispatched_us);
    CHECK(sq->run_us() == sq->ended_us - sq->dispatched_us);
}

namespace {
struct OneSlow {
    Activity<int(int)> nap{"nap"};
    Result<int> operator()() { return nap(800); }
};
}  // namespace

TEST_CASE("the live status line redraws on a timer under a terminal, even while no task finishes") {
    test::NoLeaks no_leaks;
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {  // standard error is the terminal: the status line is on by default
        flowy::LocalWorkflow<OneSlow> w;
        w.workers(1).conf_activity("nap", nap);
        _exit(w.run() == 800 ? 0 : 1);
    }
    std::string out;
    auto until = std::chrono::steady_clock::now() + 20s;
    for (char buf[4096]; std::chrono::steady_clock::now() < until;) {
        pollfd p{master, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        ssize_t n = read(master, buf, sizeof buf);
        if (n <= 0) break;  // the terminal closed: the run ended
        out.append(buf, static_cast<std::size_t>(n));
    }
    close(master);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    std::size_t draws = 0;
    for (std::size_t at = 0; (at = out.find("\r\x1b[Kflowy: ", at)) != std::string::npos; ++at) ++draws;
    // 0.8 s with no task finishing, drawn every 0.1 s
    CHECK_MESSAGE(draws >= 5, "drawn ", draws, " times: ", out);
    CHECK(out.find("0/1 done, 1 running, 0 failed") != std::string::npos);
    CHECK(out.size() >= 4);
    CHECK(out.substr(out.size() - 4) == "\r\x1b[K");  // the line is cleared at the end
}

namespace {
int nap_and_say(int ms) {
    Shared::get().counter[0] = getpid();
    return nap(ms);
}
struct OneStopped {
    Activity<int(int)> nap{"nap"};
    Result<int> operator()() { return nap(300); }
};
}  // namespace

TEST_CASE("the status line says that a worker holding a task is stopped, and the run ends once it goes on") {
    test::NoLeaks no_leaks;
    Shared::reset();
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        flowy::LocalWorkflow<OneStopped> w;
        w.workers(1).conf_activity("nap", nap_and_say);
        _exit(w.run() == 300 ? 0 : 1);
    }
    std::string out;
    bool stopped = false, continued = false;
    pid_t worker = 0;
    auto until = std::chrono::steady_clock::now() + 30s;
    for (char buf[4096]; std::chrono::steady_clock::now() < until;) {
        if (!stopped && (worker = Shared::get().counter[0].load()) != 0) stopped = kill(worker, SIGSTOP) == 0;
        if (stopped && !continued && out.find("1 worker stopped (kill -CONT to go on)") != std::string::npos)
            continued = kill(worker, SIGCONT) == 0;
        pollfd p{master, POLLIN, 0};
        if (poll(&p, 1, 10) <= 0) continue;
        ssize_t n = read(master, buf, sizeof buf);
        if (n <= 0) break;  // the terminal closed: the run ended
        out.append(buf, static_cast<std::size_t>(n));
    }
    if (stopped && !continued) kill(worker, SIGCONT);
    close(master);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(stopped);
    CHECK_MESSAGE(continued, out);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a run killed halfway: its running task looks different from one that never started") {
    std::string text =
        R"({"t":10,"event":"run_started","version":2,"workflow":"W","executor":"processes","workers":2,"host":"h","pid":1,"time":"x","resumed":false,"input":""})"
        "\n"
        R"({"t":11,"event":"task_scheduled","id":"a-0-0","activity":"a","call":0,"frame":"","args":[],"reads":[]})"
        "\n"
        R"({"t":12,"event":"task_scheduled","id":"b-0-0","activity":"b","call":0,"frame":"","args":["a-0-0"],"reads":[]})"
        "\n"
        R"({"t":13,"event":"task_dispatched","id":"a-0-0","worker":0,"pid":2,"args_hash":"0000000000000000"})"
        "\n";
    auto t = flowy::Trace::parse(text, "killed.jsonl");
    CHECK(find(t, "a-0-0")->state == TraceTask::State::interrupted);
    CHECK(find(t, "b-0-0")->state == TraceTask::State::never_finished);
    std::string dot = t.to_dot();
    CHECK(dot.find("running when the run ended\"") != std::string::npos);
    CHECK(dot.find("never started\"") != std::string::npos);
    CHECK(t.summary().find("1 running when the run ended") != std::string::npos);
}

TEST_CASE("after a resume that was killed early, the summary says which tasks' states an earlier run left") {
    std::string run1 =
        R"({"t":10,"event":"run_started","version":2,"workflow":"W","executor":"processes","workers":2,"host":"h","pid":1,"time":"x","resumed":false,"input":""})"
        "\n"
        R"({"t":11,"event":"task_scheduled","id":"a-0-0","activity":"a","call":0,"frame":"","args":[],"reads":[]})"
        "\n"
        R"({"t":12,"event":"task_scheduled","id":"b-0-0","activity":"b","call":0,"frame":"","args":[],"reads":[]})"
        "\n"
        R"({"t":13,"event":"task_dispatched","id":"b-0-0","worker":0,"pid":2,"args_hash":"0000000000000000"})"
        "\n";
    std::string run2 =
        R"({"t":20,"event":"run_started","version":2,"workflow":"W","executor":"processes","workers":2,"host":"h","pid":3,"time":"x","resumed":true,"input":""})"
        "\n"
        R"({"t":21,"event":"task_scheduled","id":"a-0-0","activity":"a","call":0,"frame":"","args":[],"reads":[]})"
        "\n";
    auto t = flowy::Trace::parse(run1 + run2, "resumed.jsonl");
    CHECK(t.runs().size() == 2);
    CHECK(find(t, "b-0-0")->state == TraceTask::State::interrupted);  // as run 1 left it
    std::string summary = t.summary();
    CHECK(summary.find("tasks: 2, 1 never started, 1 running when the run ended") != std::string::npos);
    CHECK(summary.find("(1 of them as an earlier run left them: the last run did not call it)") != std::string::npos);
    // One run, or a resume that called every task: nothing to say.
    CHECK(flowy::Trace::parse(run1, "one.jsonl").summary().find("an earlier run") == std::string::npos);
}

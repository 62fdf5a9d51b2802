// The run journal (src/trace/journal.hpp): what runs write, what the readers make of it,
// its JSON Lines export, damage found exactly, runs killed at random, and older traces.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support.hpp"
#include "trace/journal.hpp"
#include "trace/json.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using flowy::Activity;
using flowy::Result;
using flowy::TraceTask;
using test::Shared;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void spit(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string temp_path(const std::string& name) {
    return "/tmp/flowy-test-" + std::to_string(getpid()) + "-" + name;
}

// ---- a workflow in which every kind of event happens ----

int flaky(int x) {  // fails its first attempt
    if (Shared::get().counter[0]++ == 0) throw std::runtime_error("not yet");
    return x;
}
int boom(int) {
    throw std::runtime_error("boom \"quoted\" \x1b[31mred\x1b[0m \xff\xfe тест");
}
int sleepy(int) {
    std::this_thread::sleep_for(5s);
    return 0;
}
int crash(int) {
    std::abort();
}
int plus1(int x) {
    return x + 1;
}
int add(int a, int b) {
    return a + b;
}
std::string echo(std::string s) {
    return s + std::string("\0\x01\"\\", 4);
}
struct Inner {
    Activity<int(int)> plus1{"plus1"};
    Result<int> operator()(int x) { return plus1(plus1(x)); }
};
struct Everything {
    Activity<int(int)> flaky{"flaky"};
    Activity<int(int)> boom{"boom"};
    Activity<int(int)> sleepy{"sleepy"};
    Activity<int(int)> crash{"crash"};
    Activity<int(int)> plus1{"plus1"};
    Activity<int(int, int)> add{"add"};
    Activity<std::string(std::string)> echo{"echo"};
    flowy::Workflow<int(int)> inner{"inner"};
    Result<int> operator()(int round) {
        auto a = flaky(round);
        auto b = boom(round);
        plus1(b);  // skipped: its input failed
        sleepy(0);
        crash(0);
        auto s = echo(std::string("odd \"text\"\n\t\x01 тест ") + std::string(300, 'x'));
        s.get();
        auto c = plus1.named("step one")(inner(a));
        if (round == 0) return flowy::restart(1);
        return add(c, plus1.after(s)(0));
    }
};
flowy::LocalWorkflow<Everything> everything(const std::string& trace) {
    flowy::LocalWorkflow<Inner> inner;
    inner.conf_activity("plus1", plus1);
    flowy::LocalWorkflow<Everything> w;
    w.workers(2).trace(trace).log([](std::string_view) {});
    flowy::ActivityOptions retried;
    retried.retries = 1;
    retried.retry_on_error = true;
    flowy::ActivityOptions short_lived;
    short_lived.timeout = 50ms;
    w.conf_activity("flaky", flaky, retried)
        .conf_activity("boom", boom)
        .conf_activity("sleepy", sleepy, short_lived)
        .conf_activity("crash", crash)
        .conf_activity("plus1", plus1)
        .conf_activity("add", add)
        .conf_activity("echo", echo)
        .conf_workflow("inner", inner);
    return w;
}

/// Each line's event, its keys and its id, sorted: what a trace holds, apart from times,
/// pids and the order of events that raced.
std::vector<std::string> shapes(const std::string& jsonl) {
    std::vector<std::string> out;
    std::istringstream lines(jsonl);
    std::string line;
    while (std::getline(lines, line)) {
        flowy::detail::json::Value v;
        std::string why;
        REQUIRE_MESSAGE(flowy::detail::json::parse(line, v, why), why);
        std::string shape;
        for (std::size_t i = 0; i < v.keys.size(); ++i) {
            shape += v.keys[i] + ",";
            if (v.keys[i] == "event" || v.keys[i] == "id") shape += v.items[i].text + ",";
        }
        out.push_back(shape);
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("a journal exports to the JSON Lines the JSON recorder writes, and both read back the same") {
    test::NoLeaks no_leaks;
    std::string journal = temp_path("all.trace"), exported = temp_path("all-export.jsonl"),
                written = temp_path("all.jsonl");
    for (const std::string& path : {journal, written}) {
        Shared::reset();
        std::remove(path.c_str());
        CHECK(everything(path).run(0) == 2 + 2 + 1);
    }
    REQUIRE(flowy::detail::trace::journal::is_journal(slurp(journal)));
    REQUIRE(slurp(written).front() == '{');
    auto from_journal = flowy::Trace::load(journal);
    from_journal.write_jsonl(exported);
    CHECK(slurp(exported) == from_journal.jsonl());

    // The same events and fields as the JSON recorder writes.
    std::vector<std::string> got = shapes(slurp(exported)), want = shapes(slurp(written));
    CHECK(got == want);
    std::string events;
    for (const auto& s : got) events += s;
    for (const char* e : {"run_started", "task_scheduled", "task_dispatched", "task_finished", "task_failed",
                          "task_timed_out", "worker_crashed", "task_retried", "task_skipped", "ignored_failure",
                          "child_started", "child_finished", "restarted", "run_finished"}) {
        CAPTURE(e);
        CHECK(events.find(std::string("event,") + e + ",") != std::string::npos);
    }

    // What is read from the export is what is read from the journal.
    auto from_export = flowy::Trace::load(exported);
    CHECK(from_export.to_dot() == from_journal.to_dot());
    CHECK(from_export.summary() == from_journal.summary());
    CHECK(from_export.timeline() == from_journal.timeline());
    CHECK(from_export.junit() == from_journal.junit());
    CHECK(from_export.report_html() == from_journal.report_html());
    REQUIRE(from_export.tasks().size() == from_journal.tasks().size());
    for (std::size_t i = 0; i < from_journal.tasks().size(); ++i) {
        const TraceTask &a = from_journal.tasks()[i], &b = from_export.tasks()[i];
        CAPTURE(a.id);
        CHECK(a.id == b.id);
        CHECK(a.last_id == b.last_id);
        CHECK(a.state == b.state);
        CHECK(a.value == b.value);
        CHECK(a.message == b.message);
        CHECK(a.detail == b.detail);
        CHECK(a.name == b.name);
        CHECK(a.after == b.after);
        CHECK(a.run_started_us == b.run_started_us);
        CHECK(a.run_ended_us == b.run_ended_us);
        CHECK(a.scheduled_us == b.scheduled_us);
    }
    const TraceTask* failed = nullptr;
    for (const auto& t : from_journal.tasks())
        if (t.id == "boom-0-0") failed = &t;
    REQUIRE(failed);
    CHECK(failed->message == "boom \"quoted\" \x1b[31mred\x1b[0m \xff\xfe тест");  // bytes as they were
    CHECK(from_journal.runs().size() == 1);
    CHECK(from_journal.restarts().size() == 1);

    // A run that fails, and its run_failed event.
    std::string failing = temp_path("failing.trace");
    struct Fails {
        Activity<int(int)> boom{"boom"};
        Result<int> operator()() { return boom(1); }
    };
    flowy::LocalWorkflow<Fails> f;
    f.trace(failing).log([](std::string_view) {});
    f.conf_activity("boom", boom);
    CHECK_THROWS(f.run());
    std::string lines = flowy::Trace::load(failing).jsonl();
    CHECK(lines.find("\"event\":\"run_failed\"") != std::string::npos);
    CHECK(flowy::Trace::parse(lines).runs().at(0).outcome == flowy::TraceRun::Outcome::failed);
    for (const std::string& p : {journal, exported, written, failing}) std::remove(p.c_str());
}

namespace {
int identity(int x) {
    return x;
}
}  // namespace

TEST_CASE("W1's empty tasks take at most 100 bytes each in the journal") {
    test::NoLeaks no_leaks;
    constexpr int n = 10000;
    std::string journal = temp_path("w1.trace"), jsonl = temp_path("w1.jsonl");
    for (const std::string& path : {journal, jsonl}) {
        auto w = test::on<test::FanOut>(flowy::Executor::processes);
        w.conf_activity("t", identity).conf_activity("join", test::join).trace(path);
        CHECK(w.run(n) == long(n) * (n - 1) / 2);
    }
    std::size_t bytes = slurp(journal).size(), text = slurp(jsonl).size();
    MESSAGE("journal: " << bytes / n << " bytes a task; JSON Lines: " << text / n);
    CHECK(bytes / n <= 100);
    CHECK(flowy::Trace::load(journal).tasks().size() == n + 1);
    std::remove(journal.c_str());
    std::remove(jsonl.c_str());
}

namespace {
/// Where each record of a journal starts, and where the last one ends.
std::vector<std::size_t> record_starts(const std::string& data) {
    std::vector<std::size_t> starts;
    std::size_t at = flowy::detail::trace::journal::header_size;
    while (at < data.size()) {
        starts.push_back(at);
        std::size_t p = at + 5;  // CRC-32C, type
        std::uint64_t len = 0;
        for (int shift = 0;; shift += 7) {
            auto b = static_cast<unsigned char>(data.at(p++));
            len |= std::uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) break;
        }
        at = p + 1 + len;  // CRC-8, payload
    }
    starts.push_back(at);
    return starts;
}
}  // namespace

TEST_CASE("every flipped byte of a journal is found: the damaged record named by its offset, never another value") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("flip.trace");
    auto w = test::on<test::Seed>(flowy::Executor::synchronous);
    w.conf_activity("square", [](int x) { return x * x; }).conf_activity("sum", add).trace(path);
    REQUIRE(w.run(2, 10) == 104);
    std::string good = slurp(path);
    std::vector<std::size_t> starts = record_starts(good);
    REQUIRE(starts.back() == good.size());
    std::size_t last = starts[starts.size() - 2];
    CHECK(flowy::Trace::parse(good, "flip.trace").warnings().empty());
    int errors = 0, torn = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (i >= 12 && i < 16) continue;  // the header's pid: who wrote it last, not checked
        CAPTURE(i);
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x5a);
        std::size_t record = std::upper_bound(starts.begin(), starts.end(), i) - starts.begin() - 1;
        try {
            auto t = flowy::Trace::parse(bad, "flip.trace");
            // Only the last record can be taken for one the run was writing when it was killed.
            CHECK(i >= last);
            REQUIRE(t.warnings().size() >= 1);
            CHECK(t.warnings()[0].find("(byte " + std::to_string(last) + ") is incomplete") != std::string::npos);
            ++torn;
        } catch (const flowy::TraceError& e) {
            std::string m = e.what();
            if (i >= 16) {
                CAPTURE(m);
                // The record that holds the byte, or an earlier one whose length it changed.
                bool named = m.find("(byte " + std::to_string(starts[record]) + ")") != std::string::npos;
                for (std::size_t k = 0; k < record && !named; ++k)
                    named = m.find("(byte " + std::to_string(starts[k]) + ")") != std::string::npos;
                CHECK(named);
            }
            ++errors;
        }
    }
    MESSAGE(errors << " flips refused, " << torn << " taken for a torn last record");
    CHECK(errors > 300);

    // A torn record at the end (a run killed while writing it) is dropped with a warning.
    std::string cut = good.substr(0, last + (good.size() - last) / 2) + std::string(4096, '\0');
    auto t = flowy::Trace::parse(cut, "cut.trace");
    REQUIRE(t.warnings().size() >= 1);
    CHECK(t.warnings()[0] == "cut.trace: record " + std::to_string(starts.size() - 1) + " (byte " +
                                 std::to_string(last) +
                                 ") is incomplete (the run was stopped while writing it); ignored");
    CHECK(t.runs().back().outcome == flowy::TraceRun::Outcome::running);
    std::remove(path.c_str());
}

namespace {
int nap(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x % 3));
    return x;
}
int zero(int) {
    return 0;
}
struct Reduce {
    Activity<int(int)> nap{"nap"};
    Activity<int(int)> zero{"zero"};
    Activity<int(int, int)> add{"add"};
    Result<int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(nap(i));
        auto early = flowy::first(rs);  // whichever finished first: resume must see the same
        return add(flowy::parallel_reduce(add, rs), zero(early));
    }
};
flowy::LocalWorkflow<Reduce> reduce() {
    auto w = test::on<Reduce>(flowy::Executor::processes, 2, [](std::string_view) {});
    w.conf_activity("nap", nap).conf_activity("add", add).conf_activity("zero", zero);
    return w;
}
}  // namespace

TEST_CASE("a run killed at random moments leaves a journal that loads, and resumes to the right value") {
    test::NoLeaks no_leaks;
    std::string path = temp_path("random-kill.trace");
    std::mt19937 random(20261202);
    for (int round = 0; round < 8; ++round) {
        int after_ms = std::uniform_int_distribution<int>(0, 100)(random);
        CAPTURE(after_ms);
        std::remove(path.c_str());
        std::fflush(nullptr);
        pid_t child = fork();
        if (child == 0) {
            auto w = reduce();
            w.trace(path);
            _exit(w.run(120) == 119 * 120 / 2 ? 0 : 1);
        }
        // The kill point: a random time after the run recorded its start (not a wait for a
        // result; the workers start before it, slowly under the sanitizers).
        auto started = [&] {
            try {
                return !flowy::Trace::load(path).runs().empty();
            } catch (const flowy::TraceError&) {
                return false;
            }
        };
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!started() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
        REQUIRE_NOTHROW(flowy::Trace::load(path));  // whatever the moment, what is left loads
        auto w = reduce();
        CHECK(w.resume(path) == 119 * 120 / 2);
        auto t = flowy::Trace::load(path);
        CHECK(t.warnings().empty());
        CHECK(t.runs().back().outcome == flowy::TraceRun::Outcome::finished);
        CHECK(flowy::Trace::parse(t.jsonl()).tasks().size() == t.tasks().size());
    }
    std::remove(path.c_str());
}

TEST_CASE("a JSON Lines trace (an earlier release's, or exported) resumes, and the resumed run appends JSON Lines") {
    test::NoLeaks no_leaks;
    std::string journal = temp_path("to-export.trace"), jsonl = temp_path("exported.jsonl");
    std::remove(journal.c_str());
    std::fflush(nullptr);
    pid_t child = fork();
    if (child == 0) {
        auto w = reduce();
        w.trace(journal);
        w.run(600);  // about 0.6 s: killed long before it ends
        _exit(0);
    }
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (test::finished_in(journal, nullptr) < 20 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    REQUIRE(test::finished_in(journal, nullptr) >= 20);
    REQUIRE(flowy::Trace::load(journal).runs().back().outcome == flowy::TraceRun::Outcome::running);
    auto warnings = flowy::Trace::convert_to_jsonl(journal, jsonl);  // what `flowy export` does
    REQUIRE(slurp(jsonl).front() == '{');
    auto w = reduce();
    CHECK(w.resume(jsonl) == 599 * 600 / 2);
    std::string text = slurp(jsonl);
    CHECK(text.front() == '{');
    CHECK(text.find('\0') == std::string::npos);
    auto t = flowy::Trace::load(jsonl);
    REQUIRE(t.runs().size() == 2);
    CHECK(t.runs()[1].resumed);
    CHECK(t.runs()[1].outcome == flowy::TraceRun::Outcome::finished);
    std::size_t cached = 0;
    for (const auto& task : t.tasks()) cached += task.cached;
    CHECK(cached >= 20);

    // A trace written by an earlier release (JSON Lines, an older format version).
    auto old = flowy::Trace::load(std::string(FLOWY_TEST_DATA) + "/seed.jsonl");
    CHECK(old.runs().at(0).outcome == flowy::TraceRun::Outcome::finished);
    std::remove(journal.c_str());
    std::remove(jsonl.c_str());
}

TEST_CASE("a failed attempt names the worker it failed on, also in a thread pool (whose dispatch cannot)") {
    test::NoLeaks no_leaks;
    struct Fails {
        Activity<int(int)> boom{"boom"};
        Result<int> operator()() { return boom(1); }
    };
    for (const char* name : {"worker.trace", "worker.jsonl"}) {
        CAPTURE(name);
        std::string path = temp_path(name);
        auto w = test::on<Fails>(flowy::Executor::threads, 2, [](std::string_view) {});
        w.conf_activity("boom", boom).trace(path);
        CHECK_THROWS(w.run());
        auto t = flowy::Trace::load(path);
        REQUIRE(t.tasks().size() == 1);
        CHECK(t.tasks()[0].state == TraceTask::State::failed);
        CHECK(t.tasks()[0].worker >= 0);
        CHECK(t.tasks()[0].worker < 2);
        std::string lines = t.jsonl();
        std::size_t at = lines.find("\"event\":\"task_failed\"");
        REQUIRE(at != std::string::npos);
        CHECK(lines.substr(at, lines.find('\n', at) - at).find("\"worker\":") != std::string::npos);
        std::remove(path.c_str());
    }
}

TEST_CASE("Trace::jsonl reads the file again, and refuses one that changed since it was loaded") {
    std::string path = temp_path("changed.trace");
    auto w = test::on<test::Seed>(flowy::Executor::synchronous);
    w.conf_activity("square", [](int x) { return x * x; }).conf_activity("sum", add).trace(path);
    REQUIRE(w.run(2, 10) == 104);
    auto t = flowy::Trace::load(path);
    std::string lines = t.jsonl();
    CHECK(std::count(lines.begin(), lines.end(), '\n') == 11);
    spit(path, slurp(path) + std::string(10, '\0'));
    CHECK_THROWS_WITH_AS(t.jsonl(), doctest::Contains("changed since it was loaded"), flowy::TraceError);
    CHECK_THROWS_AS(t.write_jsonl("/nonexistent-dir/x.jsonl"), flowy::TraceError);
    std::remove(path.c_str());
}

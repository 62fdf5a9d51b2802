// SEMANTICS.md rows 1-3, 5-10 and the argument forms, on every executor.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using flowy::Activity;
using flowy::Result;
using test::Shared;

namespace {

int square_meeting(int n) {
    Shared::get().counter[0] += test::rendezvous() ? 1 : 0;
    return n * n;
}
int sum(int a, int b) {
    return a + b;
}

}  // namespace

TEST_CASE("the seed example gives 104 and runs both squares at once") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        Shared::get().meet = e == flowy::Executor::synchronous ? 1 : 2;
        auto w = test::on<test::Seed>(e);
        w.conf_activity("square", square_meeting);
        w.conf_activity("sum", sum);
        CHECK(w.run(2, 10) == 104);
        CHECK(Shared::get().counter[0] == 2);  // each square met the expected company
        // both squares inside their calls at once; on `synchronous`, one task at a time by design
        CHECK(Shared::get().max_running == (e == flowy::Executor::synchronous ? 1 : 2));
    }
}

namespace {
int step(int x) {
    test::rendezvous(0ms);
    return x + 1;
}
struct Chain {
    Activity<int(int)> t{"t"};
    Result<int> operator()() {
        Result<int> acc = t(0);
        for (int i = 0; i < 5; ++i) acc = t(acc);
        return acc;
    }
};
}  // namespace

TEST_CASE("a chain runs strictly one task after another") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<Chain>(e, 4);
        w.conf_activity("t", step);
        CHECK(w.run() == 6);
        CHECK(Shared::get().max_running == 1);
    }
}

namespace {
int identity_meeting(int i) {
    test::rendezvous();
    return i;
}
struct FanOut {
    Activity<int(int)> t{"t"};
    std::vector<int> operator()() {
        std::vector<Result<int>> rs;
        for (int i = 0; i < 4; ++i) rs.push_back(t(i));
        std::vector<int> out;
        for (auto& r : rs) out.push_back(r.get());
        return out;
    }
};
int reverse_finish(int i) {
    // the later the call, the sooner it finishes
    Shared& s = Shared::get();
    while (s.counter[1].load() != 3 - i) std::this_thread::yield();
    ++s.counter[1];
    return i * 10;
}
}  // namespace

TEST_CASE("a fan-out runs concurrently and gives values in call order") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        Shared::get().meet = e == flowy::Executor::synchronous ? 1 : 4;
        auto w = test::on<FanOut>(e, 4);
        w.conf_activity("t", identity_meeting);
        CHECK(w.run() == std::vector<int>{0, 1, 2, 3});
        CHECK(Shared::get().max_running == (e == flowy::Executor::synchronous ? 1 : 4));
    }
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {
        CAPTURE(test::name(e));
        Shared::reset();
        auto w = test::on<FanOut>(e, 4);
        w.conf_activity("t", reverse_finish);  // finish order 3, 2, 1, 0
        CHECK(w.run() == std::vector<int>{0, 10, 20, 30});
    }
}

namespace {
int boom(int) {
    throw std::runtime_error("boom");
}
int twice(int x) {
    ++Shared::get().calls;
    return 2 * x;
}
struct Uncaught {
    Activity<int(int)> t{"t"};
    Result<int> operator()() { return t(1); }
};
struct ReadsFailure {
    Activity<int(int)> t{"t"};
    Activity<int(int)> ok{"ok"};
    int operator()() {
        auto a = ok(1);
        auto b = t(2);  // t-0-0 fails
        return a.get() + b.get();
    }
};
}  // namespace

TEST_CASE("an activity's exception fails the run with its message, type and task id") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<ReadsFailure>(e);
        w.conf_activity("t", boom);
        w.conf_activity("ok", twice);
        try {
            w.run();
            FAIL("run() did not throw");
        } catch (const flowy::TaskError& err) {
            CHECK(std::string(err.what()) == "boom");
            CHECK(err.type() == "std::runtime_error");
            CHECK(err.task() == "t-0-0");
        }
        auto u = test::on<Uncaught>(e);
        u.conf_activity("t", boom);
        CHECK_THROWS_WITH_AS(u.run(), "boom", flowy::TaskError);
    }
}

namespace {
struct Catches {
    Activity<int(int)> t{"t"};
    int operator()() {
        auto r = t(1);
        try {
            return r.get();
        } catch (const flowy::TaskError& e) {
            return e.task() == "t-0-0" ? -1 : -2;
        }
    }
};
}  // namespace

TEST_CASE("a body that catches the failure finishes normally") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<Catches>(e);
        w.conf_activity("t", boom);
        CHECK(w.run() == -1);
    }
}

namespace {
struct Ignores {
    Activity<int(int)> t{"t"};
    Activity<int(int)> ok{"ok"};
    Result<int> operator()() {
        t(1);  // fails, never read
        return ok(3);
    }
};
}  // namespace

TEST_CASE("a failure never read does not fail the run, and the log says it was ignored") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        test::Log log;
        auto w = test::on<Ignores>(e);
        w.conf_activity("t", boom);
        w.conf_activity("ok", twice);
        w.log(log.sink());
        CHECK(w.run() == 6);
        CHECK(log.text.find("task t-0-0 failed") != std::string::npos);
        CHECK(log.text.find("ignored") != std::string::npos);
        CHECK(log.text.find("boom") != std::string::npos);
    }
}

namespace {
int boom_after_flag(int) {
    test::wait_for_flag();
    throw std::runtime_error("late boom");
}
struct FailedBefore {
    Activity<int(int)> bad{"bad"};
    Activity<int(int)> t{"t"};
    Result<int> operator()() {
        auto x = bad(1);
        try {
            x.get();
        } catch (const flowy::TaskError&) {
        }
        return t(x);  // x has already failed
    }
};
struct FailsAfter {
    Activity<int(int)> bad{"bad"};
    Activity<int(int)> t{"t"};
    Activity<int(int)> other{"other"};
    Result<int> operator()() {
        auto x = bad(1);
        auto y = t(x);           // x still running
        auto z = t(y);           // and a dependent of the dependent
        Shared::get().flag = 1;  // now let x fail
        other(5).get();
        return z;
    }
};
}  // namespace

TEST_CASE("a failed input fails the dependent task without running it, before or after the call") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto before = test::on<FailedBefore>(e);
        before.conf_activity("bad", boom);
        before.conf_activity("t", twice);
        try {
            before.run();
            FAIL("run() did not throw");
        } catch (const flowy::TaskError& err) {
            CHECK(std::string(err.what()) == "boom");
            CHECK(err.task() == "bad-0-0");
        }
        CHECK(Shared::get().calls == 0);

        Shared::reset();
        auto after = test::on<FailsAfter>(e);
        after.conf_activity("bad", boom_after_flag);
        after.conf_activity("t", twice);
        after.conf_activity("other", [](int x) { return x; });
        try {
            after.run();
            FAIL("run() did not throw");
        } catch (const flowy::TaskError& err) {
            CHECK(std::string(err.what()) == "late boom");
            CHECK(err.task() == "bad-0-0");
        }
        CHECK(Shared::get().calls == 0);
    }
}

namespace {
struct TwoFailed {
    Activity<int(int)> bad{"bad"};
    Activity<int(int)> worse{"worse"};
    Activity<int(int, int)> t{"t"};
    Result<int> operator()() {
        auto a = bad(1);
        try {
            a.get();  // a has failed before b is even called
        } catch (const flowy::TaskError&) {
        }
        auto b = worse(2);
        try {
            b.get();
        } catch (const flowy::TaskError&) {
        }
        return t(b, a);  // b listed first, a failed first
    }
};
int worse(int) {
    throw std::logic_error("worse");
}
bool blocker(int) {
    return test::wait_for_flag();
}
struct ErrorBeatsUnfinished {
    Activity<bool(int)> block{"block"};
    Activity<int(int)> bad{"bad"};
    Activity<int(bool, int)> t{"t"};
    std::string operator()() {
        auto b = block(0);  // runs until released
        auto a = bad(1);
        auto r = t(b, a);
        std::string seen;
        try {
            r.get();
        } catch (const flowy::TaskError& e) {
            seen = e.what();
        }
        Shared::get().flag = 1;
        return seen + (b.get() ? "" : " (b timed out)");
    }
};
}  // namespace

TEST_CASE("of two failed inputs the earlier wins; an error wins over an unfinished input") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<TwoFailed>(e);
        w.conf_activity("bad", boom);
        w.conf_activity("worse", worse);
        w.conf_activity("t", sum);
        CHECK_THROWS_WITH_AS(w.run(), "boom", flowy::TaskError);
    }
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {  // synchronous cannot block
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<ErrorBeatsUnfinished>(e);
        w.conf_activity("block", blocker);
        w.conf_activity("bad", boom);
        w.conf_activity("t", [](bool, int x) { return x; });
        CHECK(w.run() == "boom");
    }
}

namespace {
struct BodyThrows {
    Activity<int(int)> t{"t"};
    int operator()() {
        t(1).get();
        throw std::domain_error("the body gave up");
    }
};
struct CtorThrows {
    Activity<int(int)> t{"t"};
    CtorThrows() { throw std::invalid_argument("no constructor today"); }
    int operator()() { return t(1).get(); }
};
}  // namespace

TEST_CASE("an exception from the body or the constructor fails the run") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<BodyThrows>(e);
        w.conf_activity("t", twice);
        try {
            w.run();
            FAIL("run() did not throw");
        } catch (const flowy::TaskError& err) {
            CHECK(std::string(err.what()) == "the body gave up");
            CHECK(err.type() == "std::domain_error");
        }
        auto c = test::on<CtorThrows>(e);
        c.conf_activity("t", twice);
        CHECK_THROWS_WITH_AS(c.run(), "no constructor today", flowy::TaskError);
        CHECK(Shared::get().calls == 1);  // only BodyThrows' task ran
    }
}

namespace {
long total(std::vector<int> xs) {
    long s = 0;
    for (int x : xs) s += x;
    return s;
}
std::string label(std::string prefix, long n, std::vector<std::string> tags) {
    for (auto& t : tags) prefix += "," + t;
    return prefix + ":" + std::to_string(n);
}
void touch(int) {
    ++Shared::get().calls;
}
struct Mixed {
    Activity<int(int)> sq{"sq"};
    Activity<long(std::vector<int>)> total{"total"};
    Activity<std::string(std::string, long, std::vector<std::string>)> label{"label"};
    Activity<void(int)> touch{"touch"};
    Result<std::string> operator()(int n) {
        std::vector<Result<int>> squares;
        for (int i = 1; i <= n; ++i) squares.push_back(sq(i));
        Result<long> t = total(squares);
        Result<void> done = touch(1);
        done.get();
        std::vector<Result<std::string>> tags{std::string("a"), std::string("b")};
        return label("sum", t, tags);  // a literal, a Result<long>, a vector of finished Results
    }
};
}  // namespace

TEST_CASE("arguments: values, Results, vectors of Results, void activities; same on every executor") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<Mixed>(e);
        w.conf_activity("sq", [](int x) { return x * x; });
        w.conf_activity("total", total);
        w.conf_activity("label", label);
        w.conf_activity("touch", touch);
        CHECK(w.run(10) == "sum,a,b:385");
        CHECK(Shared::get().calls == 1);
    }
}

namespace {
struct Ids {
    Activity<int(int)> square{"square"};
    Activity<int(int, int)> sum{"sum"};
    std::vector<std::string> operator()() {
        std::vector<std::string> ids;
        auto a = square(1);
        try {
            a.get();  // a fails before b is called: c gets a's error
        } catch (const flowy::TaskError&) {
        }
        auto b = square(2);
        auto c = sum(b, a);
        for (auto* r : {&a, &b, &c}) {
            try {
                r->get();
            } catch (const flowy::TaskError& e) {
                ids.push_back(e.task());
            }
        }
        return ids;
    }
};
}  // namespace

TEST_CASE("task ids are <dependency>-<call index>-<attempt>, counted per dependency") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        auto w = test::on<Ids>(e);
        w.conf_activity("square", boom);
        w.conf_activity("sum", sum);
        // sum-0-0 carries square-0-0's error: it never ran
        CHECK(w.run() == std::vector<std::string>{"square-0-0", "square-1-0", "square-0-0"});
    }
}

namespace {
struct Many {
    Activity<int(int)> t{"t"};
    long operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        long s = 0;
        for (auto& r : rs) s += r.get();
        Result<int> acc = 0;
        for (int i = 0; i < 200; ++i) acc = t(acc);
        return s + acc.get();
    }
};
}  // namespace

TEST_CASE("many tasks: a 5,000-task fan-out and a 200-task chain give the same sum everywhere") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<Many>(e);
        w.conf_activity("t", [](int x) { return x + 1; });
        CHECK(w.run(5000) == 5000L * 5001 / 2 + 200);
    }
}

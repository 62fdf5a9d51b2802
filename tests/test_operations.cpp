// wait, first, finish_order, parallel_reduce, restart and child workflows
// (SEMANTICS.md rows 4, 11-15), on every executor and in direct mode.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"

#include <algorithm>
#include <ranges>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using flowy::Activity;
using flowy::Result;
using test::Shared;

static_assert(std::ranges::input_range<flowy::FinishOrder<int>>);
static_assert(std::ranges::view<flowy::FinishOrder<int>>);

namespace {

int slow_then_mark(int x) {
    test::wait_for_flag(50ms);
    Shared::get().counter[0] = 1;  // finished
    return x;
}
int sees_mark(int x) {
    Shared::get().counter[1] = Shared::get().counter[0].load();
    return x;
}
int boom(int) {
    throw std::runtime_error("boom");
}

struct WaitsFirst {
    Activity<int(int)> slow{"slow"};
    Activity<int(int)> other{"other"};
    Result<int> operator()() {
        auto a = slow(1);
        flowy::wait(a);
        return other(a.get() + 1);
    }
};

}  // namespace

TEST_CASE("wait suspends the body, so nothing after it is dispatched while the result runs") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<WaitsFirst>(e);
        w.conf_activity("slow", slow_then_mark);
        w.conf_activity("other", sees_mark);
        CHECK(w.run() == 2);
        CHECK(Shared::get().counter[1] == 1);  // `other` started after `slow` had finished
    }
    struct WaitsFailure {
        Activity<int(int)> bad{"bad"};
        std::string operator()() {
            try {
                flowy::wait(bad(1));
                return "no throw";
            } catch (const flowy::TaskError& e) {
                return e.what();
            }
        }
    };
    auto w = test::on<WaitsFailure>(flowy::Executor::processes);
    w.conf_activity("bad", boom);
    CHECK(w.run() == "boom");
}

namespace {
int blocked(int x) {
    test::wait_for_flag();
    return x;
}
int prompt(int x) {
    return x;
}
struct FirstOfTwo {
    Activity<int(int)> blocked{"blocked"};
    Activity<int(int)> prompt{"prompt"};
    std::vector<int> operator()() {
        auto a = blocked(1);
        auto b = prompt(2);
        int winner = flowy::first(a, b).get();
        Shared::get().flag = 1;
        Result<int> plain = 7;
        int plain_first = flowy::first(prompt(3), plain).get();
        return {winner, plain_first, a.get()};
    }
};
struct FirstFailed {
    Activity<int(int)> blocked{"blocked"};
    Activity<int(int)> bad{"bad"};
    std::string operator()() {
        auto a = blocked(1);
        std::vector<Result<int>> rs{a, bad(2)};
        auto f = flowy::first(rs);
        Shared::get().flag = 1;
        try {
            f.get();
            return "no throw";
        } catch (const flowy::TaskError& e) {
            return e.task();
        }
    }
};
}  // namespace

TEST_CASE("first gives the result that finished first, failed ones included, plain values before tasks") {
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {  // synchronous cannot block one task
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<FirstOfTwo>(e);
        w.conf_activity("blocked", blocked);
        w.conf_activity("prompt", prompt);
        CHECK(w.run() == std::vector<int>{2, 7, 1});

        Shared::reset();
        auto f = test::on<FirstFailed>(e);
        f.conf_activity("blocked", blocked);
        f.conf_activity("bad", boom);
        CHECK(f.run() == "bad-0-0");
    }
    SUBCASE("synchronous: the first one dispatched finishes first") {
        struct Flow {
            Activity<int(int)> t{"t"};
            int operator()() {
                auto a = t(1);  // dispatched first (not in one call expression: argument order is unspecified)
                auto b = t(2);
                return flowy::first(b, a).get();
            }
        };
        auto w = test::on<Flow>(flowy::Executor::synchronous);
        w.conf_activity("t", prompt);
        CHECK(w.run() == 1);
    }
    SUBCASE("direct mode: the earliest made") {
        Activity<int(int)> t = prompt;
        auto a = t(1);
        auto b = t(2);
        CHECK(flowy::first(b, a).get() == 1);
        CHECK_THROWS_AS(flowy::first(std::vector<Result<int>>{}), std::invalid_argument);
    }
}

namespace {
int reverse_finish(int i) {
    // Call i may finish once the body has seen call i+1 finish: the finish order is 3, 2, 1, 0.
    Shared& s = Shared::get();
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (s.counter[2].load() < 3 - i)
        if (std::chrono::steady_clock::now() > deadline)
            return -1;  // shows in the order checked below
        else
            std::this_thread::yield();
    return i;
}
void seen_by_body(int v) {
    auto& released = Shared::get().counter[2];
    released = std::max(released.load(), 4 - v);
}
struct TakeTwo {
    Activity<int(int)> t{"t"};
    std::vector<int> operator()() {
        std::vector<Result<int>> rs;
        for (int i = 0; i < 4; ++i) rs.push_back(t(i));
        std::vector<int> seen;
        for (Result<int> r : flowy::finish_order(rs) | std::views::take(2)) {
            seen.push_back(r.get());
            seen_by_body(seen.back());
        }
        for (Result<int> r : flowy::finish_order(rs)) {  // all four, in order
            seen.push_back(r.get());
            seen_by_body(seen.back());
        }
        return seen;
    }
};
}  // namespace

TEST_CASE("finish_order gives the earliest finished, in finish order, reading as it goes") {
    for (auto e : {flowy::Executor::processes, flowy::Executor::threads}) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        auto w = test::on<TakeTwo>(e, 4);
        w.conf_activity("t", reverse_finish);
        CHECK(w.run() == std::vector<int>{3, 2, 3, 2, 1, 0});
    }
    SUBCASE("synchronous and direct mode: dispatch order is finish order") {
        struct Flow {
            Activity<int(int)> t{"t"};
            std::vector<int> operator()() {
                std::vector<Result<int>> rs{t(5), t(6), t(7)};
                std::vector<int> out;
                std::ranges::transform(flowy::finish_order(rs), std::back_inserter(out),
                                       [](Result<int> r) { return r.get(); });
                return out;
            }
        };
        auto w = test::on<Flow>(flowy::Executor::synchronous);
        w.conf_activity("t", prompt);
        CHECK(w.run() == std::vector<int>{5, 6, 7});
        Flow direct;
        direct.t = prompt;
        CHECK(direct() == std::vector<int>{5, 6, 7});
    }
}

namespace {
std::string cat(std::string a, std::string b) {
    ++Shared::get().calls;
    return "(" + a + "+" + b + ")";
}
std::string name_of(int i) {
    return std::to_string(i);
}
struct Reduce {
    Activity<std::string(int)> name{"name"};
    Activity<std::string(std::string, std::string)> cat{"cat"};
    std::string operator()(int n) {
        std::vector<Result<std::string>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(name(i));
        return flowy::parallel_reduce(cat, rs).get();
    }
};
long add(long a, long b) {
    ++Shared::get().calls;
    return a + b;
}
long value(long x) {
    return x;
}
struct Sum {
    Activity<long(long)> v{"v"};
    Activity<long(long, long)> add{"add"};
    Result<long> operator()(int n) {
        std::vector<Result<long>> rs;
        for (int i = 1; i <= n; ++i) rs.push_back(i % 3 ? v(i) : Result<long>(i));  // some plain values
        return flowy::parallel_reduce(add, rs);
    }
};
}  // namespace

TEST_CASE("parallel_reduce makes n-1 reduce tasks pairing the earliest finished, same value as a fold") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        for (int n : {1, 2, 7, 100}) {
            CAPTURE(n);
            Shared::reset();
            auto w = test::on<Sum>(e);
            w.conf_activity("v", value);
            w.conf_activity("add", add);
            CHECK(w.run(n) == long(n) * (n + 1) / 2);
            CHECK(Shared::get().calls == n - 1);
        }
    }
    SUBCASE("the pairing follows finish order") {
        Shared::reset();
        auto w = test::on<Reduce>(flowy::Executor::synchronous);
        w.conf_activity("name", name_of);
        w.conf_activity("cat", cat);
        CHECK(w.run(4) == "((0+1)+(2+3))");
        Reduce direct;
        direct.name = name_of;
        direct.cat = cat;
        CHECK(direct(4) == "((0+1)+(2+3))");
        CHECK(direct(5) == "((2+3)+(4+(0+1)))");
    }
    SUBCASE("no input is an error") {
        Activity<long(long, long)> a = add;
        CHECK_THROWS_AS(flowy::parallel_reduce(a, std::vector<Result<long>>{}), std::invalid_argument);
    }
}

namespace {
int dec(int n) {
    return n - 1;
}
int plus(int a, int b) {
    return a + b;
}
struct Countdown {
    Activity<int(int)> dec{"dec"};
    Activity<int(int, int)> plus{"plus"};
    Result<int> operator()(int n, int acc) {
        if (n == 0) return acc;
        return flowy::restart(dec(n), plus(acc, n));  // unfinished arguments are waited for
    }
};
struct RestartFails {
    Activity<int(int)> bad{"bad"};
    Result<int> operator()(int n, int) {
        if (n == 0) return 0;
        return flowy::restart(bad(n), 2);
    }
};
struct RestartWrongTypes {
    Result<int> operator()(int n) {
        if (n == 0) return 0;
        return flowy::restart(std::string("x"));
    }
};
}  // namespace

TEST_CASE("restart continues as new with the given arguments; a failed argument fails the run") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        auto w = test::on<Countdown>(e);
        w.conf_activity("dec", dec);
        w.conf_activity("plus", plus);
        CHECK(w.run(10, 0) == 55);

        auto f = test::on<RestartFails>(e);
        f.conf_activity("bad", boom);
        CHECK_THROWS_WITH_AS(f.run(3, 0), "boom", flowy::TaskError);

        auto t = test::on<RestartWrongTypes>(e);
        CHECK_THROWS_WITH_AS(t.run(1), doctest::Contains("do not match the parameters"), flowy::TaskError);
    }
}

namespace {
int square(int x) {
    Shared& s = Shared::get();
    int me = getpid();
    for (auto& c : s.counter)  // record each distinct pid once
        for (int seen = c.load();;) {
            if (seen == me) return x * x;
            if (seen == 0 && c.compare_exchange_strong(seen, me)) return x * x;
            if (seen != 0) break;
        }
    return x * x;
}
struct SumOfSquares {  // a child: map/reduce
    Activity<int(int)> square{"square"};
    Activity<int(int, int)> plus{"plus"};
    Result<int> operator()(int n) {
        std::vector<Result<int>> rs;
        for (int i = 1; i <= n; ++i) rs.push_back(square(i));
        return flowy::parallel_reduce(plus, rs);
    }
};
struct Parent {  // a map/reduce of map/reduce children
    flowy::Workflow<int(int)> child{"child"};
    Activity<int(int, int)> plus{"plus"};
    Result<int> operator()(int k) {
        std::vector<Result<int>> rs;
        for (int i = 1; i <= k; ++i) rs.push_back(child(i));
        return flowy::parallel_reduce(plus, rs);
    }
};
struct Grandparent {
    flowy::Workflow<int(int)> parent{"parent"};
    Result<int> operator()(int k) { return parent(k); }
};
struct FailingChild {
    Activity<int(int)> bad{"bad"};
    Result<int> operator()(int x) { return bad(x); }
};
struct ParentOfFailing {
    flowy::Workflow<int(int)> child{"child"};
    std::vector<std::string> operator()() {
        try {
            child(1).get();
            return {"no throw"};
        } catch (const flowy::TaskError& e) {
            return {e.what(), e.task()};
        }
    }
};
int sum_of_squares(int n) {
    return n * (n + 1) * (2 * n + 1) / 6;
}
}  // namespace

TEST_CASE("child workflows give their value as a result, share the worker pool, and nest") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        flowy::LocalWorkflow<SumOfSquares> child;
        child.conf_activity("square", square);
        child.conf_activity("plus", plus);
        flowy::LocalWorkflow<Parent> parent;
        parent.conf_workflow("child", child);
        parent.conf_activity("plus", plus);
        auto w = test::on<Grandparent>(e);
        w.conf_workflow("parent", parent);
        int expected = 0;
        for (int i = 1; i <= 6; ++i) expected += sum_of_squares(i);
        CHECK(w.run(6) == expected);
        int pids = 0;
        for (auto& c : Shared::get().counter) pids += c.load() != 0;
        if (e == flowy::Executor::processes) {
            CHECK(pids >= 1);
            CHECK(pids <= 2);  // every task of every child ran on the run's 2 workers
        } else {
            CHECK(pids == 1);  // this process
        }
    }
}

TEST_CASE("a child's failure is a TaskError in the parent carrying the child's message") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        flowy::LocalWorkflow<FailingChild> child;
        child.conf_activity("bad", boom);
        auto w = test::on<ParentOfFailing>(e);
        w.conf_workflow("child", child);
        CHECK(w.run() == std::vector<std::string>{"boom", "child-0-0/bad-0-0"});
    }
}

TEST_CASE("child workflows are checked before any task runs") {
    Shared::reset();
    flowy::LocalWorkflow<SumOfSquares> child;
    child.conf_activity("square", square);  // "plus" missing
    flowy::LocalWorkflow<Parent> w;
    w.conf_workflow("child", child);
    w.conf_activity("plus", plus);
    CHECK_THROWS_WITH_AS(w.run(2), doctest::Contains("'plus'"), flowy::ConfigError);
    flowy::LocalWorkflow<Parent> unbound;
    unbound.conf_activity("plus", plus);
    CHECK_THROWS_WITH_AS(unbound.run(2), doctest::Contains("conf_workflow(\"child\""), flowy::ConfigError);
    flowy::LocalWorkflow<Parent> wrong;
    wrong.conf_activity("child", square);
    wrong.conf_activity("plus", plus);
    CHECK_THROWS_WITH_AS(wrong.run(2), doctest::Contains("configured with conf_activity"), flowy::ConfigError);
    CHECK(Shared::get().calls == 0);
    CHECK(Shared::get().counter[0] == 0);  // no square ran
}

TEST_CASE("direct mode: a child workflow is a callable") {
    Parent p;
    p.child = [](int n) {
        SumOfSquares c;
        c.square = [](int x) { return x * x; };
        c.plus = plus;
        return c(n).get();
    };
    p.plus = plus;
    CHECK(p(3).get() == 1 + 5 + 14);
}

TEST_CASE("direct mode: run_direct follows restart; a restart result is not a value") {
    Countdown w;
    w.dec = dec;
    w.plus = plus;
    CHECK(flowy::run_direct(w, 10, 0) == 55);
    CHECK_THROWS_WITH_AS(w(3, 0).get(), doctest::Contains("run_direct"), std::logic_error);
    RestartFails f;
    f.bad = boom;
    CHECK_THROWS_WITH_AS(flowy::run_direct(f, 3, 0), "boom", flowy::TaskError);
    RestartWrongTypes t;
    CHECK_THROWS_WITH_AS(flowy::run_direct(t, 1), doctest::Contains("do not match"), flowy::TaskError);
}

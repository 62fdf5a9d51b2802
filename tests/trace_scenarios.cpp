// Runs one of the workflows the trace tests draw, writing its trace to PATH.
//   trace_scenarios seed|failing|child|large|restart PATH
//   trace_scenarios fanout|chain|batches|alternating|reduce|long-and-short PATH N
// The traces under tests/data/ were made with the first five (their DOT is compared in
// tests); the others are the benchmark's shapes at size N, for the picture-size test.
#include <flowy/flowy.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

int square(int n) {
    return n * n;
}
int sum(int a, int b) {
    return a + b;
}
int fails(int) {
    throw std::runtime_error("no luck today");
}

struct Seed {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int a, int b) { return sum(square(a), square(b)); }
};

struct Failing {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int)> check{"check"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int x) {
        auto a = square(x);
        auto c = check(a.get());   // read first: a control dependency; this one fails
        auto s = sum(a, c);        // skipped: its input failed
        check(x + 1);              // fails too, never read: ignored
        return sum(s, square(3));  // skipped in turn
    }
};

struct SumOfSquares {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        for (int i = 1; i <= n; ++i) rs.push_back(square(i));
        return flowy::parallel_reduce(sum, rs);
    }
};

struct Parent {
    flowy::Workflow<int(int)> child{"child"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()() { return sum(child(2), child(3)); }
};

struct Large {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<long(std::vector<int>)> total{"total"};
    flowy::Result<long> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(square(i));
        return total(rs);
    }
};
long total(std::vector<int> xs) {
    long t = 0;
    for (int x : xs) t += x;
    return t;
}

struct Countdown {
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int n, int acc) {
        if (n == 0) return acc;
        return flowy::restart(n - 1, sum(acc, n));
    }
};

// The benchmark's shapes (bench/flowy_bench.cpp), and deep ones dot must survive.
struct FanOut {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<long(std::vector<int>)> total{"total"};
    flowy::Result<long> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(square(i % 1000));  // no int overflow at 100,000
        return total(rs);
    }
};
struct Chain {
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int n) {
        flowy::Result<int> acc = sum(0, 1);
        for (int i = 1; i < n; ++i) acc = sum(acc, 1);
        return acc;
    }
};
struct Alternating {  // a chain of two activities taking turns: no chain of one kind to fold
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Activity<int(int)> square{"square"};
    flowy::Result<int> operator()(int n) {
        flowy::Result<int> acc = sum(0, 1);
        for (int i = 1; i < n; ++i) acc = i % 2 ? square(sum(acc, -1)) : sum(acc, 1);
        return acc;
    }
};
struct Batches {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<long(std::vector<int>)> total{"total"};
    long operator()(int batches) {
        long t = 0;
        for (int b = 0; b < batches; ++b) {
            std::vector<flowy::Result<int>> rs;
            for (int i = 0; i < 20; ++i) rs.push_back(square(i));
            t += total(rs).get();
        }
        return t;
    }
};
struct Reduce {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(square(i % 100));
        return flowy::parallel_reduce(sum, rs);
    }
};
// The workflow of issue 13: a long task, a short one read, N tiny ones reduced, a chain.
struct LongAndShort {
    flowy::Activity<int(int)> sleep_ms{"sleep_ms"};
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int n) {
        auto big = sleep_ms(50);
        sleep_ms(5).get();
        std::vector<flowy::Result<int>> tiny;
        for (int i = 0; i < n; ++i) tiny.push_back(square(i % 10));
        auto acc = flowy::parallel_reduce(sum, tiny);
        for (int i = 0; i < 30; ++i) acc = sum(acc, sleep_ms(1));
        return sum(acc, big);
    }
};
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::cerr << "usage: trace_scenarios seed|failing|child|large|restart PATH\n"
                     "       trace_scenarios fanout|chain|batches|alternating|reduce|long-and-short PATH N\n";
        return 2;
    }
    std::string which = argv[1], path = argv[2];
    int n = argc == 4 ? std::atoi(argv[3]) : 0;
    auto fast = [&](auto& w) -> auto& {  // big shapes: one process, no workers to wait for
        return w.executor(flowy::Executor::synchronous).trace(path).progress(false);
    };
    try {
        if (which == "seed") {
            flowy::LocalWorkflow<Seed> w;
            w.workers(2).trace(path).conf_activity("square", square).conf_activity("sum", sum);
            std::cout << w.run(2, 10) << "\n";
        } else if (which == "failing") {
            flowy::LocalWorkflow<Failing> w;
            w.workers(2).trace(path).log([](std::string_view) {});
            w.conf_activity("square", square).conf_activity("check", fails).conf_activity("sum", sum);
            w.run(4);
        } else if (which == "child") {
            flowy::LocalWorkflow<SumOfSquares> c;
            c.conf_activity("square", square).conf_activity("sum", sum);
            flowy::LocalWorkflow<Parent> w;
            w.workers(2).trace(path).conf_workflow("child", c).conf_activity("sum", sum);
            std::cout << w.run() << "\n";
        } else if (which == "large") {
            flowy::LocalWorkflow<Large> w;
            w.workers(2).trace(path).conf_activity("square", square).conf_activity("total", total);
            std::cout << w.run(1000) << "\n";
        } else if (which == "restart") {
            flowy::LocalWorkflow<Countdown> w;
            w.workers(2).trace(path).conf_activity("sum", sum);
            std::cout << w.run(3, 0) << "\n";
        } else if (which == "fanout") {
            flowy::LocalWorkflow<FanOut> w;
            fast(w).conf_activity("square", square).conf_activity("total", total);
            std::cout << w.run(n) << "\n";
        } else if (which == "chain") {
            flowy::LocalWorkflow<Chain> w;
            fast(w).conf_activity("sum", sum);
            std::cout << w.run(n) << "\n";
        } else if (which == "alternating") {
            flowy::LocalWorkflow<Alternating> w;
            fast(w).conf_activity("sum", sum).conf_activity("square", square);
            std::cout << w.run(n) << "\n";
        } else if (which == "batches") {
            flowy::LocalWorkflow<Batches> w;
            fast(w).conf_activity("square", square).conf_activity("total", total);
            std::cout << w.run(n) << "\n";
        } else if (which == "reduce") {
            flowy::LocalWorkflow<Reduce> w;
            w.workers(2).trace(path).conf_activity("square", square).conf_activity("sum", sum);
            std::cout << w.run(n) << "\n";
        } else if (which == "long-and-short") {
            flowy::LocalWorkflow<LongAndShort> w;
            w.workers(2).trace(path).conf_activity("sleep_ms", sleep_ms).conf_activity("square", square);
            w.conf_activity("sum", sum);
            std::cout << w.run(n) << "\n";
        } else {
            std::cerr << "unknown scenario " << which << "\n";
            return 2;
        }
    } catch (const std::exception& e) {
        std::cout << "failed: " << e.what() << "\n";
    }
    return 0;
}

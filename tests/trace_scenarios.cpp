// Runs one of the workflows the trace tests draw, writing its trace to PATH.
//   trace_scenarios seed|failing|child|large|restart PATH
// The traces under tests/data/ were made with it (their DOT is compared in tests).
#include <flowy/flowy.hpp>

#include <iostream>
#include <stdexcept>
#include <string>
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

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: trace_scenarios seed|failing|child|large|restart PATH\n";
        return 2;
    }
    std::string which = argv[1], path = argv[2];
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
        } else {
            std::cerr << "unknown scenario " << which << "\n";
            return 2;
        }
    } catch (const std::exception& e) {
        std::cout << "failed: " << e.what() << "\n";
    }
    return 0;
}

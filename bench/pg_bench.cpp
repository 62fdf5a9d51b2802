// The PostgreSQL engine's benchmark legs (bench/postgres.sh runs them on a throwaway cluster):
//   pg_bench CONNINFO serve                 a serving process (2 local workers)
//   pg_bench CONNINFO fanout N              W1: N empty tasks and their total, decided here with workers(0)
//   pg_bench CONNINFO chain N               W2: a chain of N dependent empty tasks, decided here with workers(0)
// fanout and chain print "<seconds>" of the run() call.
#include <flowy/flowy.hpp>
#include <flowy/postgres.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {
int inc(int x) {
    return x + 1;
}
int total(std::vector<int> v) {
    return std::accumulate(v.begin(), v.end(), 0);
}
struct Bench {
    flowy::Activity<int(int)> inc{"inc"};
    flowy::Activity<int(std::vector<int>)> total{"total"};
    flowy::Result<int> operator()(int mode, int n) {
        if (mode == 0) {
            std::vector<flowy::Result<int>> v;
            v.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) v.push_back(inc(i));
            return total(v);
        }
        flowy::Result<int> x = 0;
        for (int i = 0; i < n; ++i) x = inc(x);
        return x;
    }
};
}  // namespace

int main(int argc, char** argv) try {
    if (argc < 3) return 2;
    flowy::PostgresWorkflow<Bench> w{argv[1]};
    w.conf_activity("inc", inc).conf_activity("total", total).progress(false);
    std::string cmd = argv[2];
    if (cmd == "serve") {
        w.workers(2).serve();
        return 0;
    }
    if (argc < 4) return 2;
    int n = std::atoi(argv[3]);
    w.workers(0);
    auto t0 = std::chrono::steady_clock::now();
    int v = w.run(cmd == "fanout" ? 0 : 1, n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int want = cmd == "fanout" ? n * (n + 1) / 2 : n;
    if (v != want) {
        std::cerr << "pg_bench: wrong value " << v << ", expected " << want << '\n';
        return 1;
    }
    std::cout << s << '\n';
} catch (const std::exception& e) {
    std::cerr << "pg_bench: " << e.what() << '\n';
    return 1;
}

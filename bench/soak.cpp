// Soak: 100,000 tasks with random sleeps, of which 1% crash their worker and 1% run
// past their timeout, on 2 workers. The final tally must equal the expected one
// exactly. Prints one JSON line: wall time, peak RSS, the tally.
//   soak [N] [--timeout-ms 20]
#include <flowy/flowy.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Fate { ok, crash, timeout };

std::uint64_t mix(std::uint64_t x) {  // splitmix64: the same fate for task i in body and worker
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
Fate fate(int i) {
    std::uint64_t h = mix(static_cast<std::uint64_t>(i));
    if (h % 100 == 0) return Fate::crash;
    if (h % 100 == 1) return Fate::timeout;
    return Fate::ok;
}

int work(int i) {
    std::uint64_t h = mix(static_cast<std::uint64_t>(i) + 1000003);
    switch (fate(i)) {
        case Fate::crash:
            raise(SIGKILL);
            break;
        case Fate::timeout:
            std::this_thread::sleep_for(std::chrono::seconds(10));
            break;
        case Fate::ok:
            std::this_thread::sleep_for(std::chrono::microseconds(h % 100));
            break;  // 0-99 µs
    }
    return i;
}

struct Tally {
    long ok = 0, crashed = 0, timed_out = 0, wrong = 0;
};

struct Soak {
    flowy::Activity<int(int)> work{"work"};
    std::vector<long> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        rs.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) rs.push_back(work(i));
        Tally t;
        for (int i = 0; i < n; ++i) {
            Fate f = fate(i);
            try {
                int v = rs[static_cast<std::size_t>(i)].get();
                ++t.ok;
                t.wrong += f != Fate::ok || v != i;
            } catch (const flowy::TaskTimedout&) {
                ++t.timed_out;
                t.wrong += f != Fate::timeout;
            } catch (const flowy::WorkerCrashed&) {
                ++t.crashed;
                t.wrong += f != Fate::crash;
            }
        }
        return {t.ok, t.crashed, t.timed_out, t.wrong};
    }
};

}  // namespace

int main(int argc, char** argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 100000;
    int timeout_ms = 20;
    for (int i = 2; i + 1 < argc; i += 2)
        if (std::string(argv[i]) == "--timeout-ms") timeout_ms = std::atoi(argv[i + 1]);
    long expect[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i) ++expect[static_cast<int>(fate(i))];

    flowy::LocalWorkflow<Soak> w;
    w.workers(2).log([](std::string_view) {});
    w.conf_activity("work", work, {.timeout = std::chrono::milliseconds(timeout_ms)});
    auto t0 = std::chrono::steady_clock::now();
    auto tally = w.run(n);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    bool exact = tally[0] == expect[0] && tally[1] == expect[1] && tally[2] == expect[2] && tally[3] == 0;
    std::printf(
        "{\"n\": %d, \"wall_s\": %.3f, \"peak_rss_kib\": %ld, \"ok\": %ld, \"crashed\": %ld, "
        "\"timed_out\": %ld, \"wrong\": %ld, \"expected\": [%ld, %ld, %ld], \"exact\": %s}\n",
        n, wall, ru.ru_maxrss, tally[0], tally[1], tally[2], tally[3], expect[0], expect[1], expect[2],
        exact ? "true" : "false");
    return exact ? 0 : 1;
}

// flowy's side of the benchmarks: one workload per invocation, one JSON line out.
//   flowy_bench WORKLOAD N [--executor processes|threads|synchronous] [--workers 2]
// Workloads: fanout (N independent tasks, then one taking all results), chain (N
// dependent tasks), batches (N batches of 20 parallel tasks, each joined), startup
// (engine start, one task, shutdown; N runs), payload (N bytes in and out); W7's mixed
// (N tasks sleeping the microseconds listed, one per line, in the file named by
// $FLOWY_BENCH_DURATIONS) and long-and-short (a 1 s task, a 50 ms one read, N tiny ones
// reduced pairwise, a chain of 30 steps of 20 ms); W8's commands (N independent
// `true` commands) and command-chain (N `true` commands, each after the one before), and
// their reference spawn / spawn-chain (posix_spawn and waitpid, 2 at a time, no engine).
#include <flowy/command.hpp>
#include <flowy/flowy.hpp>

#include <spawn.h>
#include <sys/wait.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

int empty(int x) {
    return x;
}
long join(std::vector<int> xs) {
    return std::accumulate(xs.begin(), xs.end(), 0L);
}
std::string echo(std::string s) {
    return s;
}
int nap_us(int us) {
    // A task of `us` microseconds: without the default 50 µs timer slack, a sleep
    // overshoots by less (peer.py does the same in its workers).
    static const int slack = prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    (void)slack;
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    return us;
}
int nap_ms(int ms) {
    return nap_us(ms * 1000) / 1000;
}
int add(int a, int b) {
    return a + b;
}
int step(int acc) {  // a step of W7's chain: 20 ms
    nap_ms(20);
    return acc + 1;
}

std::vector<int> durations_us() {
    const char* path = std::getenv("FLOWY_BENCH_DURATIONS");
    std::vector<int> ds;
    std::FILE* f = path ? std::fopen(path, "r") : nullptr;
    if (!f) return ds;
    for (int d; std::fscanf(f, "%d", &d) == 1;) ds.push_back(d);
    std::fclose(f);
    return ds;
}

struct Mixed {
    flowy::Activity<int(int)> nap_us{"nap_us"};
    flowy::Activity<long(std::vector<int>)> join{"join"};
    flowy::Result<long> operator()(std::vector<int> ds) {
        std::vector<flowy::Result<int>> rs;
        for (int d : ds) rs.push_back(nap_us(d));
        return join(rs);
    }
};

struct LongAndShort {
    flowy::Activity<int(int)> nap_ms{"nap_ms"};
    flowy::Activity<int(int)> t{"t"};
    flowy::Activity<int(int, int)> add{"add"};
    flowy::Activity<int(int)> step{"step"};
    flowy::Result<int> operator()(int n) {
        auto big = nap_ms(1000);
        nap_ms(50).get();
        std::vector<flowy::Result<int>> tiny;
        for (int i = 0; i < n; ++i) tiny.push_back(t(i));
        auto acc = flowy::parallel_reduce(add, tiny);
        for (int i = 0; i < 30; ++i) acc = step(acc);
        return add(acc, big);
    }
};

struct FanOut {
    flowy::Activity<int(int)> t{"t"};
    flowy::Activity<long(std::vector<int>)> join{"join"};
    flowy::Result<long> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        rs.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        return join(rs);
    }
};

struct Chain {
    flowy::Activity<int(int)> t{"t"};
    flowy::Result<int> operator()(int n) {
        flowy::Result<int> acc = t(0);
        for (int i = 1; i < n; ++i) acc = t(acc);
        return acc;
    }
};

struct Batches {
    flowy::Activity<int(int)> t{"t"};
    flowy::Activity<long(std::vector<int>)> join{"join"};
    long operator()(int batches) {
        long total = 0;
        for (int b = 0; b < batches; ++b) {
            std::vector<flowy::Result<int>> rs;
            for (int i = 0; i < 20; ++i) rs.push_back(t(i));
            total += join(rs).get();
        }
        return total;
    }
};

struct Startup {
    flowy::Activity<int(int)> t{"t"};
    flowy::Result<int> operator()(int x) { return t(x); }
};

struct Timeout {
    flowy::Activity<int(int)> hang{"hang"};
    std::vector<double> operator()(int n) {  // lateness of each timeout, in ms
        std::vector<double> late;
        for (int i = 0; i < n; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            try {
                hang(i).get();
            } catch (const flowy::TaskTimedout&) {
                late.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() - 20.0);
            }
        }
        return late;
    }
};

int hang(int x) {
    std::this_thread::sleep_for(std::chrono::seconds(10));
    return x;
}

struct Payload {
    flowy::Activity<std::string(std::string)> echo{"echo"};
    std::size_t operator()(std::size_t n) { return echo(std::string(n, 'x')).get().size(); }
};

/// This process's peak RSS since exec (VmHWM). Not getrusage's ru_maxrss: that one keeps
/// the peak of the process before exec, and a benchmark driver forked from a large
/// Python process would report the driver's memory.
long peak_rss_kib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    std::fclose(f);
    return kib;
}

template <class W>
void configure(flowy::LocalWorkflow<W>& w, flowy::Executor e, int workers) {
    w.executor(e).workers(workers);
    if constexpr (requires(W x) { x.t; }) w.conf_activity("t", empty);
    if constexpr (requires(W x) { x.join; }) w.conf_activity("join", join);
    if constexpr (requires(W x) { x.echo; }) w.conf_activity("echo", echo);
    if constexpr (requires(W x) { x.nap_us; }) w.conf_activity("nap_us", nap_us);
    if constexpr (requires(W x) { x.nap_ms; }) w.conf_activity("nap_ms", nap_ms);
    if constexpr (requires(W x) { x.add; }) w.conf_activity("add", add);
    if constexpr (requires(W x) { x.step; }) w.conf_activity("step", step);
}

}  // namespace

// W8: build steps that are programs.
struct Commands {
    flowy::Activity<flowy::CommandResult(flowy::Command)> sh{"sh"};
    int operator()(int n, bool chain) {
        std::vector<flowy::Result<flowy::CommandResult>> all;
        for (int i = 0; i < n; ++i)
            all.push_back(chain && i > 0 ? sh.after(all.back())(flowy::command("true")) : sh(flowy::command("true")));
        int ok = 0;
        for (auto& r : all) ok += r.get().exit_code == 0;
        return ok;
    }
};

extern char** environ;

/// W8's reference: `true` started with posix_spawn, `slots` at a time (1 for a chain).
bool spawn_loop(long n, int slots) {
    char arg0[] = "true";
    char* args[] = {arg0, nullptr};
    long started = 0, running = 0;
    while (started < n || running > 0) {
        while (started < n && running < slots) {
            pid_t pid;
            if (posix_spawnp(&pid, "true", nullptr, nullptr, args, environ) != 0) return false;
            ++started;
            ++running;
        }
        int status = 0;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
        --running;
    }
    return true;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: flowy_bench fanout|chain|batches|startup|payload|memcpy|memcpy-reused|timeout N "
                     "[--executor E] [--workers K]\n");
        return 2;
    }
    std::string workload = argv[1];
    long n = std::stol(argv[2]);
    flowy::Executor e = flowy::Executor::processes;
    int workers = 2;
    for (int i = 3; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--workers") workers = std::stoi(v);
        if (k == "--executor")
            e = v == "threads"       ? flowy::Executor::threads
                : v == "synchronous" ? flowy::Executor::synchronous
                                     : flowy::Executor::processes;
    }
    auto t0 = std::chrono::steady_clock::now();
    long tasks = n;
    if (workload == "fanout") {
        flowy::LocalWorkflow<FanOut> w;
        configure(w, e, workers);
        if (w.run(static_cast<int>(n)) != n * (n - 1) / 2) return 1;
        tasks = n + 1;
    } else if (workload == "chain") {
        flowy::LocalWorkflow<Chain> w;
        configure(w, e, workers);
        if (w.run(static_cast<int>(n)) != 0) return 1;
    } else if (workload == "batches") {
        flowy::LocalWorkflow<Batches> w;
        configure(w, e, workers);
        if (w.run(static_cast<int>(n)) != n * 190) return 1;
        tasks = n * 21;
    } else if (workload == "mixed") {
        std::vector<int> ds = durations_us();
        if (ds.size() != static_cast<std::size_t>(n)) {
            std::fprintf(stderr, "flowy_bench: mixed needs %ld durations in $FLOWY_BENCH_DURATIONS\n", n);
            return 2;
        }
        flowy::LocalWorkflow<Mixed> w;
        configure(w, e, workers);
        if (w.run(ds) != std::accumulate(ds.begin(), ds.end(), 0L)) return 1;
        tasks = n + 1;
    } else if (workload == "mixed-greedy") {
        // W7 mixed's reference: the same sleeps on 2 threads of one process taking the next
        // task from a shared counter, a perfect greedy scheduler with nothing in between.
        std::vector<int> ds = durations_us();
        if (ds.size() != static_cast<std::size_t>(n)) return 2;
        t0 = std::chrono::steady_clock::now();
        std::atomic<std::size_t> next{0};
        std::vector<std::thread> pool;
        for (int k = 0; k < workers; ++k)
            pool.emplace_back([&] {
                for (std::size_t i; (i = next.fetch_add(1)) < ds.size();) nap_us(ds[i]);
            });
        for (auto& th : pool) th.join();
        tasks = n;
    } else if (workload == "long-and-short") {
        flowy::LocalWorkflow<LongAndShort> w;
        configure(w, e, workers);
        if (w.run(static_cast<int>(n)) != n * (n - 1) / 2 + 30 + 1000) return 1;
        tasks = n + 2 * 30 + 2;
    } else if (workload == "startup") {
        for (long i = 0; i < n; ++i) {
            flowy::LocalWorkflow<Startup> w;
            configure(w, e, workers);
            if (w.run(7) != 7) return 1;
        }
    } else if (workload == "timeout") {
        // each of N tasks hangs; its 20 ms timeout stops it: how late does the error arrive?
        flowy::LocalWorkflow<Timeout> w;
        w.executor(e).workers(workers).log([](std::string_view) {});
        w.conf_activity("hang", hang, {.timeout = std::chrono::milliseconds(20)});
        auto late = w.run(static_cast<int>(n));
        std::sort(late.begin(), late.end());
        double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "{\"wall_s\": %.6f, \"tasks\": %ld, \"per_task_us\": %.3f, \"late_median_ms\": %.3f, "
            "\"late_max_ms\": %.3f}\n",
            wall, n, wall * 1e6 / double(n), late[late.size() / 2], late.back());
        return 0;
    } else if (workload == "payload") {
        flowy::LocalWorkflow<Payload> w;
        configure(w, e, workers);
        if (w.run(static_cast<std::size_t>(n)) != static_cast<std::size_t>(n)) return 1;
        tasks = 1;
    } else if (workload == "commands" || workload == "command-chain") {
        flowy::LocalWorkflow<Commands> w;
        w.executor(e).workers(workers).log([](std::string_view) {});
        w.conf_activity("sh", flowy::run_command);
        if (w.run(static_cast<int>(n), workload == "command-chain") != n) return 1;
    } else if (workload == "spawn" || workload == "spawn-chain") {
        if (!spawn_loop(n, workload == "spawn" ? workers : 1)) return 1;
    } else if (workload == "memcpy" || workload == "memcpy-reused") {
        // W5's reference: the payload copied twice, into new buffers (page faults and all,
        // as a round trip's copies are) or into buffers touched before. Making the payload
        // is not timed here, while the flowy figure includes it.
        const auto size = static_cast<std::size_t>(n);
        std::string payload(size, 'x'), there, back;
        if (workload == "memcpy-reused") {
            there.assign(size, 'y');
            back.assign(size, 'z');
        }
        t0 = std::chrono::steady_clock::now();
        if (workload == "memcpy") {
            there = std::string(payload);
            back = std::string(there);
        } else {
            std::memcpy(there.data(), payload.data(), size);
            std::memcpy(back.data(), there.data(), size);
        }
        if (back.size() != size || back[size / 2] != 'x') return 1;
        tasks = 1;
    } else {
        std::fprintf(stderr, "flowy_bench: unknown workload '%s'\n", workload.c_str());
        return 2;
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The scheduler's own CPU time, in user space and in the kernel (not its workers').
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    std::printf(
        "{\"wall_s\": %.6f, \"tasks\": %ld, \"per_task_us\": %.3f, \"peak_rss_kib\": %ld, \"user_s\": %.3f, "
        "\"sys_s\": %.3f}\n",
        wall, tasks, wall * 1e6 / double(tasks), peak_rss_kib(), seconds(ru.ru_utime), seconds(ru.ru_stime));
}

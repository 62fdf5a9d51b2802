#pragma once
// Helpers shared by the test executables.

#include <flowy/flowy.hpp>

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace test {

inline std::string name(flowy::Executor e) {
    switch (e) {
        case flowy::Executor::processes:
            return "processes";
        case flowy::Executor::threads:
            return "threads";
        case flowy::Executor::synchronous:
            return "synchronous";
    }
    return "?";
}

inline constexpr flowy::Executor all_executors[] = {flowy::Executor::processes, flowy::Executor::threads,
                                                    flowy::Executor::synchronous};

/// A new empty directory under /tmp, named for the test; remove it with remove_all.
inline std::string temp_dir(const std::string& what) {
    std::string pattern = "/tmp/flowy-test-" + what + "-XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}
inline void remove_all(const std::string& dir) {
    std::filesystem::remove_all(dir);
}

/// The seed example's workflow (API.md), used by several tests.
struct Seed {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};
    flowy::Result<int> operator()(int a, int b) {
        auto a_squared = square(a);
        auto b_squared = square(b);
        return sum(a_squared, b_squared);
    }
};

/// How many tasks (of `activity`, or of any if null) the trace at `path` has finished; 0
/// while it cannot be read (not written yet, or read in the middle of a record).
inline std::size_t finished_in(const std::string& path, const char* activity = "t") {
    try {
        auto t = flowy::Trace::load(path);
        std::size_t n = 0;
        for (const auto& x : t.tasks())
            n += x.state == flowy::TraceTask::State::finished && (!activity || x.activity == activity);
        return n;
    } catch (const flowy::TraceError&) {
        return 0;
    }
}

/// W1's shape: n calls of `t`, then `join` of all their results.
struct FanOut {
    flowy::Activity<int(int)> t{"t"};
    flowy::Activity<long(std::vector<int>)> join{"join"};
    flowy::Result<long> operator()(int n) {
        std::vector<flowy::Result<int>> rs;
        for (int i = 0; i < n; ++i) rs.push_back(t(i));
        return join(rs);
    }
};
inline long join(std::vector<int> xs) {
    long s = 0;
    for (int x : xs) s += x;
    return s;
}

/// A LocalWorkflow for W on executor `e` with `workers` workers (warnings kept quiet
/// unless `log` is given).
template <class W>
flowy::LocalWorkflow<W> on(flowy::Executor e, int workers = 2, std::function<void(std::string_view)> log = {}) {
    flowy::LocalWorkflow<W> w;
    w.executor(e).workers(workers);
    if (log) w.log(std::move(log));
    return w;
}

/// Counters in shared memory mapped before any fork, so activities running in
/// worker processes, threads or inline all update the same ones.
struct Shared {
    std::atomic<int> running;
    std::atomic<int> max_running;
    std::atomic<int> calls;
    std::atomic<int> flag;
    std::atomic<int> meet;  // how many activities rendezvous() waits for
    std::atomic<int> counter[8];

    static Shared& get() {
        static Shared* s = [] {
            void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            REQUIRE(p != MAP_FAILED);
            return new (p) Shared();
        }();
        return *s;
    }
    static void reset() {
        Shared& s = get();
        s.running = 0;
        s.max_running = 0;
        s.calls = 0;
        s.flag = 0;
        s.meet = 1;
        for (auto& c : s.counter) c = 0;
    }
};

/// Inside an activity: waits until Shared::meet activities are inside this call at
/// once, or until `limit` passes. Returns whether they met. Records the most seen at once.
inline bool rendezvous(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    Shared& s = Shared::get();
    int n = s.meet.load();
    int now = ++s.running;
    int seen = s.max_running.load();
    while (now > seen && !s.max_running.compare_exchange_weak(seen, now)) {
    }
    auto deadline = std::chrono::steady_clock::now() + limit;
    bool met = true;
    while (s.max_running.load() < n) {
        if (std::chrono::steady_clock::now() > deadline) {
            met = false;
            break;
        }
        std::this_thread::yield();
    }
    --s.running;
    return met;
}

/// Inside an activity: waits until the test sets Shared::flag, or `limit`. Returns whether it was set.
inline bool wait_for_flag(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!Shared::get().flag.load()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

/// The child processes of this process, right now.
inline std::set<int> children() {
    std::set<int> out;
    std::string dir = "/proc/self/task";
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream f(dir + "/" + e->d_name + "/children");
            int pid;
            while (f >> pid) out.insert(pid);
        }
        closedir(d);
    }
    return out;
}

/// The entries of /dev/shm, right now.
inline std::set<std::string> shm_entries() {
    std::set<std::string> out;
    if (DIR* d = opendir("/dev/shm")) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') out.insert(e->d_name);
        closedir(d);
    }
    return out;
}

/// Checks, at the end of a scope, that a run left no child process and nothing in /dev/shm.
class NoLeaks {
public:
    NoLeaks() : shm_(shm_entries()) {}
    ~NoLeaks() {
        CHECK_MESSAGE(children().empty(), "a run left child processes behind");
        CHECK_MESSAGE(shm_entries() == shm_, "a run left an entry in /dev/shm");
    }

private:
    std::set<std::string> shm_;
};

/// Collects what a run logs.
struct Log {
    std::string text;
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view m) {
            text += m;
            text += '\n';
        };
    }
};

}  // namespace test

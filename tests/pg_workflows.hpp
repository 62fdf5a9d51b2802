#pragma once
// Workflows the PostgreSQL engine's tests run in several processes (pg_node.cpp,
// test_postgres.cpp).

#include <flowy/flowy.hpp>
#include <flowy/postgres.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace pgtest {

/// Appends "<what> <i> <pid>" to $FLOWY_TEST_EFFECTS (one write: lines never interleave).
inline void effect(const char* what, int i) {
    const char* path = std::getenv("FLOWY_TEST_EFFECTS");
    if (!path) return;
    std::string line = std::string(what) + " " + std::to_string(i) + " " + std::to_string(getpid()) + "\n";
    int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    [[maybe_unused]] ssize_t n = ::write(fd, line.data(), line.size());
    ::close(fd);
}

inline int work(int i, int ms) {
    effect("work", i);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return i * i;
}
/// `work` for the heartbeat tests: beats every 20 ms for `ms`, and stops (recording "lost i")
/// once heartbeat() says the attempt is lost. With $FLOWY_TEST_SILENT set, the first
/// attempt of task 0 in the test goes silent instead (stuck for 30 s).
inline int beating_work(int i, int ms) {
    effect("work", i);
    if (const char* marker = std::getenv("FLOWY_TEST_SILENT"); marker && i == 0) {
        int fd = ::open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            ::close(fd);
            std::this_thread::sleep_for(std::chrono::seconds(30));
        }
    }
    for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
         std::chrono::steady_clock::now() < until;) {
        if (!flowy::heartbeat()) {
            effect("lost", i);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return i * i;
}
inline int again(int v, int ms) {
    effect("again", v);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return v + 1;
}
inline int total(std::vector<int> v) {
    effect("total", static_cast<int>(v.size()));
    return std::accumulate(v.begin(), v.end(), 0);
}

/// Two stages of n tasks of `ms` each, then their total: sum(i*i + 1).
struct Stages {
    flowy::Activity<int(int, int)> work{"work"};
    flowy::Activity<int(int, int)> again{"again"};
    flowy::Activity<int(std::vector<int>)> total{"total"};
    flowy::Result<int> operator()(int n, int ms) {
        std::vector<flowy::Result<int>> second;
        for (int i = 0; i < n; ++i) second.push_back(again(work(i, ms), ms));
        return total(second);
    }
};
inline int stages_value(int n) {
    int s = 0;
    for (int i = 0; i < n; ++i) s += i * i + 1;
    return s;
}

/// `again` goes on task list `list` ("": the default one); at most `concurrency` `work`
/// tasks run at once (0: any number).
template <class W>
void configure(W& w, int retries, std::chrono::milliseconds heartbeat = {}, const std::string& list = {},
               int concurrency = 0) {
    if (heartbeat.count() > 0)
        w.conf_activity("work", pgtest::beating_work,
                        {.retries = retries, .heartbeat_timeout = heartbeat, .concurrency = concurrency});
    else
        w.conf_activity("work", pgtest::work, {.retries = retries, .concurrency = concurrency});
    w.conf_activity("again", pgtest::again, {.retries = retries, .task_list = list});
    w.conf_activity("total", pgtest::total);
}

}  // namespace pgtest

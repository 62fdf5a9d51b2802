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

template <class W>
void configure(W& w, int retries) {
    w.conf_activity("work", pgtest::work, {.retries = retries});
    w.conf_activity("again", pgtest::again, {.retries = retries});
    w.conf_activity("total", pgtest::total);
}

}  // namespace pgtest

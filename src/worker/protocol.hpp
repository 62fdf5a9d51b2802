#pragma once
// What scheduler and workers share: the layout of a worker's shared-memory region
// and the framing of the messages on its rings.
//
//   request: u64 length | u32 task | u32 activity | encoded arguments
//   reply:   u64 length | u32 task | u8 outcome | u64 duration µs | payload
//            payload: the encoded result, or u32 n | message | u32 n | type
// `length` counts the bytes after itself.

#include "engine/executor.hpp"
#include "ipc/ring.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <sched.h>

namespace flowy::detail::worker {

/// Shared by the scheduler and all workers of one pool.
struct PoolShared {
    alignas(64) std::atomic<std::uint32_t> scheduler_sleeping{0};
};

/// The head of one worker's region; the two rings' data follows it.
struct WorkerShared {
    alignas(64) std::atomic<std::uint64_t> current{0};  // task + 1 while a task runs, else 0
    std::atomic<std::uint32_t> stop{0};
    ipc::RingControl requests;
    ipc::RingControl replies;
};

// Each ring's pages become resident (in the scheduler too) as messages go round it,
// so a ring is small: big values stream through it a quarter MiB at a time.
inline constexpr std::size_t ring_capacity = std::size_t(1) << 18;
inline constexpr std::size_t region_size = sizeof(WorkerShared) + 2 * ring_capacity;
inline constexpr std::size_t request_head = 8;                        // task, activity
inline constexpr std::size_t reply_head = 4 + 1 + 8;                  // task, outcome, duration
inline constexpr std::uint64_t max_message = std::uint64_t(1) << 36;  // 64 GiB: beyond it, garbage

inline ipc::Ring request_ring(WorkerShared* w) {
    return ipc::Ring(&w->requests, reinterpret_cast<char*>(w + 1), ring_capacity);
}
inline ipc::Ring reply_ring(WorkerShared* w) {
    return ipc::Ring(&w->replies, reinterpret_cast<char*>(w + 1) + ring_capacity, ring_capacity);
}

template <class T>
void put(char*& p, T v) {
    std::memcpy(p, &v, sizeof v);
    p += sizeof v;
}
template <class T>
T get(const char*& p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
}

/// Waiting for the other side: a few rounds of CPU pause (a reply that is microseconds
/// away costs no system call), then rounds of sched_yield (a process that shares our
/// core gets it), then sleep on a futex or epoll.
inline constexpr int spin_rounds = 200;
inline constexpr int pause_rounds = 32;
inline void backoff(int round) {
    if (round < pause_rounds) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

/// In a worker process, its shared region (null elsewhere). For tests that play a
/// misbehaving worker.
WorkerShared* this_worker() noexcept;

/// The loop of a forked worker: never returns (ends with _exit).
[[noreturn]] void worker_main(const Registry* registry, WorkerShared* shared, PoolShared* pool, int wake_fd,
                              int parent);

}  // namespace flowy::detail::worker

#pragma once
// What scheduler and workers share: the layout of a worker's shared-memory region
// and the messages on its rings, as types with their encodings.
//
//   request: u64 length | u32 task | u32 activity | u32 sequence | u64 heartbeat timeout µs | encoded arguments
//   reply:   u64 length | u32 task | u8 outcome | u64 started µs | u64 ended µs | payload
//            payload: the encoded result, or u32 n | message | u32 n | type
// Times are CLOCK_MONOTONIC microseconds, shared by the processes of one host.
//
// A worker may hold several requests in its ring (cheap tasks are pipelined). Before
// running one it claims it in `claims` (whatever the word held -> running); the
// scheduler takes back a request still queued behind a task that turned out long
// (anything but running -> revoked), and the worker then skips it without a reply. One
// compare-and-swap decides each race. Nothing is written when a request is sent: the
// word still holds a mark of an older sequence number, never equal to this one's.

#include "engine/executor.hpp"
#include "ipc/ring.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <sched.h>

namespace flowy::detail::worker {

/// A worker's exit code when an activity closed its wake-up pipe (its one descriptor):
/// it ends after its last reply, and the scheduler replaces it.
inline constexpr int exit_lost_wake = 72;

/// Shared by the scheduler and all workers of one pool.
struct PoolShared {
    alignas(64) std::atomic<std::uint32_t> scheduler_sleeping{0};
};

/// Claim words, one per request sequence number modulo claim_slots: sequence << 2 | state.
/// At most claim_slots - 1 requests of a worker are between sent and taken off its ring.
inline constexpr std::size_t claim_slots = 256;
enum ClaimState : std::uint64_t { claim_running = 1, claim_revoked = 2 };
inline constexpr std::uint64_t claim(std::uint32_t seq, ClaimState state) {
    return std::uint64_t(seq) << 2 | state;
}

/// The head of one worker's region; the two rings' data follows it.
struct WorkerShared {
    alignas(64) std::atomic<std::uint64_t> current{0};  // task + 1 while a task runs, else 0
    std::atomic<std::int64_t> started_us{0};            // when the current task started
    std::atomic<std::int64_t> beat_us{0};               // its last heartbeat (flowy::heartbeat())
    std::atomic<std::uint32_t> lost{0};                 // set while the current task's attempt is lost
    std::atomic<std::uint32_t> passed{0};               // sequence of the last request taken off the ring
    std::atomic<std::uint32_t> stop{0};
    ipc::RingControl requests;
    ipc::RingControl replies;
    std::atomic<std::uint64_t> claims[claim_slots];
};

// Each ring's pages become resident (in the scheduler too) as messages go round it,
// so a ring is small: big values stream through it a quarter MiB at a time.
inline constexpr std::size_t ring_capacity = std::size_t(1) << 18;
inline constexpr std::size_t region_size = sizeof(WorkerShared) + 2 * ring_capacity;
inline constexpr std::size_t length_prefix = 8;                       // u64: the bytes of the message after it
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

/// A request's head; the encoded arguments follow it.
struct RequestHead {
    static constexpr std::size_t size = length_prefix + 4 + 4 + 4 + 8;
    std::uint32_t task = 0;
    std::uint32_t activity = 0;
    std::uint32_t seq = 0;           ///< the request's number on its worker, from 1
    std::uint64_t heartbeat_us = 0;  ///< the attempt's heartbeat timeout (0: none)
    std::uint64_t args_size = 0;

    void encode(char* out) const {
        put<std::uint64_t>(out, size - length_prefix + args_size);
        put<std::uint32_t>(out, task);
        put<std::uint32_t>(out, activity);
        put<std::uint32_t>(out, seq);
        put<std::uint64_t>(out, heartbeat_us);
    }
    /// False if its length makes no sense.
    bool decode(const char* in) {
        auto len = get<std::uint64_t>(in);
        if (len < size - length_prefix || len > max_message) return false;
        args_size = len - (size - length_prefix);
        task = get<std::uint32_t>(in);
        activity = get<std::uint32_t>(in);
        seq = get<std::uint32_t>(in);
        heartbeat_us = get<std::uint64_t>(in);
        return true;
    }
};

/// A reply's head; its payload follows it: the encoded result (finished) or the error (failed).
struct ReplyHead {
    static constexpr std::size_t size = length_prefix + 4 + 1 + 8 + 8;
    std::uint32_t task = 0;
    Completion::Outcome outcome = Completion::Outcome::finished;
    std::int64_t started_us = 0;  ///< when the activity started and ended, by the worker's clock
    std::int64_t ended_us = 0;
    std::uint64_t payload_size = 0;

    void encode(char* out) const {
        put<std::uint64_t>(out, size - length_prefix + payload_size);
        put<std::uint32_t>(out, task);
        put<std::uint8_t>(out, static_cast<std::uint8_t>(outcome));
        put<std::int64_t>(out, started_us);
        put<std::int64_t>(out, ended_us);
    }
    /// False if its length or outcome makes no sense.
    bool decode(const char* in) {
        auto len = get<std::uint64_t>(in);
        if (len < size - length_prefix || len > max_message) return false;
        payload_size = len - (size - length_prefix);
        task = get<std::uint32_t>(in);
        auto o = get<std::uint8_t>(in);
        if (o != static_cast<std::uint8_t>(Completion::Outcome::finished) &&
            o != static_cast<std::uint8_t>(Completion::Outcome::failed))
            return false;
        outcome = static_cast<Completion::Outcome>(o);
        started_us = get<std::int64_t>(in);
        ended_us = get<std::int64_t>(in);
        return ended_us >= started_us;
    }
};

/// The payload of a failed reply: u32 n | message | u32 n | type | u32 n | detail.
inline std::size_t error_payload_size(const ErrorInfo& e) {
    return 4 + e.message.size() + 4 + e.type.size() + 4 + e.detail.size();
}
inline void encode_error(char* out, const ErrorInfo& e) {
    for (const std::string* s : {&e.message, &e.type, &e.detail}) {
        put<std::uint32_t>(out, static_cast<std::uint32_t>(s->size()));
        std::memcpy(out, s->data(), s->size());
        out += s->size();
    }
}
/// False if `payload` is not one.
inline bool decode_error(std::string_view payload, ErrorInfo& e) {
    const char* q = payload.data();
    const char* end = q + payload.size();
    for (std::string* s : {&e.message, &e.type, &e.detail}) {
        if (end - q < 4) return false;
        auto n = get<std::uint32_t>(q);
        if (static_cast<std::size_t>(end - q) < n) return false;
        s->assign(q, n);
        q += n;
    }
    return q == end;
}

/// Waiting for the other side: a few rounds of CPU pause (a reply that is microseconds
/// away costs no system call), then rounds of sched_yield (a process that shares our
/// core gets it), then sleep on a futex or epoll.
inline constexpr int spin_rounds = 200;
inline constexpr int pause_rounds = 32;
inline constexpr std::int64_t spin_budget_us = 250;  ///< a worker's sched_yield rounds stop after this
/// Tasks that typically run longer than this are waited for asleep: the spin (up to
/// about 200 µs of sched_yield) would cost more than it saves.
inline constexpr double spin_worthwhile_us = 500;
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

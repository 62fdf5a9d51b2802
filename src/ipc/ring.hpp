#pragma once
// A single-producer single-consumer byte ring in shared memory.
//
// Lock-free on purpose: a process killed in the middle of a write leaves no lock
// behind, only bytes that were never published. Positions are monotonic 64-bit
// byte counts; the capacity is a power of two. Messages larger than the ring
// stream through it in pieces. Each side announces that it is about to sleep
// (`*_waiting`) so that the other side wakes it only when needed.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace flowy::detail::ipc {

struct RingControl {
    alignas(64) std::atomic<std::uint64_t> tail{0};  // bytes published by the producer
    std::atomic<std::uint32_t> data_signal{0};       // futex word, bumped on publish
    std::atomic<std::uint32_t> consumer_waiting{0};
    alignas(64) std::atomic<std::uint64_t> head{0};  // bytes consumed
    std::atomic<std::uint32_t> space_signal{0};      // futex word, bumped on consume
    std::atomic<std::uint32_t> producer_waiting{0};
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "shared-memory rings need lock-free atomics");

class Ring {
public:
    Ring() = default;
    Ring(RingControl* control, char* data, std::size_t capacity) : c_(control), data_(data), cap_(capacity) {}

    std::size_t readable() const {
        return static_cast<std::size_t>(c_->tail.load(std::memory_order_seq_cst) -
                                        c_->head.load(std::memory_order_relaxed));
    }
    std::size_t writable() const {
        return cap_ - static_cast<std::size_t>(c_->tail.load(std::memory_order_relaxed) -
                                               c_->head.load(std::memory_order_seq_cst));
    }

    /// Producer: copies up to `n` bytes in and publishes them; returns how many.
    std::size_t write_some(const char* src, std::size_t n) {
        std::uint64_t tail = c_->tail.load(std::memory_order_relaxed);
        std::size_t room = cap_ - static_cast<std::size_t>(tail - c_->head.load(std::memory_order_acquire));
        if (n > room) n = room;
        if (n == 0) return 0;
        std::size_t at = static_cast<std::size_t>(tail & (cap_ - 1));
        std::size_t first = n < cap_ - at ? n : cap_ - at;
        std::memcpy(data_ + at, src, first);
        std::memcpy(data_, src + first, n - first);
        c_->tail.store(tail + n, std::memory_order_seq_cst);
        c_->data_signal.fetch_add(1, std::memory_order_seq_cst);
        return n;
    }

    /// Consumer: copies up to `n` bytes out and frees their room; returns how many.
    std::size_t read_some(char* dst, std::size_t n) {
        return consume(n, [&](const char* src, std::size_t k) {
            std::memcpy(dst, src, k);
            dst += k;
        });
    }
    /// Consumer: appends up to `n` bytes to `dst` (into its reserved capacity: no buffer
    /// zero-filled first) and frees their room; returns how many.
    std::size_t read_append(std::string& dst, std::size_t n) {
        return consume(n, [&](const char* src, std::size_t k) { dst.append(src, k); });
    }

    RingControl& control() const { return *c_; }
    std::size_t capacity() const { return cap_; }

private:
    template <class Take>  // Take(src, k): takes k bytes at src
    std::size_t consume(std::size_t n, Take take) {
        std::uint64_t head = c_->head.load(std::memory_order_relaxed);
        std::size_t avail = static_cast<std::size_t>(c_->tail.load(std::memory_order_acquire) - head);
        if (n > avail) n = avail;
        if (n == 0) return 0;
        std::size_t at = static_cast<std::size_t>(head & (cap_ - 1));
        std::size_t first = n < cap_ - at ? n : cap_ - at;
        take(data_ + at, first);
        if (n > first) take(data_, n - first);
        c_->head.store(head + n, std::memory_order_seq_cst);
        c_->space_signal.fetch_add(1, std::memory_order_seq_cst);
        return n;
    }

    RingControl* c_ = nullptr;
    char* data_ = nullptr;
    std::size_t cap_ = 0;
};

/// Sleeps while `*word == expected`, at most `timeout_ms` (spurious returns are fine).
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, int timeout_ms);
/// Wakes the sleepers on `word`.
void futex_wake(std::atomic<std::uint32_t>* word);

}  // namespace flowy::detail::ipc

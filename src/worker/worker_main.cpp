// The worker side: a forked process that takes requests off its ring, runs the
// activity and writes the reply. Nothing here throws across the loop: errors in
// an activity become failed replies, anything else ends the process, which the
// scheduler sees and reports.

#include "worker/protocol.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace flowy::detail::worker {
namespace {

class Io {
public:
    Io(WorkerShared* w, PoolShared* pool, int wake_fd, int parent)
        : w_(w), pool_(pool), wake_fd_(wake_fd), parent_(parent), req_(request_ring(w)), rep_(reply_ring(w)) {}

    /// Reads exactly `n` bytes; ends the process when told to stop.
    void read_exact(char* p, std::size_t n) {
        read_loop(n, [&](std::size_t k) {
            std::size_t got = req_.read_some(p, k);
            p += got;
            return got;
        });
    }
    /// Appends exactly `n` bytes to `s` (reserve first: nothing is zero-filled).
    void read_append(std::string& s, std::size_t n) {
        read_loop(n, [&](std::size_t k) { return req_.read_append(s, k); });
    }

    void write_all(const char* p, std::size_t n) {
        while (n > 0) {
            std::size_t k = rep_.write_some(p, n);
            if (k == 0) {
                wait_writable();
                continue;
            }
            p += k;
            n -= k;
            wake_scheduler();
        }
    }

private:
    template <class Read>  // Read(k): reads up to k bytes, returns how many
    void read_loop(std::size_t n, Read read) {
        while (n > 0) {
            std::size_t k = read(n);
            if (k == 0) {
                wait_readable();
                continue;
            }
            n -= k;
            if (w_->requests.producer_waiting.load(std::memory_order_seq_cst)) {
                w_->requests.producer_waiting.store(0);
                wake_scheduler();
            }
        }
    }

    void wake_scheduler() {
        if (pool_->scheduler_sleeping.load(std::memory_order_seq_cst) && pool_->scheduler_sleeping.exchange(0)) {
            std::uint64_t one = 1;
            [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, sizeof one);
        }
    }

    void check_alive() {
        if (getppid() != parent_) _exit(0);  // the scheduler is gone
    }

    void wait_readable() {
        for (int i = 0; i < spin_rounds; ++i) {
            if (req_.readable()) return;
            backoff(i);
        }
        auto& c = w_->requests;
        for (;;) {
            std::uint32_t seen = c.data_signal.load(std::memory_order_seq_cst);
            c.consumer_waiting.store(1, std::memory_order_seq_cst);
            if (req_.readable()) break;
            if (w_->stop.load(std::memory_order_seq_cst)) _exit(0);
            ipc::futex_wait(&c.data_signal, seen, 200);
            if (req_.readable()) break;
            check_alive();
        }
        c.consumer_waiting.store(0, std::memory_order_seq_cst);
    }

    void wait_writable() {
        for (int i = 0; i < spin_rounds; ++i) {
            if (rep_.writable()) return;
            backoff(i);
        }
        auto& c = w_->replies;
        for (;;) {
            std::uint32_t seen = c.space_signal.load(std::memory_order_seq_cst);
            c.producer_waiting.store(1, std::memory_order_seq_cst);
            if (rep_.writable()) break;
            wake_scheduler();
            ipc::futex_wait(&c.space_signal, seen, 200);
            if (rep_.writable()) break;
            check_alive();
        }
        c.producer_waiting.store(0, std::memory_order_seq_cst);
    }

    WorkerShared* w_;
    PoolShared* pool_;
    int wake_fd_;
    int parent_;
    ipc::Ring req_, rep_;
};

WorkerShared* current = nullptr;

}  // namespace

WorkerShared* this_worker() noexcept {
    return current;
}

void worker_main(const Registry* registry, WorkerShared* shared, PoolShared* pool, int wake_fd, int parent) {
    current = shared;
    Io io(shared, pool, wake_fd, parent);
    std::string message;
    std::string reply;
    for (;;) {
        std::uint64_t len = 0;
        io.read_exact(reinterpret_cast<char*>(&len), sizeof len);
        if (len < request_head || len > max_message) _exit(70);  // the scheduler never sends this
        message.clear();
        message.reserve(len);
        io.read_append(message, len);
        const char* p = message.data();
        auto task = get<std::uint32_t>(p);
        auto activity = get<std::uint32_t>(p);
        shared->current.store(std::uint64_t(task) + 1, std::memory_order_seq_cst);
        Completion c;
        if (activity < registry->size()) {
            c = run_request(*registry, task, activity, std::string_view(p, len - request_head));
        } else {
            c.outcome = Completion::Outcome::failed;
            c.error.message = "worker got an unknown activity index";
        }
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);

        std::size_t payload = c.outcome == Completion::Outcome::finished
                                  ? c.bytes.size()
                                  : 8 + c.error.message.size() + c.error.type.size();
        reply.resize(8 + reply_head + (c.outcome == Completion::Outcome::finished ? 0 : payload));
        char* q = reply.data();
        put<std::uint64_t>(q, reply_head + payload);
        put<std::uint32_t>(q, task);
        put<std::uint8_t>(q, static_cast<std::uint8_t>(c.outcome));
        put<std::uint64_t>(q, c.duration_us);
        if (c.outcome == Completion::Outcome::finished) {
            io.write_all(reply.data(), reply.size());
            io.write_all(c.bytes.data(), c.bytes.size());  // no copy of a big result
        } else {
            put<std::uint32_t>(q, static_cast<std::uint32_t>(c.error.message.size()));
            std::memcpy(q, c.error.message.data(), c.error.message.size());
            q += c.error.message.size();
            put<std::uint32_t>(q, static_cast<std::uint32_t>(c.error.type.size()));
            std::memcpy(q, c.error.type.data(), c.error.type.size());
            io.write_all(reply.data(), reply.size());
        }
        shared->current.store(0, std::memory_order_seq_cst);
    }
}

}  // namespace flowy::detail::worker

// The worker side: a forked process that takes requests off its ring, runs the
// activity and writes the reply. Nothing here throws across the loop: errors in
// an activity become failed replies, anything else ends the process, which the
// scheduler sees and reports.

#include "worker/protocol.hpp"

#include "common/clock.hpp"
#include "worker/run_activity.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <flowy/detail/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

namespace flowy::detail::worker {
namespace {

class Io {
public:
    Io(WorkerShared* w, PoolShared* pool, int wake_fd, int parent)
        : w_(w), pool_(pool), wake_fd_(wake_fd), parent_(parent), req_(request_ring(w)), rep_(reply_ring(w)) {
        struct stat st {};
        if (fstat(wake_fd_, &st) == 0) {
            wake_dev_ = st.st_dev;
            wake_ino_ = st.st_ino;
        }
    }

    /// A task begins: activity code may have run since the wake-up pipe was last checked.
    void new_task() {
        checked_ = false;
        replying_ = false;
    }
    /// Set once activity code closed the wake-up pipe (and maybe opened something else
    /// under its number): the worker ends after its reply, and the scheduler replaces it.
    bool lost_wake() const { return lost_; }

    /// Reads exactly `n` bytes; ends the process when told to stop.
    void read_exact(char* p, std::size_t n) {
        while (n > 0) {
            std::size_t k = req_.read_some(p, n);
            if (k == 0) {
                wait_readable();
                continue;
            }
            p += k;
            n -= k;
            if (w_->requests.producer_waiting.load(std::memory_order_seq_cst)) {
                w_->requests.producer_waiting.store(0);
                wake_scheduler();
            }
        }
    }

    void write_all(const char* p, std::size_t n) {
        if (!replying_) {  // the activity has returned: check the pipe again before waking through it
            replying_ = true;
            checked_ = false;
        }
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
    void wake_scheduler() {
        if (pool_->scheduler_sleeping.load(std::memory_order_seq_cst) && pool_->scheduler_sleeping.exchange(0)) {
            if (!checked_) {
                // The worker's one descriptor: an activity that closes descriptors it did not
                // open could have put a file of its own under this number. One fstat per task,
                // and only when the scheduler sleeps; flowy never writes into such a file.
                checked_ = true;
                struct stat st {};
                lost_ = lost_ || fstat(wake_fd_, &st) != 0 || st.st_dev != wake_dev_ || st.st_ino != wake_ino_;
            }
            if (lost_) {
                if (!replying_) _exit(exit_lost_wake);  // between tasks: nothing is lost by ending now
                return;  // the reply goes on; the worker ends after it, which wakes the scheduler
            }
            char one = 1;
            [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, 1);
        }
    }

    void check_alive() {
        if (getppid() != parent_) _exit(0);  // the scheduler is gone
    }

    /// Spins while `ready()` is false, for at most spin_rounds rounds and spin_budget_us:
    /// on a busy machine each sched_yield can give the core away for a whole time slice,
    /// and 200 of them took 300 ms (which a run waited for at its end). False if it must sleep.
    template <class Ready>
    bool spin(Ready ready) {
        std::int64_t until = 0;
        for (int i = 0; i < spin_rounds; ++i) {
            if (ready()) return true;
            if (i == pause_rounds) until = monotonic_us() + spin_budget_us;
            if (i > pause_rounds && i % 8 == 0 && monotonic_us() >= until) break;
            backoff(i);
        }
        return false;
    }

    void wait_readable() {
        if (spin([this] { return req_.readable() || w_->stop.load(std::memory_order_relaxed); }) && req_.readable())
            return;
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
        if (spin([this] { return rep_.writable(); })) return;
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
    dev_t wake_dev_ = 0;
    ino_t wake_ino_ = 0;
    bool checked_ = false, replying_ = false, lost_ = false;
};

/// The arguments of one request, read off the ring as they are decoded: a big value
/// goes from the ring straight into the activity's argument, not through a buffer.
class RequestIn final : public std::streambuf {
public:
    RequestIn(Io& io, std::uint64_t size) : io_(io), left_(size) {}
    /// Reads and drops what decoding left: the next request starts after this one.
    void skip_rest() {
        setg(buf_, buf_, buf_);
        while (left_ > 0) fill();
        setg(buf_, buf_, buf_);
    }

protected:
    int_type underflow() override {
        if (gptr() == egptr()) {
            if (left_ == 0) return traits_type::eof();
            fill();
        }
        return traits_type::to_int_type(*gptr());
    }
    std::streamsize xsgetn(char* s, std::streamsize n) override {
        std::streamsize got = 0;
        while (got < n) {
            if (gptr() == egptr()) {
                if (left_ == 0) break;
                auto want = static_cast<std::size_t>(n - got);
                if (want >= sizeof buf_) {
                    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, left_));
                    io_.read_exact(s + got, want);
                    left_ -= want;
                    got += static_cast<std::streamsize>(want);
                    continue;
                }
                fill();
            }
            auto k = std::min<std::streamsize>(n - got, egptr() - gptr());
            std::memcpy(s + got, gptr(), static_cast<std::size_t>(k));
            gbump(static_cast<int>(k));
            got += k;
        }
        return got;
    }

private:
    void fill() {
        auto k = static_cast<std::size_t>(std::min<std::uint64_t>(left_, sizeof buf_));
        io_.read_exact(buf_, k);
        left_ -= k;
        setg(buf_, buf_, buf_ + k);
    }
    Io& io_;
    std::uint64_t left_;  // bytes of the request not read off the ring yet
    char buf_[4096];
};

/// The reply of a task that finished, written to the ring as its result is encoded:
/// the head (with the size the encoder counted first), then the bytes. A small reply
/// leaves in one write; a big one never sits whole in a buffer.
class ReplyOut final : public ResultOut, public std::streambuf {
public:
    ReplyOut(Io& io, std::uint32_t task, std::int64_t started_us) : io_(io), task_(task), started_us_(started_us) {}
    bool needs_size() const override { return true; }
    std::streambuf& begin(std::size_t size) override {
        begun_ = true;
        size_ = size;
        ReplyHead{task_, Completion::Outcome::finished, started_us_, monotonic_us(), size}.encode(buf_);
        setp(buf_, buf_ + sizeof buf_);
        pbump(static_cast<int>(ReplyHead::size));
        return *this;
    }
    bool begun() const { return begun_; }
    /// Sends what is buffered. A result that wrote other bytes than it counted (a save()
    /// that is not the same twice) cannot be sent: the worker ends, which the scheduler
    /// reports as a crash of the task, before the reply is complete.
    void finish() {
        if (written_ != size_) _exit(70);
        send();
    }

protected:
    int_type overflow(int_type c) override {
        send();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            if (written_ + 1 > size_) _exit(70);
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
            ++written_;
        }
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        auto k = static_cast<std::size_t>(n);
        if (written_ + k > size_) _exit(70);
        if (k > static_cast<std::size_t>(epptr() - pptr())) send();
        if (k < sizeof buf_) {
            std::memcpy(pptr(), s, k);
            pbump(static_cast<int>(k));
        } else {
            io_.write_all(s, k);  // big: from the encoder straight into the ring
        }
        written_ += k;
        return n;
    }

private:
    void send() {
        io_.write_all(pbase(), static_cast<std::size_t>(pptr() - pbase()));
        setp(buf_, buf_ + sizeof buf_);
    }
    Io& io_;
    std::uint32_t task_;
    std::int64_t started_us_;
    bool begun_ = false;
    std::size_t size_ = 0, written_ = 0;
    char buf_[4096];
};

WorkerShared* current = nullptr;

}  // namespace

WorkerShared* this_worker() noexcept {
    return current;
}

void worker_main(const Registry* registry, WorkerShared* shared, PoolShared* pool, int wake_fd, int parent) {
    current = shared;
    Io io(shared, pool, wake_fd, parent);
    std::string reply;
    for (;;) {
        char raw[RequestHead::size];
        io.read_exact(raw, sizeof raw);
        RequestHead head;
        if (!head.decode(raw)) _exit(70);  // the scheduler never sends this
        std::uint32_t task = head.task, activity = head.activity;
        RequestIn in(io, head.args_size);
        // Claim it, unless the scheduler took it back (it runs elsewhere): then skip it, no reply.
        auto& word = shared->claims[head.seq % claim_slots];
        std::uint64_t seen = word.load(std::memory_order_seq_cst);
        if (seen == claim(head.seq, claim_revoked) ||
            !word.compare_exchange_strong(seen, claim(head.seq, claim_running), std::memory_order_seq_cst)) {
            in.skip_rest();
            shared->passed.store(head.seq, std::memory_order_seq_cst);
            continue;
        }
        io.new_task();
        std::int64_t started = monotonic_us();
        shared->started_us.store(started, std::memory_order_seq_cst);
        shared->beat_us.store(started, std::memory_order_relaxed);  // not the last task's: seen with `current`
        shared->lost.store(0, std::memory_order_relaxed);
        shared->current.store(std::uint64_t(task) + 1, std::memory_order_seq_cst);
        ReplyOut out(io, task, started);
        Completion c;
        if (activity < registry->size()) {
            run_activity(*registry, activity, in, out, c,
                         {std::chrono::microseconds(head.heartbeat_us), &shared->beat_us, &shared->lost});
        } else {
            c.outcome = Completion::Outcome::failed;
            c.error.message = "worker got an unknown activity index";
            c.ended_us = started;
        }
        in.skip_rest();
        std::cout.flush();
        std::cerr.flush();
        std::fflush(nullptr);

        if (c.outcome == Completion::Outcome::finished) {
            if (!out.begun()) out.begin(0);  // a void result: no bytes
            out.finish();
        } else if (out.begun()) {
            _exit(70);  // the result failed half written: the scheduler sees a crash
        } else {
            std::size_t payload = error_payload_size(c.error);
            reply.resize(ReplyHead::size + payload);
            ReplyHead{task, c.outcome, started, std::max(c.ended_us, started), payload}.encode(reply.data());
            encode_error(reply.data() + ReplyHead::size, c.error);
            io.write_all(reply.data(), reply.size());
        }
        shared->current.store(0, std::memory_order_seq_cst);
        shared->passed.store(head.seq, std::memory_order_seq_cst);
        if (io.lost_wake()) _exit(exit_lost_wake);
    }
}

}  // namespace flowy::detail::worker

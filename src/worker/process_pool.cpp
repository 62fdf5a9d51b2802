// The processes executor: a pool of forked workers, each with its own pair of
// rings in anonymous shared memory (mapped before the fork, so nothing is left in
// /dev/shm whatever happens). A worker that dies takes only its own task with it:
// its rings are dropped with it and a new worker gets fresh ones.

#include "common/clock.hpp"
#include "worker/protocol.hpp"
#include "worker/run_activity.hpp"

#include <boost/interprocess/anonymous_shared_memory.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <system_error>

namespace flowy::detail {

namespace {

namespace bip = boost::interprocess;
constexpr std::uint32_t wake_tag = UINT32_MAX;         // epoll's tag of the wake-up pipe; a worker's is its index
constexpr std::uint32_t watched_tag = UINT32_MAX - 1;  // a descriptor the caller watches (watch())
using worker::PoolShared;
using worker::WorkerShared;

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

std::string describe_status(int status) {
    char buf[160];
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        const char* desc = sigdescr_np(sig);
        std::snprintf(buf, sizeof buf, "killed by signal %d (SIG%s: %s)", sig, abbrev ? abbrev : "?",
                      desc ? desc : "unknown");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == worker::exit_lost_wake) {
        return "lost its wake-up pipe: an activity closed descriptors it did not open (its results were kept, "
               "and flowy wrote nothing into what the activity opened)";
    } else if (WIFEXITED(status)) {
        std::snprintf(buf, sizeof buf, "exited with code %d", WEXITSTATUS(status));
    } else {
        std::snprintf(buf, sizeof buf, "ended with status %d", status);
    }
    return buf;
}

/// A request sent to a worker: in its ring (or waiting for room there), not replied to.
struct Sent {
    std::uint32_t task;
    std::uint32_t seq;
    bool cheap;  // sent with depth > 1: known to be short
};

/// After this long, a running task holds no requests queued behind it (microseconds).
constexpr std::int64_t long_task_us = 1000;

/// A piece of a request waiting for room in a worker's ring.
struct Outgoing {
    char head[worker::RequestHead::size];
    std::size_t head_off = 0;
    std::string_view body;  // owned by the scheduler until the task completes
    std::size_t body_off = 0;
};

struct Worker {
    int index = 0;
    pid_t pid = -1;
    int pidfd = -1;
    bip::mapped_region region;
    WorkerShared* shared = nullptr;
    ipc::Ring requests, replies;
    std::deque<Sent> in_flight;     // requests sent, in order; replies come back in that order
    std::deque<Outgoing> outgoing;  // the last of in_flight, not (wholly) in the ring yet
    std::uint32_t next_seq = 1;
    mutable std::uint32_t passed_seen = 0;  // the worker's `passed`, as read last
    std::uint32_t uncertain = 0;            // requests in flight not known to be short
    std::uint64_t stalled_on = 0;           // current-word of a task found long: nothing queues behind it
    Clock::time_point stopped_since{};      // when it was first seen stopped (SIGSTOP, a debugger); or zero
    bool stop_reported = false;
    // reply being read
    char head[worker::ReplyHead::size];
    std::size_t head_got = 0;
    worker::ReplyHead reply;  // its head, once read
    std::string body;
    bool reading_body = false;
    bool broken = false;  // sent garbage: killed, handled as a crash
    // The timeout of the task it runs (a task with a timeout only goes to an idle worker).
    bool has_deadline = false;
    Clock::time_point deadline;
    std::chrono::nanoseconds timeout{0};
    std::uint32_t deadline_task = 0;
    bool timed_out = false;  // killed for it: its death is the task's timeout
    // The heartbeat timeout of the task it runs (such a task also goes to an idle worker only).
    std::int64_t heartbeat_us = 0;  // 0: none
    std::uint32_t heartbeat_task = 0;
    std::chrono::nanoseconds heartbeat{0};
    bool missed_heartbeat = false;  // killed for it: its death is the task's timeout
};

class ProcessExecutor final : public TaskExecutor {
public:
    ProcessExecutor(const Registry& registry, int n)
        : registry_(registry), pool_region_(bip::anonymous_shared_memory(sizeof(PoolShared))) {
        pool_ = new (pool_region_.get_address()) PoolShared();
        // Workers wake the scheduler through a pipe: its inode is its own, so a worker can
        // tell that the descriptor it holds is still the pipe (worker_main.cpp).
        int ends[2];
        if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0) throw_errno("flowy: pipe2");
        wake_read_ = ends[0];
        wake_fd_ = ends[1];
        epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) {
            ::close(wake_fd_);
            ::close(wake_read_);
            throw_errno("flowy: epoll_create1");
        }
        add_fd(wake_read_, wake_tag);
        workers_.resize(static_cast<std::size_t>(n));
        try {
            for (int i = 0; i < n; ++i) spawn(workers_[static_cast<std::size_t>(i)], i);
        } catch (...) {
            stop(true);
            throw;
        }
    }
    ~ProcessExecutor() override { stop(true); }

    bool accepts(std::uint32_t depth) const override {
        for (const Worker& w : workers_)
            if (eligible(w, depth)) return true;
        return false;
    }

    WorkerRef worker(int index) const override {
        bool known = index >= 0 && static_cast<std::size_t>(index) < workers_.size();
        return {index, known ? workers_[std::size_t(index)].pid : -1, {}};
    }

    int submit(const Request& r) override {
        Worker* best = nullptr;
        for (Worker& w : workers_)
            if (eligible(w, r.depth) && (!best || w.in_flight.size() < best->in_flight.size())) best = &w;
        if (!best)  // the scheduler asked accepts() first; a worker that died since is replaced
            for (Worker& w : workers_)
                if (w.pid > 0 && (!best || w.in_flight.size() < best->in_flight.size())) best = &w;
        std::uint32_t seq = best->next_seq++;
        Outgoing o;
        auto heartbeat_us = std::chrono::duration_cast<std::chrono::microseconds>(r.heartbeat_timeout).count();
        if (r.heartbeat_timeout.count() > 0) heartbeat_us = std::max<std::int64_t>(heartbeat_us, 1);
        worker::RequestHead{r.task, r.activity, seq, static_cast<std::uint64_t>(heartbeat_us), r.args.size()}.encode(
            o.head);
        o.body = r.args;
        if (r.timeout.count() > 0) {
            best->has_deadline = true;
            best->deadline = Clock::now() + r.timeout;
            best->timeout = r.timeout;
            best->deadline_task = r.task;
        }
        if (heartbeat_us > 0) {
            best->heartbeat_us = heartbeat_us;
            best->heartbeat_task = r.task;
            best->heartbeat = r.heartbeat_timeout;
        }
        best->in_flight.push_back({r.task, seq, r.depth > 1});
        if (r.depth <= 1) ++best->uncertain;
        best->outgoing.push_back(o);
        ++in_flight_;
        pump(*best);
        return best->index;
    }

    std::size_t in_flight() const override { return in_flight_; }

    void lose(std::uint32_t task, bool stop) override {
        for (Worker& w : workers_) {
            if (w.pid <= 0 || w.shared->current.load(std::memory_order_seq_cst) != std::uint64_t(task) + 1) continue;
            w.shared->lost.store(1, std::memory_order_relaxed);
            if (stop) {  // the worker and all it started; its death completes the task (as a crash)
                ::kill(-w.pid, SIGKILL);
                ::kill(w.pid, SIGKILL);
            }
        }
    }

    bool watch(int fd) override {
        if (watched_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_, nullptr);  // may be closed already
        watched_ = fd;
        if (fd >= 0) add_fd(fd, watched_tag);
        return true;
    }

    void wait(std::vector<Completion>& out, Clock::time_point deadline) override {
        std::size_t before = out.size();
        int idle = 0;
        for (;;) {
            Clock::time_point now = Clock::now();
            Clock::time_point next = deadline;
            for (Worker& w : workers_) {
                if (w.pid <= 0) continue;
                pump(w);
                drain(w, out);
                if (w.broken) kill_worker(w);
                if (w.has_deadline) {
                    if (now >= w.deadline) {
                        // Past its timeout: stop the worker and all it started; its death reports it.
                        ::kill(-w.pid, SIGKILL);
                        ::kill(w.pid, SIGKILL);
                        w.has_deadline = false;
                        w.timed_out = true;
                    } else {
                        next = std::min(next, w.deadline);
                    }
                }
                if (w.heartbeat_us > 0 &&
                    w.shared->current.load(std::memory_order_seq_cst) == std::uint64_t(w.heartbeat_task) + 1) {
                    // Running: its last beat (the start counts as one) must be recent enough.
                    std::int64_t last = std::max(w.shared->started_us.load(std::memory_order_seq_cst),
                                                 w.shared->beat_us.load(std::memory_order_relaxed));
                    std::int64_t late = monotonic_us() - (last + w.heartbeat_us);
                    if (late > 0) {
                        ::kill(-w.pid, SIGKILL);
                        ::kill(w.pid, SIGKILL);
                        w.heartbeat_us = 0;
                        w.missed_heartbeat = true;
                    } else {  // (a returned activity's beat is far ahead: look again now and then)
                        next =
                            std::min(next, now + std::chrono::microseconds(std::min<std::int64_t>(1 - late, 100000)));
                    }
                }
            }
            if (out.size() > before || now >= deadline || cancel_signal() || !warnings.empty()) return;
            if (idle < spin_rounds()) {
                worker::backoff(idle++);
                continue;
            }
            idle = 0;
            // Before sleeping (and so at least every millisecond while requests wait behind a
            // running task), not in every round of the spin: the worker's words stay in its cache.
            for (Worker& w : workers_)
                if (w.pid > 0) take_back(w, out);
            if (out.size() > before) return;
            sleep_until_event(out, next);
            if (std::exchange(watched_ready_, false) || out.size() > before) return;
        }
    }

    void stop(bool abort) noexcept override {
        if (stopped_) return;
        stopped_ = true;
        for (Worker& w : workers_) {
            if (w.pid <= 0) continue;
            if (abort) {
                ::kill(w.pid, SIGKILL);
            } else {
                w.shared->stop.store(1, std::memory_order_seq_cst);
                w.shared->requests.data_signal.fetch_add(1, std::memory_order_seq_cst);  // a sleeper compares it
                ipc::futex_wake(&w.shared->requests.data_signal);
            }
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        for (Worker& w : workers_) {
            if (w.pid <= 0) continue;
            // Wait for the exit without reaping, so the process group id cannot be reused
            // before whatever the activity started in it is killed too.
            pollfd pfd{w.pidfd, POLLIN, 0};
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (::poll(&pfd, 1, static_cast<int>(std::max<long>(0, left.count()))) <= 0) ::kill(w.pid, SIGKILL);
            siginfo_t info{};
            ::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOWAIT);
            ::kill(-w.pid, SIGKILL);
            int status = 0;
            while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
            }
            release(w);
        }
        if (epoll_fd_ >= 0) ::close(epoll_fd_);
        if (wake_fd_ >= 0) ::close(wake_fd_);
        if (wake_read_ >= 0) ::close(wake_read_);
        epoll_fd_ = wake_fd_ = wake_read_ = -1;
    }

private:
    /// Whether `w` may take a request of this depth now: an idle worker takes any; a
    /// worker queues more only behind requests known to be short, up to `depth`, and
    /// never behind a task that turned out long.
    bool eligible(const Worker& w, std::uint32_t depth) const {
        if (w.pid <= 0) return false;
        if (w.in_flight.empty()) return true;
        if (depth <= 1 || w.in_flight.size() >= depth || w.uncertain > 0) return false;
        if (w.stalled_on && w.shared->current.load(std::memory_order_relaxed) == w.stalled_on) return false;
        // room in the claim words for every request not yet taken off the ring (the worker's
        // count is read again only when the one seen last leaves none)
        if (w.next_seq - w.passed_seen < worker::claim_slots - 1) return true;
        w.passed_seen = w.shared->passed.load(std::memory_order_relaxed);
        return w.next_seq - w.passed_seen < worker::claim_slots - 1;
    }

    /// When the task `w` runs has run for long_task_us, the requests queued behind it go
    /// back to the scheduler (requeue) to run on other workers: those not written to the
    /// ring yet are dropped, those in it revoked while the worker has not claimed them.
    void take_back(Worker& w, std::vector<Completion>& out) {
        if (w.in_flight.size() < 2) return;
        std::uint64_t current = w.shared->current.load(std::memory_order_seq_cst);
        if (current != std::uint64_t(w.in_flight.front().task) + 1 || current == w.stalled_on) return;
        if (monotonic_us() - w.shared->started_us.load(std::memory_order_seq_cst) < long_task_us) return;
        w.stalled_on = current;
        std::size_t first_out = w.in_flight.size() - w.outgoing.size();  // in_flight[first_out...] are outgoing
        bool partly_written = !w.outgoing.empty() && w.outgoing.front().head_off > 0;
        std::deque<Sent> kept{w.in_flight.front()};
        for (std::size_t i = 1; i < w.in_flight.size(); ++i) {
            const Sent& s = w.in_flight[i];
            bool back;
            if (i >= first_out)
                back = !(i == first_out && partly_written);  // a half-written request must go out whole
            else {
                auto& word = w.shared->claims[s.seq % worker::claim_slots];
                std::uint64_t seen = word.load(std::memory_order_seq_cst);
                back = seen != worker::claim(s.seq, worker::claim_running) &&
                       word.compare_exchange_strong(seen, worker::claim(s.seq, worker::claim_revoked),
                                                    std::memory_order_seq_cst);
            }
            if (!back) {
                kept.push_back(s);
                continue;
            }
            Completion c;
            c.task = s.task;
            c.worker = w.index;
            c.outcome = Completion::Outcome::requeue;
            out.push_back(std::move(c));
            --in_flight_;
            if (!s.cheap) --w.uncertain;
        }
        w.outgoing.resize(partly_written ? 1 : 0);
        w.in_flight = std::move(kept);
    }

    void add_fd(int fd, std::uint32_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = tag;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("flowy: epoll_ctl");
    }

    void spawn(Worker& w, int index) {
        w = Worker{};
        w.index = index;
        w.region = bip::mapped_region(bip::anonymous_shared_memory(worker::region_size));
        w.shared = new (w.region.get_address()) WorkerShared();
        w.requests = worker::request_ring(w.shared);
        w.replies = worker::reply_ring(w.shared);
        std::fflush(nullptr);  // or the child would print the parent's buffered output again
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) throw_errno("flowy: fork of a worker");
        if (pid == 0) child(w, parent);
        setpgid(pid, pid);  // also done by the child: whichever runs first
        w.pid = pid;
        w.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
        if (w.pidfd < 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            w.pid = -1;
            throw_errno("flowy: pidfd_open");
        }
        add_fd(w.pidfd, static_cast<std::uint32_t>(index));
    }

    [[noreturn]] void child(Worker& w, pid_t parent) {
        // Between fork and the loop: no exceptions, no locks, no allocation we can avoid.
        leave_engine_in_child();
        setpgid(0, 0);  // its own group: Ctrl-C reaches the scheduler only; a timeout kills the group
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        // The program's dispositions stay (a program that ignores SIGPIPE keeps getting
        // EPIPE in its activities), except those the scheduler changed for the run;
        // SIGCHLD, which command activities need as the default to wait for their
        // children; and the fault signals, so that a crash in an activity ends its worker
        // as what it was (not in a crash handler of the program's, a test framework's or a
        // sanitizer's, which would report it as something else).
        restore_program_signals();
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s : {SIGCHLD, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) sigaction(s, &dfl, nullptr);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        ::close(epoll_fd_);
        ::close(wake_read_);
        // A database connection's socket: closed, never used (libpq would write to it).
        if (watched_ >= 0) ::close(watched_);
        for (Worker& other : workers_)
            if (other.pidfd >= 0) ::close(other.pidfd);
        try {
            worker::worker_main(&registry_, w.shared, pool_, wake_fd_, parent);
        } catch (...) {
        }
        _exit(71);
    }

    void release(Worker& w) {
        if (w.pidfd >= 0) {
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.pidfd, nullptr);
            ::close(w.pidfd);
        }
        w.pidfd = -1;
        w.pid = -1;
        w.region = bip::mapped_region();
        w.shared = nullptr;
    }

    /// Writes what fits of the queued requests.
    void pump(Worker& w) {
        bool wrote = false;
        while (!w.outgoing.empty()) {
            Outgoing& o = w.outgoing.front();
            if (o.head_off < sizeof o.head) {
                std::size_t k = w.requests.write_some(o.head + o.head_off, sizeof o.head - o.head_off);
                o.head_off += k;
                wrote |= k > 0;
                if (o.head_off < sizeof o.head) break;
            }
            std::size_t left = o.body.size() - o.body_off;
            if (left > 0) {
                std::size_t k = w.requests.write_some(o.body.data() + o.body_off, left);
                o.body_off += k;
                wrote |= k > 0;
                if (k < left) break;
            }
            w.outgoing.pop_front();
        }
        if (wrote && w.shared->requests.consumer_waiting.load(std::memory_order_seq_cst))
            ipc::futex_wake(&w.shared->requests.data_signal);
    }

    /// Reads what is there of the replies; appends the complete ones.
    void drain(Worker& w, std::vector<Completion>& out) {
        bool read = false;
        for (;;) {
            if (!w.reading_body) {
                std::size_t k = w.replies.read_some(w.head + w.head_got, sizeof w.head - w.head_got);
                w.head_got += k;
                read |= k > 0;
                if (w.head_got < sizeof w.head) break;
                if (!w.reply.decode(w.head)) {
                    w.broken = true;
                    break;
                }
                w.body.clear();
                w.body.reserve(w.reply.payload_size);  // filled by appends: never zero-filled
                w.reading_body = true;
            }
            std::size_t k = w.replies.read_append(w.body, w.reply.payload_size - w.body.size());
            read |= k > 0;
            if (w.body.size() < w.reply.payload_size) break;
            w.reading_body = false;
            w.head_got = 0;
            if (!complete(w, out)) {
                w.broken = true;
                break;
            }
        }
        if (read && w.shared->replies.producer_waiting.load(std::memory_order_seq_cst))
            ipc::futex_wake(&w.shared->replies.space_signal);
    }

    /// Turns the reply just read into a completion; false if it makes no sense.
    bool complete(Worker& w, std::vector<Completion>& out) {
        std::uint32_t task = w.reply.task;
        if (w.in_flight.empty() || w.in_flight.front().task != task) return false;
        Completion c;
        c.task = task;
        c.started_us = w.reply.started_us;
        c.ended_us = w.reply.ended_us;
        c.duration_us = static_cast<std::uint64_t>(w.reply.ended_us - w.reply.started_us);
        c.worker = w.index;
        c.outcome = w.reply.outcome;
        if (c.outcome == Completion::Outcome::finished)
            c.bytes = std::move(w.body);
        else if (!worker::decode_error(w.body, c.error))
            return false;
        if (!w.in_flight.front().cheap) --w.uncertain;
        w.in_flight.pop_front();
        --in_flight_;
        if (std::uint64_t(task) + 1 == w.stalled_on) w.stalled_on = 0;
        if (w.has_deadline && w.deadline_task == task) w.has_deadline = false;
        if (w.heartbeat_us > 0 && w.heartbeat_task == task) w.heartbeat_us = 0;
        typical_us_ = typical_us_ < 0 ? double(c.duration_us) : 0.875 * typical_us_ + 0.125 * double(c.duration_us);
        out.push_back(std::move(c));
        w.body = std::string();
        return true;
    }

    /// How long to spin for the next completion before sleeping: tasks of microseconds
    /// are worth it (no system call); tasks of a millisecond and more are not, even with
    /// a core free of them. Measured on W8's chain of `true` commands on 2 cores (medians
    /// of 15 interleaved runs): spinning after each dispatch cost 1-4% per command, and
    /// spinning from shortly before a task's expected end (hybrid polling) 5-15%: the
    /// spinner takes the time the program starting on the other core needs.
    int spin_rounds() const {
        bool long_tasks = typical_us_ >= 0 && typical_us_ > worker::spin_worthwhile_us;
        return long_tasks ? 0 : worker::spin_rounds;
    }

    void kill_worker(Worker& w) {
        ::kill(w.pid, SIGKILL);
        // its death arrives through its pidfd, handled like any other
        w.broken = false;
        w.reading_body = false;
        w.head_got = 0;
        broken_pids_.push_back(w.pid);
    }

    /// Once a second: a worker stopped (SIGSTOP, a debugger) with work in flight would
    /// hold the run without a word; say so after two seconds, and again once it goes on.
    std::size_t stopped_workers() const override {
        std::size_t n = 0;
        for (const Worker& w : workers_) n += w.pid > 0 && w.stop_reported;
        return n;
    }

    void look_for_stopped_workers() {
        Clock::time_point now = Clock::now();
        if (now < next_stop_check_) return;
        next_stop_check_ = now + std::chrono::seconds(1);
        for (Worker& w : workers_) {
            if (w.pid <= 0) continue;
            char path[64], stat[512];
            std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(w.pid));
            int fd = ::open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            ssize_t n = ::read(fd, stat, sizeof stat - 1);
            ::close(fd);
            if (n <= 0) continue;
            stat[n] = 0;
            const char* paren = std::strrchr(stat, ')');  // the state follows the command name
            bool stopped = paren && (paren[2] == 'T' || paren[2] == 't');
            if (!stopped) {
                if (w.stop_reported) warnings.push_back("worker process " + std::to_string(w.pid) + " goes on again");
                w.stopped_since = {};
                w.stop_reported = false;
                continue;
            }
            if (w.stopped_since == Clock::time_point{}) w.stopped_since = now;
            if (!w.stop_reported && !w.in_flight.empty() && now - w.stopped_since >= std::chrono::seconds(2)) {
                w.stop_reported = true;
                warnings.push_back("worker process " + std::to_string(w.pid) +
                                   " is stopped (SIGSTOP, or a debugger) with " + std::to_string(w.in_flight.size()) +
                                   " task(s) in flight; the run waits for it: `kill -CONT " + std::to_string(w.pid) +
                                   "` to go on, or Ctrl-C to cancel the run");
            }
        }
    }

    void sleep_until_event(std::vector<Completion>& out, Clock::time_point until) {
        look_for_stopped_workers();
        pool_->scheduler_sleeping.store(1, std::memory_order_seq_cst);
        bool ready = false;
        bool queued_behind = false;  // requests wait behind a running task: look again within a millisecond
        for (Worker& w : workers_) {
            if (w.pid <= 0) continue;
            if (!w.outgoing.empty()) {
                w.shared->requests.producer_waiting.store(1, std::memory_order_seq_cst);
                if (w.requests.writable()) ready = true;
            }
            if (w.replies.readable()) ready = true;
            if (w.in_flight.size() > 1 && w.stalled_on == 0) queued_behind = true;
        }
        int timeout_ms = 1000;
        if (until != Clock::time_point::max()) {
            auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - Clock::now()).count();
            timeout_ms = static_cast<int>(std::clamp<long long>((left + 999) / 1000, 0, 1000));
        }
        if (queued_behind) timeout_ms = std::min(timeout_ms, 1);
        epoll_event events[16];
        int n = ready ? 0 : epoll_wait(epoll_fd_, events, 16, timeout_ms);
        pool_->scheduler_sleeping.store(0, std::memory_order_seq_cst);
        for (int i = 0; i < n; ++i) {
            std::uint32_t tag = events[i].data.u32;
            if (tag == watched_tag) {
                watched_ready_ = true;
            } else if (tag == wake_tag) {
                char drain[256];
                while (::read(wake_read_, drain, sizeof drain) == static_cast<ssize_t>(sizeof drain)) {
                }
            } else {
                reap(workers_[tag], out);
            }
        }
    }

    /// A worker ended: collect what it finished, fail the task it was running, requeue the rest, replace it.
    void reap(Worker& w, std::vector<Completion>& out) {
        pid_t pid = w.pid;
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0) return;
        ::kill(-pid, SIGKILL);  // anything the activity left running in its group
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        drain(w, out);
        std::uint64_t current = w.shared->current.load(std::memory_order_seq_cst);
        bool was_broken = false;
        for (auto it = broken_pids_.begin(); it != broken_pids_.end(); ++it)
            if (*it == pid) {
                broken_pids_.erase(it);
                was_broken = true;
                break;
            }
        std::string why = "worker process " + std::to_string(pid) + " " +
                          (was_broken ? std::string("sent a malformed reply and was killed") : describe_status(status));
        bool started = false;
        for (const Sent& sent : w.in_flight) {
            std::uint32_t task = sent.task;
            Completion c;
            c.task = task;
            c.worker = w.index;
            if (w.timed_out && !started && task == w.deadline_task) {
                // its timeout counts from dispatch, so a task still being read also timed out
                started = true;
                c.outcome = Completion::Outcome::failed;
                c.error = timed_out(w.timeout);
            } else if (w.missed_heartbeat && !started && task == w.heartbeat_task) {
                started = true;
                c.outcome = Completion::Outcome::failed;
                c.error = missed_heartbeat(w.heartbeat);
            } else if (!started && current == std::uint64_t(task) + 1) {
                started = true;
                c.outcome = Completion::Outcome::failed;
                c.error.kind = ErrorInfo::Kind::crashed;
                c.error.message = why;
            } else {
                c.outcome = Completion::Outcome::requeue;
            }
            out.push_back(std::move(c));
            --in_flight_;
        }
        if (!started) warnings.push_back(why + " while idle; replaced");
        int index = w.index;
        release(w);
        if (!stopped_) spawn(w, index);
    }

    const Registry& registry_;
    bip::mapped_region pool_region_;
    PoolShared* pool_ = nullptr;
    Clock::time_point next_stop_check_{};
    int watched_ = -1;  // watch()
    bool watched_ready_ = false;
    double typical_us_ = -1;  // a moving average of how long tasks run (-1: none ran yet)
    int wake_fd_ = -1;        // the pipe's write end, which workers use
    int wake_read_ = -1;      // its read end, in the scheduler's epoll
    int epoll_fd_ = -1;
    std::vector<Worker> workers_;
    std::vector<pid_t> broken_pids_;
    std::size_t in_flight_ = 0;
    bool stopped_ = false;
};

}  // namespace

std::unique_ptr<TaskExecutor> make_process_executor(const Registry& registry, int workers) {
    return std::make_unique<ProcessExecutor>(registry, workers);
}

}  // namespace flowy::detail

// The executors that run tasks inside this process: synchronous and threads.

#include "engine/executor.hpp"

#include <flowy/detail/serialize.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace flowy::detail {

Completion run_request(const Registry& registry, std::uint32_t task, std::uint32_t activity, std::string_view args) {
    Completion c;
    c.task = task;
    ViewSource in(args);
    StringOut out(c.bytes);
    run_activity(registry, activity, in, out, c);
    return c;
}

void run_activity(const Registry& registry, std::uint32_t activity, std::streambuf& args, ResultOut& out,
                  Completion& c) {
    auto t0 = std::chrono::steady_clock::now();
    try {
        (*registry.at(activity))(args, out);
        c.outcome = Completion::Outcome::finished;
    } catch (...) {
        c.outcome = Completion::Outcome::failed;
        c.bytes.clear();
        try {
            c.error = current_error({});
        } catch (...) {
            c.error.message = "exception (its description failed)";
        }
    }
    c.duration_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
}

ErrorInfo timed_out(std::chrono::nanoseconds timeout) {
    ErrorInfo e;
    e.kind = ErrorInfo::Kind::timed_out;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    char buf[64];
    if (us % 1000 == 0)
        std::snprintf(buf, sizeof buf, "timed out after %lld ms", static_cast<long long>(us / 1000));
    else
        std::snprintf(buf, sizeof buf, "timed out after %.3f ms", double(us) / 1000.0);
    e.message = buf;
    return e;
}

void apply_timeout_late(Completion& c, std::chrono::nanoseconds timeout) {
    if (timeout.count() <= 0 || c.outcome == Completion::Outcome::requeue) return;
    if (std::chrono::microseconds(c.duration_us) <= timeout) return;
    c.outcome = Completion::Outcome::failed;
    c.bytes.clear();
    c.error = timed_out(timeout);
}

namespace {

/// One task at a time, run on the scheduler's thread when it waits.
class SynchronousExecutor final : public TaskExecutor {
public:
    explicit SynchronousExecutor(const Registry& r) : registry_(r) {}
    bool accepts(std::uint32_t) const override { return !pending_; }
    int submit(const Request& r) override {
        request_ = r;
        pending_ = true;
        return 0;
    }
    int worker_pid(int) const override { return getpid(); }
    void wait(std::vector<Completion>& out, Clock::time_point deadline) override {
        if (!pending_) {
            if (deadline != Clock::time_point::max()) std::this_thread::sleep_until(deadline);
            return;
        }
        pending_ = false;
        out.push_back(run_request(registry_, request_.task, request_.activity, request_.args));
        out.back().worker = 0;
        apply_timeout_late(out.back(), request_.timeout);
    }
    std::size_t in_flight() const override { return pending_ ? 1 : 0; }
    void stop(bool) noexcept override { pending_ = false; }

private:
    const Registry& registry_;
    Request request_;
    bool pending_ = false;
};

/// A pool of threads sharing one queue.
class ThreadExecutor final : public TaskExecutor {
public:
    ThreadExecutor(const Registry& r, int n) : registry_(r) {
        threads_.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { loop(i); });
    }
    ~ThreadExecutor() override { stop(false); }

    bool accepts(std::uint32_t depth) const override { return in_flight_ < threads_.size() * (depth > 1 ? 2 : 1); }
    int submit(const Request& r) override {
        {
            std::lock_guard<std::mutex> l(m_);
            queue_.push_back(r);
        }
        ++in_flight_;
        work_.notify_one();
        return -1;  // whichever thread takes it
    }
    int worker_pid(int) const override { return getpid(); }
    void wait(std::vector<Completion>& out, Clock::time_point deadline) override {
        std::unique_lock<std::mutex> l(m_);
        auto ready = [&] { return !done_.empty(); };
        // In slices: a signal asking to stop may land on any thread and wakes no one here.
        while (!ready() && in_flight_ > 0 && Clock::now() < deadline && !cancel_signal())
            done_cv_.wait_until(l, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
        in_flight_ -= done_.size();
        for (auto& c : done_) out.push_back(std::move(c));
        done_.clear();
    }
    std::size_t in_flight() const override { return in_flight_; }
    void stop(bool) noexcept override {
        {
            std::lock_guard<std::mutex> l(m_);
            if (stopping_) return;
            stopping_ = true;
            queue_.clear();
        }
        work_.notify_all();
        for (auto& t : threads_) t.join();
    }

private:
    void loop(int index) {
        std::unique_lock<std::mutex> l(m_);
        for (;;) {
            work_.wait(l, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            Request r = queue_.front();
            queue_.pop_front();
            l.unlock();
            Completion c = run_request(registry_, r.task, r.activity, r.args);
            c.worker = index;
            apply_timeout_late(c, r.timeout);
            l.lock();
            done_.push_back(std::move(c));
            done_cv_.notify_one();
        }
    }

    const Registry& registry_;
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable work_, done_cv_;
    std::deque<Request> queue_;
    std::vector<Completion> done_;
    std::size_t in_flight_ = 0;  // touched by the scheduler thread only
    bool stopping_ = false;
};

}  // namespace

std::unique_ptr<TaskExecutor> make_synchronous_executor(const Registry& registry) {
    return std::make_unique<SynchronousExecutor>(registry);
}

std::unique_ptr<TaskExecutor> make_thread_executor(const Registry& registry, int threads) {
    return std::make_unique<ThreadExecutor>(registry, threads);
}

}  // namespace flowy::detail

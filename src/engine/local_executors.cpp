// The executors that run tasks inside this process: synchronous and threads.

#include "engine/executor.hpp"
#include "worker/run_activity.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace flowy::detail {

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
    WorkerRef worker(int index) const override { return {index, pid_, {}}; }
    void wait(std::vector<Completion>& out, Clock::time_point deadline) override {
        if (!pending_) {
            if (deadline != Clock::time_point::max()) std::this_thread::sleep_until(deadline);
            return;
        }
        pending_ = false;
        out.push_back(run_request(registry_, request_));
        out.back().worker = 0;
        apply_timeout_late(out.back(), request_.timeout);
    }
    std::size_t in_flight() const override { return pending_ ? 1 : 0; }
    void stop(bool) noexcept override { pending_ = false; }

private:
    const Registry& registry_;
    const int pid_ = getpid();  // the workers are this process
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
    WorkerRef worker(int index) const override { return {index, pid_, {}}; }
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
            Completion c = run_request(registry_, r);
            c.worker = index;
            apply_timeout_late(c, r.timeout);
            l.lock();
            done_.push_back(std::move(c));
            done_cv_.notify_one();
        }
    }

    const Registry& registry_;
    const int pid_ = getpid();  // the workers are this process
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

#include "worker/run_activity.hpp"

#include "common/clock.hpp"

#include <flowy/activity.hpp>
#include <flowy/detail/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

namespace flowy::detail {

namespace {

/// The heartbeats of the attempt running on this thread. A gap longer than the timeout
/// loses the attempt for good; the loss is found at the next beat, when the result is
/// about to be written, or when the activity returns.
class Beat {
public:
    Beat(const Heartbeats& h, std::int64_t started_us)
        : timeout_us_(std::chrono::duration_cast<std::chrono::microseconds>(h.timeout).count()),
          word_(h.beat_us),
          lost_flag_(h.lost),
          last_us_(started_us),
          outer_(std::exchange(current_, this)) {}
    ~Beat() { current_ = outer_; }
    Beat(const Beat&) = delete;
    Beat& operator=(const Beat&) = delete;

    /// flowy::heartbeat() on this thread.
    static Beat* current() noexcept { return current_; }

    bool beat(std::int64_t now) noexcept {
        if (lost_at(now)) return false;
        last_us_.store(now, std::memory_order_relaxed);
        if (word_) word_->store(now, std::memory_order_relaxed);
        return true;
    }
    /// Whether the attempt is lost as of `now` (a gap past the timeout, or lost from outside).
    bool lost_at(std::int64_t now) noexcept {
        if (timeout_us_ > 0 && now - last_us_.load(std::memory_order_relaxed) > timeout_us_)
            lost_.store(true, std::memory_order_relaxed);
        if (lost_flag_ && lost_flag_->load(std::memory_order_relaxed)) lost_.store(true, std::memory_order_relaxed);
        return lost_.load(std::memory_order_relaxed);
    }
    /// The activity returned: what follows is the engine's work, which needs no beats.
    void done() noexcept {
        if (word_) word_->store(beat_done, std::memory_order_relaxed);
    }

private:
    std::int64_t timeout_us_;
    std::atomic<std::int64_t>* word_;
    const std::atomic<std::uint32_t>* lost_flag_;
    std::atomic<std::int64_t> last_us_;
    std::atomic<bool> lost_{false};
    Beat* outer_;
    static thread_local Beat* current_;
};
thread_local Beat* Beat::current_ = nullptr;

struct HeartbeatLost {};

/// The result's writer, checking first that the attempt was not lost before its end.
class CheckedOut final : public ResultOut {
public:
    CheckedOut(ResultOut& inner, Beat& beat) : inner_(inner), beat_(beat) {}
    bool needs_size() const override { return inner_.needs_size(); }
    std::streambuf& begin(std::size_t size) override {
        if (beat_.lost_at(monotonic_us())) throw HeartbeatLost{};
        checked = true;
        beat_.done();
        return inner_.begin(size);
    }
    bool checked = false;  // the attempt was found alive when the activity returned

private:
    ResultOut& inner_;
    Beat& beat_;
};

}  // namespace

Completion run_request(const Registry& registry, const Request& r) {
    Completion c;
    c.task = r.task;
    ViewSource in(r.args);
    StringOut out(c.bytes);
    run_activity(registry, r.activity, in, out, c, {r.heartbeat_timeout});
    return c;
}

void run_activity(const Registry& registry, std::uint32_t activity, std::streambuf& args, ResultOut& out, Completion& c,
                  const Heartbeats& heartbeats) {
    c.started_us = monotonic_us();
    // No beats to keep (no timeout, nobody watching): heartbeat() has nothing to say then,
    // and the attempt costs no thread-local bookkeeping.
    std::optional<Beat> beat;
    if (heartbeats.timeout.count() > 0 || heartbeats.beat_us || heartbeats.lost) beat.emplace(heartbeats, c.started_us);
    bool watched = heartbeats.timeout.count() > 0;
    std::optional<CheckedOut> checked;
    if (watched) checked.emplace(out, *beat);
    // Lost before it ended (its result not yet written): it is timed out, whatever it did after.
    auto lost = [&] { return watched && !checked->checked && beat->lost_at(monotonic_us()); };
    try {
        (*registry.at(activity))(args, watched ? static_cast<ResultOut&>(*checked) : out);
        if (lost()) throw HeartbeatLost{};  // a void result
        c.outcome = Completion::Outcome::finished;
    } catch (...) {
        c.outcome = Completion::Outcome::failed;
        c.bytes.clear();
        try {
            c.error = lost() ? missed_heartbeat(heartbeats.timeout) : current_error({});
        } catch (...) {
            c.error.message = "exception (its description failed)";
        }
    }
    if (beat) beat->done();
    c.ended_us = monotonic_us();
    c.duration_us = static_cast<std::uint64_t>(c.ended_us - c.started_us);
}

ErrorInfo timed_out_after(const char* what, std::chrono::nanoseconds timeout) {
    ErrorInfo e;
    e.kind = ErrorInfo::Kind::timed_out;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    char buf[96];
    if (us % 1000 == 0)
        std::snprintf(buf, sizeof buf, "%s %lld ms", what, static_cast<long long>(us / 1000));
    else
        std::snprintf(buf, sizeof buf, "%s %.3f ms", what, double(us) / 1000.0);
    e.message = buf;
    return e;
}

ErrorInfo timed_out(std::chrono::nanoseconds timeout) {
    return timed_out_after("timed out after", timeout);
}

ErrorInfo missed_heartbeat(std::chrono::nanoseconds timeout) {
    return timed_out_after("timed out: no heartbeat for", timeout);
}

void apply_timeout_late(Completion& c, std::chrono::nanoseconds timeout) {
    if (timeout.count() <= 0 || c.outcome == Completion::Outcome::requeue) return;
    if (std::chrono::microseconds(c.duration_us) <= timeout) return;
    c.outcome = Completion::Outcome::failed;
    c.bytes.clear();
    c.error = timed_out(timeout);
}

}  // namespace flowy::detail

bool flowy::heartbeat() noexcept {
    detail::Beat* b = detail::Beat::current();
    return !b || b->beat(detail::monotonic_us());
}

#include "worker/run_activity.hpp"

#include "common/clock.hpp"

#include <flowy/detail/serialize.hpp>

#include <chrono>
#include <cstdio>

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
    c.started_us = monotonic_us();
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
    c.ended_us = monotonic_us();
    c.duration_us = static_cast<std::uint64_t>(c.ended_us - c.started_us);
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

}  // namespace flowy::detail

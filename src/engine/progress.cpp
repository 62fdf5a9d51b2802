#include "engine/progress.hpp"

#include "trace/writer.hpp"

#include <cstdio>

namespace flowy::detail {

ProgressLine::ProgressLine() : started_us_(trace::now_us()) {}

ProgressLine::~ProgressLine() {
    clear();
}

void ProgressLine::clear() {
    if (!shown_) return;
    shown_ = false;
    std::fputs("\r\x1b[K", stderr);
}

void ProgressLine::tick(std::size_t running, std::size_t stopped) {
    std::int64_t now = trace::now_us();
    if (now - drawn_us_ < 100000) return;  // at most ten times a second
    drawn_us_ = now;
    shown_ = true;
    std::fprintf(stderr, "\r\x1b[Kflowy: %zu/%zu done, %zu running, %zu failed, %.1f s", finished_, scheduled_, running,
                 failed_, double(now - started_us_) / 1e6);
    if (stopped)  // the run waits for them: say so where the user looks
        std::fprintf(stderr, ", %zu worker%s stopped (kill -CONT to go on)", stopped, stopped == 1 ? "" : "s");
    std::fflush(stderr);
}

}  // namespace flowy::detail

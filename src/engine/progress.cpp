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

void ProgressLine::tick(std::size_t running) {
    std::int64_t now = trace::now_us();
    if (now - drawn_us_ < 100000) return;  // at most ten times a second
    drawn_us_ = now;
    shown_ = true;
    std::fprintf(stderr, "\r\x1b[Kflowy: %zu/%zu done, %zu running, %zu failed, %.1f s", finished_, scheduled_, running,
                 failed_, double(now - started_us_) / 1e6);
    std::fflush(stderr);
}

}  // namespace flowy::detail

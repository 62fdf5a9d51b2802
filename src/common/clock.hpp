#pragma once

#include <cstdint>
#include <ctime>

namespace flowy::detail {

/// CLOCK_MONOTONIC in microseconds: the clock of traces and of the workers' time
/// stamps, shared by the processes of one host.
inline std::int64_t monotonic_us() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace flowy::detail

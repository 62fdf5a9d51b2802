#include "engine/stop_signals.hpp"

#include "engine/executor.hpp"

#include <csignal>

namespace flowy::detail {

namespace {
volatile std::sig_atomic_t cancel_requested = 0;
struct sigaction saved_int, saved_term;
int installed = 0;

extern "C" void on_stop_signal(int sig) {
    if (cancel_requested) {
        // The second one forces: die of it (the workers die with us, the shared memory is anonymous).
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cancel_requested = sig;
}
}  // namespace

StopSignals::StopSignals() {
    if (installed++) return;
    cancel_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns with EINTR
    sigaction(SIGINT, &sa, &saved_int);
    sigaction(SIGTERM, &sa, &saved_term);
}

StopSignals::~StopSignals() {
    if (--installed) return;
    sigaction(SIGINT, &saved_int, nullptr);
    sigaction(SIGTERM, &saved_term, nullptr);
    cancel_requested = 0;
}

void restore_program_signals() noexcept {
    if (installed) {
        sigaction(SIGINT, &saved_int, nullptr);
        sigaction(SIGTERM, &saved_term, nullptr);
    }
}

int cancel_signal() noexcept {
    return cancel_requested;
}

}  // namespace flowy::detail

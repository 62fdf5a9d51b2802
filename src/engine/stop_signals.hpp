#pragma once
// SIGINT and SIGTERM during a run: the first asks the run to stop (cancel_signal()
// says which came; executors return from their waits when they see it), a second
// one forces the process out.

namespace flowy::detail {

/// Installs the handlers for the outermost run of this process, and puts back what was there.
class StopSignals {
public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
};

}  // namespace flowy::detail

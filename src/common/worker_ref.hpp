#pragma once

#include <string_view>

namespace flowy::detail {

/// Where an attempt runs: an executor's worker, its process and its host. An executor
/// whose workers are elsewhere names their host; one that does not know the worker
/// yet when a task is dispatched says index -1, and names it in the completion.
struct WorkerRef {
    int index = -1;
    int pid = -1;
    std::string_view host;  ///< "" for this host
};

}  // namespace flowy::detail

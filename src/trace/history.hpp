#pragma once
// What resume needs from an earlier run, read from its trace: the values of the tasks
// that succeeded with the hashes of the arguments they ran with, and the calls each
// frame made, in order. The engine's Replay (src/engine/replay.hpp) asks it.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowy::detail {

struct History {
    struct Done {
        std::string value;
        std::uint64_t args_hash = 0;  // args_hash() of the encoded arguments it ran with
    };
    std::unordered_map<std::string, Done> finished;                   // by first-attempt id
    std::unordered_map<std::string, std::vector<std::string>> calls;  // per frame prefix, in order
    std::string input;                                                // the run's encoded arguments
    std::string workflow, parameters;  // the first run's class and parameter types ("" if not recorded)
    /// Where each task that succeeded (child workflow calls included) came in the order
    /// results ended, in the run where it first succeeded: a resumed body's first,
    /// finish_order and parallel_reduce must see them in that order.
    std::unordered_map<std::string, std::uint64_t> finish_order;  // by first-attempt id, from 1
    std::uint64_t last_order = 0;                                 // the largest of them
};

/// Reads what resume needs from the trace at `path` (throws flowy::TraceError).
History load_history(const std::string& path);
/// The same from a trace's text (`name` for messages).
History history_of(std::string_view text, const std::string& name);

/// The hash a trace records with each dispatch, which resume compares (FNV-1a).
inline std::uint64_t args_hash(std::string_view encoded) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : encoded) h = (h ^ c) * 1099511628211ULL;
    return h;
}

}  // namespace flowy::detail

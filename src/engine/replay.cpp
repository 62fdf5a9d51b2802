#include "engine/replay.hpp"

#include <flowy/error.hpp>

namespace flowy::detail {

void Replay::check_call(std::size_t n, const TaskId& first_attempt) const {
    auto rec = history_.calls.find(std::string(first_attempt.frame));
    if (rec == history_.calls.end() || n >= rec->second.size()) return;
    std::string id = first_attempt.str();
    if (rec->second[n] == id) return;
    throw TaskError("flowy: resume: call " + std::to_string(n + 1) +
                        (first_attempt.frame.empty() ? std::string() : " of " + std::string(first_attempt.frame)) +
                        " is " + id + ", but the trace recorded " + rec->second[n] +
                        " there: the workflow no longer makes the calls it made",
                    id, "flowy::resume");
}

std::uint64_t Replay::finish_order(const TaskId& first_attempt) const {
    auto it = history_.finish_order.find(first_attempt.str());
    return it == history_.finish_order.end() ? 0 : it->second;
}

const std::string* Replay::cached(const TaskId& first_attempt, std::string_view args) {
    std::string id = first_attempt.str();
    auto done = history_.finished.find(id);
    if (done == history_.finished.end()) return nullptr;
    if (done->second.args_hash == args_hash(args)) return &done->second.value;
    if (!diverged_)
        diverged_ = std::make_exception_ptr(TaskError("flowy: resume: " + id +
                                                          " is called with other arguments than the trace recorded: "
                                                          "the workflow no longer makes the calls it made",
                                                      id, "flowy::resume"));
    return nullptr;
}

}  // namespace flowy::detail

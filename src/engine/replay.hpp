#pragma once
// Resume's view of an earlier run: the replay seam. The execution asks it, for each
// call a body makes, whether the call is the one the history recorded there, and,
// for each task about to run, whether the history already holds its value. The local
// engine's history comes from a trace (src/trace/history.hpp).

#include "common/task_id.hpp"
#include "trace/history.hpp"

#include <exception>
#include <string>
#include <string_view>

namespace flowy::detail {

class Replay {
public:
    explicit Replay(History history) : history_(std::move(history)) {}

    /// The arguments the recorded run started with.
    const std::string& input() const { return history_.input; }

    /// Call number `n` (from 0) of the frame of `first_attempt`: throws TaskError naming
    /// the first diverging call if the history recorded another call there.
    void check_call(std::size_t n, const TaskId& first_attempt) const;

    /// The recorded value of a task that succeeded with the same arguments (it does not
    /// run again), or null (it runs). A task recorded with other arguments is a
    /// divergence, kept in diverged().
    const std::string* cached(const TaskId& first_attempt, std::string_view args);

    /// Where the task of `first_attempt` came in the recorded order of results ending
    /// (from 1), or 0; and the largest such number (results of this run come after it).
    std::uint64_t finish_order(const TaskId& first_attempt) const;
    std::uint64_t last_order() const { return history_.last_order; }

    /// Set once a body called a task with other arguments than recorded: the run stops with it.
    const std::exception_ptr& diverged() const { return diverged_; }

private:
    History history_;
    std::exception_ptr diverged_;
};

}  // namespace flowy::detail

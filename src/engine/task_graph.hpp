#pragma once
// The task graph of one execution: its tasks, the edges from each task to the tasks
// waiting on its result, their counts of inputs not finished yet, and how an end
// propagates. A task that succeeds makes the dependents whose last input it was
// ready; a task that fails fails every task waiting on it, transitively. No I/O, no
// trace, no executor: the scheduler takes tasks off `ready`, and whoever ends a task
// is told which tasks ended with it.

#include <flowy/detail/core.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace flowy::detail {

/// Where a task is on its way: waiting for inputs, ready to be handed to an executor,
/// running (or a child workflow's body running for it), ended (its slot is resolved).
enum class TaskState : std::uint8_t { waiting, ready, running, ended };

/// One call of an activity or a child workflow. 56 bytes: nine to a block of the deque.
struct Task {
    static constexpr std::uint32_t no_edge = UINT32_MAX;
    std::uint32_t frame = 0;
    std::uint32_t call = 0;
    std::uint16_t binding = 0;       // index in its frame's configuration (< Config::max_bindings)
    std::uint16_t attempt = 0;       // retries are at most Config::max_retries
    std::uint32_t pending : 30 = 0;  // inputs not finished yet (< TaskGraph::max_inputs)
    TaskState state : 2 = TaskState::waiting;
    std::uint32_t first_dependent = no_edge;  // the tasks waiting on it: a list in the graph's edges
    std::uint32_t last_dependent = no_edge;
    SlotPtr slot;
    Bytes args;                          // encoded, once its inputs are finished
    std::unique_ptr<TaskArgs> deferred;  // what encodes them then
};

class TaskGraph {
public:
    static constexpr std::size_t max_inputs = (std::size_t(1) << 30) - 1;

    /// A new frame, whose tasks are counted apart (frames are numbered from 0 in order).
    void add_frame() { open_in_frame_.push_back(0); }

    /// A new waiting task of `frame`, with a pending slot resolved by `owner`; returns its index.
    std::uint32_t add(std::uint32_t frame, std::uint16_t binding, std::uint32_t call, Execution* owner) {
        auto index = static_cast<std::uint32_t>(tasks_.size());
        Task& t = tasks_.emplace_back();
        t.frame = frame;
        t.binding = binding;
        t.call = call;
        t.slot = make_slot();
        t.slot->owner = owner;
        t.slot->task = index;
        ++open_;
        ++open_in_frame_[frame];
        return index;
    }
    /// `consumer` takes the result of `producer`, which has not ended: one more pending input.
    void depend(std::uint32_t producer, std::uint32_t consumer);
    /// `index`, with every input finished, waits for the executor.
    void make_ready(std::uint32_t index) {
        tasks_[index].state = TaskState::ready;
        ready.push_back(index);
    }

    Task& operator[](std::uint32_t index) { return tasks_[index]; }
    const Task& operator[](std::uint32_t index) const { return tasks_[index]; }
    std::size_t size() const { return tasks_.size(); }
    std::deque<Task>& tasks() { return tasks_; }
    const std::deque<Task>& tasks() const { return tasks_; }

    /// Tasks not ended: in all, and in one frame.
    std::size_t open() const { return open_; }
    std::size_t open_in(std::uint32_t frame) const { return open_in_frame_[frame]; }

    /// The next number in the order in which results end (Slot::finish_seq).
    std::uint64_t next_seq() { return ++seq_; }
    /// Numbers up to `n` are taken (by a recorded run that resume replays).
    void skip_seq(std::uint64_t n) { seq_ = std::max(seq_, n); }

    /// `index` succeeded with `bytes`: its slot is finished, and the dependents whose
    /// inputs have now all finished become ready.
    void succeed(std::uint32_t index, std::string bytes, std::uint64_t seq = 0);

    /// `first` failed with `error`; so does every task waiting on it, transitively,
    /// none of which will run. `ended(index)` is called for each, `first` included, once
    /// its slot is failed.
    template <class Ended>
    void fail(std::uint32_t first, const std::shared_ptr<const ErrorInfo>& error, Ended&& ended) {
        std::vector<std::uint32_t> work{first};
        while (!work.empty()) {
            std::uint32_t index = work.back();
            work.pop_back();
            Task& t = tasks_[index];
            if (t.state == TaskState::ended) continue;
            end(t);
            Slot& s = *t.slot;
            s.fail(error);
            s.finish_seq = next_seq();
            ended(index);
            for (std::uint32_t e = t.first_dependent; e != Task::no_edge; e = edges_[e].next)
                if (tasks_[edges_[e].task].state == TaskState::waiting) {
                    s.observed = true;  // consumed by a dependent, which carries the error on
                    work.push_back(edges_[e].task);
                }
        }
    }

    /// Tasks whose inputs are all finished, in the order they became ready.
    std::deque<std::uint32_t> ready;

private:
    /// The task leaves the open counts and drops what only running needs.
    void end(Task& t) {
        t.state = TaskState::ended;
        --open_;
        --open_in_frame_[t.frame];
        t.args.clear();
        t.deferred.reset();
    }

    // Dependents as lists in one array: a task with one dependent (a fan-in) costs 8
    // bytes, not a vector and its allocation.
    struct Edge {
        std::uint32_t task;
        std::uint32_t next;
    };
    std::deque<Task> tasks_;
    std::vector<Edge> edges_;
    std::vector<std::size_t> open_in_frame_;
    std::size_t open_ = 0;
    std::uint64_t seq_ = 0;
};

}  // namespace flowy::detail

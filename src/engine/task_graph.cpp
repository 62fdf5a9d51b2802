#include "engine/task_graph.hpp"

namespace flowy::detail {

void TaskGraph::depend(std::uint32_t producer, std::uint32_t consumer) {
    Task& p = tasks_[producer];
    auto e = static_cast<std::uint32_t>(edges_.size());
    edges_.push_back({consumer, Task::no_edge});
    if (p.last_dependent == Task::no_edge)
        p.first_dependent = e;
    else
        edges_[p.last_dependent].next = e;
    p.last_dependent = e;
    ++tasks_[consumer].pending;
}

void TaskGraph::succeed(std::uint32_t index, std::string bytes, std::uint64_t seq) {
    Task& t = tasks_[index];
    end(t);
    Slot& s = *t.slot;
    s.state = Slot::State::finished;
    s.finish_seq = seq ? seq : next_seq();
    s.bytes = std::move(bytes);
    for (std::uint32_t e = t.first_dependent; e != Task::no_edge; e = edges_[e].next) {
        std::uint32_t d = edges_[e].task;
        Task& dt = tasks_[d];
        if (dt.state != TaskState::waiting) continue;
        if (--dt.pending == 0) make_ready(d);
    }
}

}  // namespace flowy::detail

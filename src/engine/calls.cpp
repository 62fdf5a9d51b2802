// The typed layer's entry points into the current execution (include/flowy/detail/core.hpp):
// a Call schedules a task, await() and FinishQueue suspend the body until results are
// in, note_read() tells the execution what the body read.

#include "engine/execution.hpp"

#include <algorithm>

namespace flowy::detail {

bool finished_before(const Slot& a, const Slot& b) {
    bool a_task = a.task != no_task, b_task = b.task != no_task;
    if (a_task != b_task) return !a_task;
    return a.finish_seq < b.finish_seq;
}

namespace {
// std heap functions build a max-heap: "later" puts the earliest on top.
bool later(const SlotPtr& a, const SlotPtr& b) {
    return finished_before(*b, *a);
}
}  // namespace

FinishQueue::FinishQueue() : exec_(Execution::current()) {
    if (exec_) exec_->register_queue(this);
}

FinishQueue::~FinishQueue() {
    if (exec_) exec_->unwatch(this);
}

void FinishQueue::add(const SlotPtr& s) {
    if (!s) throw std::logic_error("flowy: an empty Result given to first/finish_order/parallel_reduce");
    ++size_;
    if (s->state != Slot::State::pending) {
        arrived(s);
        return;
    }
    if (!exec_ || s->owner != exec_) throw std::logic_error("flowy: a Result of another run was awaited");
    exec_->watch(*s, this);
    if (std::uint64_t n = exec_->recorded_order(*s)) {
        recorded_pending_.push_back(n);
        std::push_heap(recorded_pending_.begin(), recorded_pending_.end(), std::greater<>{});
    }
}

void FinishQueue::arrived(const SlotPtr& s) {
    ready_.push_back(s);
    std::push_heap(ready_.begin(), ready_.end(), later);
    if (!recorded_pending_.empty() && exec_)
        if (std::uint64_t n = exec_->recorded_order(*s)) {
            recorded_arrived_.push_back(n);
            std::push_heap(recorded_arrived_.begin(), recorded_arrived_.end(), std::greater<>{});
        }
}

bool FinishQueue::can_take() {
    if (ready_.empty()) return false;
    // A resumed body must see results in the recorded order, although results taken
    // from the trace end only when the loop dispatches them: wait for any pending one
    // that the recorded run saw finish before the earliest one here.
    auto& p = recorded_pending_;
    auto& a = recorded_arrived_;
    while (!p.empty() && !a.empty() && p.front() == a.front()) {
        std::pop_heap(p.begin(), p.end(), std::greater<>{});
        p.pop_back();
        std::pop_heap(a.begin(), a.end(), std::greater<>{});
        a.pop_back();
    }
    return p.empty() || ready_.front()->task == no_task || ready_.front()->finish_seq < p.front();
}

SlotPtr FinishQueue::take() {
    if (size_ == 0) throw std::logic_error("flowy: no result left to take");
    if (!can_take()) {
        if (!exec_) throw std::logic_error("flowy: results awaited outside a workflow run");
        exec_->await(*this);
    }
    std::pop_heap(ready_.begin(), ready_.end(), later);
    SlotPtr s = std::move(ready_.back());
    ready_.pop_back();
    --size_;
    return s;
}

void note_read(Slot& s) {
    if (s.owner && s.owner == Execution::current()) s.owner->record_read(s);
}

void await(Slot& s) {
    Execution* ex = Execution::current();
    if (!ex) throw std::logic_error("flowy: a Result was read before its task finished, outside a workflow run");
    ex->await(s);
}

Call::Call(const Dependency& d) : dep_(d), exec_(Execution::current()) {
    if (!exec_)
        throw std::logic_error("flowy: activity '" + d.name +
                               "' called outside a workflow run: run the workflow with flowy::LocalWorkflow, "
                               "or construct the Activity from a callable to run it directly");
}

bool Call::input(const SlotPtr& s) {
    if (!s) throw std::logic_error("flowy: an empty Result passed to activity '" + dep_.name + "'");
    inputs_.push_back(s.get());
    bool ok = s->state == Slot::State::finished;
    ready_ = ready_ && ok;
    return ok;
}

void Call::after(const SlotPtr& s) {
    if (!s) throw std::logic_error("flowy: an empty Result given to after() of '" + dep_.name + "'");
    after_.push_back(s.get());  // the arguments do not depend on it: they may be encoded now
}

SlotPtr Call::submit(std::unique_ptr<TaskArgs> deferred) {
    return exec_->schedule(dep_, inputs_, std::move(bytes_), std::move(deferred), after_, std::move(name_));
}

}  // namespace flowy::detail

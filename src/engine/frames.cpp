// Frames: a body's life in an execution. A frame starts (the root, or a child
// workflow for one of its parent's tasks), its body runs on its fiber until it
// suspends or returns, and then the frame concludes: it finishes or fails its
// parent's task, fails the run, or starts its next incarnation after restart().

#include "engine/execution.hpp"

namespace flowy::detail {

std::shared_ptr<ErrorInfo> error_of(std::exception_ptr ep) {
    auto e = std::make_shared<ErrorInfo>();
    try {
        std::rethrow_exception(ep);
    } catch (const TaskTimedout& x) {
        *e = ErrorInfo{ErrorInfo::Kind::timed_out, x.what(), x.type(), x.task(), {}};
    } catch (const WorkerCrashed& x) {
        *e = ErrorInfo{ErrorInfo::Kind::crashed, x.what(), x.type(), x.task(), {}};
    } catch (const TaskError& x) {
        *e = ErrorInfo{ErrorInfo::Kind::exception, x.what(), x.type(), x.task(), {}};
    } catch (...) {
        *e = current_error({});
    }
    return e;
}

namespace {

std::shared_ptr<const ErrorInfo> logic_error(std::string message) {
    return std::make_shared<ErrorInfo>(
        ErrorInfo{ErrorInfo::Kind::exception, std::move(message), "std::logic_error", {}, {}});
}

}  // namespace

Execution::Frame& Execution::start_frame(const Plan& plan, std::string prefix, std::uint32_t parent_task,
                                         std::string args) {
    Frame& f = frames_.emplace_back();
    frame_at_.push_back(&f);
    f.index = static_cast<std::uint32_t>(frames_.size() - 1);
    graph_.add_frame();
    f.plan = &plan;
    f.prefix = std::move(prefix);
    f.parent_task = parent_task;
    f.calls.assign(plan.config->bindings.size(), 0);
    f.args = std::move(args);
    live_frames_.push_back(f.index);
    if (recorder_ && !f.root()) recorder_->child_started(id_of(graph_[parent_task]));
    start_incarnation(f);
    return f;
}

void Execution::start_incarnation(Frame& f) {
    f.instance.reset();
    f.result = nullptr;
    f.restart.reset();
    f.state = FrameState::returned;
    try {
        // the workflow's constructor (the root's first instance was made while checking the configuration)
        f.instance = first_instance_ ? std::move(first_instance_) : f.plan->type->make();
    } catch (...) {
        f.error = std::current_exception();
        return;
    }
    f.body.create(scheduler_stack_, [this, &f] {
        try {
            if (abandoning_) throw Abandoned{};
            f.result = f.instance->invoke(f.args);
            if (!f.result) throw std::logic_error("flowy: the workflow returned an empty Result");
        } catch (const boost::context::detail::forced_unwind&) {
            throw;
        } catch (const Abandoned&) {
        } catch (...) {
            f.error = std::current_exception();
        }
        f.state = FrameState::returned;
    });
    f.state = FrameState::running;  // ready to be entered by the loop
}

bool Execution::can_resume(const Frame& f) {
    if (f.state == FrameState::running) return true;
    if (f.state != FrameState::suspended) return false;
    return (f.waiting && f.waiting->state != Slot::State::pending) || (f.waiting_queue && f.waiting_queue->can_take());
}

void Execution::enter(Frame& f) {
    current_frame_ = &f;
    f.body.enter();
    current_frame_ = nullptr;
}

void Execution::suspend(Frame& f) {
    if (abandoning_) throw Abandoned{};
    f.state = FrameState::suspended;
    f.body.leave();
    f.state = FrameState::running;
    if (abandoning_) throw Abandoned{};
}

void Execution::frame_failed(Frame& f, std::shared_ptr<const ErrorInfo> e) {
    f.state = FrameState::done;
    if (!f.root()) {
        if (recorder_) recorder_->child_failed(id_of(graph_[f.parent_task]), *e);
        task_failed(f.parent_task, std::move(e));
    } else if (!f.error) {
        f.result = failed_slot(std::move(e));
    }
}

void Execution::conclude(Frame& f) {
    if (f.state == FrameState::returned) {
        f.body.drop();
        if (f.error) {
            if (f.root())
                f.state = FrameState::done;  // the root keeps the exception itself
            else
                frame_failed(f, error_of(f.error));
            return;
        }
        if (f.result->restarting) {
            f.restart = restart_of(*f.result);
            f.state = FrameState::restarting;
        } else {
            f.result->observed = true;
            if (f.result->state == Slot::State::failed) {
                frame_failed(f, f.result->error());
                return;
            }
            if (f.result->state == Slot::State::pending) {
                if (f.result->owner != this) {
                    f.error = std::make_exception_ptr(
                        std::logic_error("flowy: the workflow returned a Result of another run"));
                    if (!f.root())
                        frame_failed(f, error_of(f.error));
                    else
                        f.state = FrameState::done;
                }
                return;
            }
            // Its result is in; the frame ends once its tasks have ended too.
            if ((f.root() ? graph_.open() : graph_.open_in(f.index)) != 0) return;
            f.state = FrameState::done;
            if (f.root()) return;
            std::string bytes;
            try {
                f.plan->type->encode_result(*f.result, bytes);
            } catch (...) {
                task_failed(f.parent_task, std::make_shared<ErrorInfo>(current_error(task_id(graph_[f.parent_task]))));
                return;
            }
            if (recorder_) recorder_->child_finished(id_of(graph_[f.parent_task]), {bytes, f.plan->type->describe});
            task_succeeded(f.parent_task, std::move(bytes));
            return;
        }
    }
    if (f.state == FrameState::restarting) conclude_restart(f);
}

void Execution::conclude_restart(Frame& f) {
    const Slot* failed = nullptr;
    for (const SlotPtr& in : f.restart->inputs) {
        in->observed = true;
        if (in->state == Slot::State::pending) {
            if (in->owner != this)
                frame_failed(f, logic_error("flowy::restart: an argument is a Result of another run"));
            return;  // its arguments are not all in yet
        }
        if (in->state == Slot::State::failed && (!failed || finished_before(*in, *failed))) failed = in.get();
    }
    if (failed) {
        frame_failed(f, failed->error());
        return;
    }
    if (std::string m = restart_mismatch(*f.restart, *f.plan->type); !m.empty()) {
        frame_failed(f, std::make_shared<ErrorInfo>(
                            ErrorInfo{ErrorInfo::Kind::exception, std::move(m), "std::invalid_argument", {}, {}}));
        return;
    }
    std::string args;
    try {
        f.restart->args->encode(args);
    } catch (...) {
        frame_failed(f, std::make_shared<ErrorInfo>(current_error({})));
        return;
    }
    f.args = std::move(args);
    ++f.incarnation;
    if (recorder_) {
        TaskSource<std::vector<SlotPtr>> args{this, &f.restart->inputs};
        recorder_->restarted(f.prefix, f.incarnation, task_list(args));
    }
    start_incarnation(f);
}

void Execution::conclude_frames() {
    // A child that ends resolves a task of its parent, which may let the parent end too.
    for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t i = 0; i < live_frames_.size();) {
            Frame& f = frames_[live_frames_[i]];
            FrameState before = f.state;
            int incarnation = f.incarnation;
            if (f.state == FrameState::returned || f.state == FrameState::restarting) conclude(f);
            changed |= f.state != before || f.incarnation != incarnation;
            if (f.state == FrameState::done && !f.root()) {
                f.instance.reset();
                live_frames_[i] = live_frames_.back();
                live_frames_.pop_back();
                continue;
            }
            ++i;
        }
    }
}

}  // namespace flowy::detail

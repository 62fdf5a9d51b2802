// The calls bodies make into their execution (schedule a task, wait for a result),
// how a task's end reaches its result and whoever waits on it, and abandoning a run.

#include "engine/execution.hpp"
#include "trace/writer.hpp"

#include <cstdio>

namespace flowy::detail {

namespace {
thread_local Execution* current_execution = nullptr;
}  // namespace

void leave_engine_in_child() {
    current_execution = nullptr;
    trace::leave_traces_in_child();
}

Execution* Execution::current() {
    return current_execution;
}

void Execution::set_current(Execution* e) {
    current_execution = e;
}

Execution::Execution(const Plan& root, ExecutionParts parts)
    : root_(root),
      executor_(std::move(parts.executor)),
      recorder_(parts.recorder),
      replay_(parts.replay),
      executor_name_(parts.executor_name),
      workers_(parts.workers),
      log_(std::move(parts.log)),
      cost_us_(parts.activities, -1.0),
      max_in_flight_(root.config->max_in_flight) {
    if (replay_) graph_.skip_seq(replay_->last_order());  // this run's results end after the recorded ones
    execution_timeout_ = parts.deadline ? parts.execution_timeout : root.config->execution_timeout;
    if (parts.deadline)
        deadline_ = *parts.deadline;
    else if (execution_timeout_.count() > 0)
        deadline_ = Clock::now() + execution_timeout_;
    // What each activity's options ask of the loop, by registry index.
    solo_.assign(parts.activities, 0);
    limit_.assign(parts.activities, 0);
    std::vector<const Plan*> plans{&root};
    while (!plans.empty()) {
        const Plan* p = plans.back();
        plans.pop_back();
        for (std::size_t i = 0; i < p->config->bindings.size(); ++i) {
            const ActivityOptions& o = p->config->bindings[i].options;
            std::size_t a = p->base + i;
            if (a >= parts.activities) continue;
            clocked_ |= o.schedule_to_start || o.schedule_to_close;
            limited_ |= o.concurrency > 0;
            solo_[a] = o.timeout || o.heartbeat_timeout || o.schedule_to_start || o.schedule_to_close;
            limit_[a] = o.concurrency;
        }
        for (const auto& c : p->children)
            if (c) plans.push_back(c.get());
    }
    gated_ = clocked_ || limited_ || max_in_flight_ > 0;
    if (limited_) running_.assign(parts.activities, 0);
}

Execution::~Execution() {
    abandon();
}

void Execution::abandon() noexcept {
    if (executor_) executor_->stop(true);
    // Bodies still suspended (or never entered) are entered once more: every await and
    // call now throws Abandoned, so they unwind and return on their own stacks.
    abandoning_ = true;
    for (Frame& f : frames_) {
        if (f.body.exists()) enter(f);
        f.body.drop();
        f.instance.reset();
    }
    for (FinishQueue* q : queues_) q->detach();
    queues_.clear();
    watchers_.clear();
    for (Task& t : graph_.tasks()) {
        Slot& s = *t.slot;
        if (s.state == Slot::State::pending) {
            auto e = std::make_shared<ErrorInfo>();
            e->task = task_id(t);
            e->message = "the run ended before task " + e->task + " finished";
            s.fail(std::move(e));
            s.finish_seq = graph_.next_seq();
        }
        s.owner = nullptr;
        s.task = no_task;
    }
    executor_.reset();
}

void log_warning(const std::function<void(std::string_view)>& log, const std::string& message) {
    if (log)
        log(message);
    else
        std::fprintf(stderr, "flowy: warning: %s\n", message.c_str());
}

void rethrow_as_run_error() {
    try {
        throw;
    } catch (const TaskError&) {  // Cancelled and TaskTimedout too
        throw;
    } catch (const ConfigError&) {
        throw;
    } catch (...) {
        ErrorInfo e = current_error({});
        throw TaskError(e.message, {}, e.type);
    }
}

const std::string& Execution::step_name(std::uint32_t index) const {
    static const std::string none;
    if (step_names_.empty()) return none;
    auto it = step_names_.find(index);
    return it == step_names_.end() ? none : it->second;
}

std::string Execution::describe_task(std::uint32_t index, std::string_view more) const {
    const Task& t = graph_[index];
    const std::string& name = step_name(index);
    std::string id = task_id(t);
    std::string tail = more.empty() ? std::string() : ", " + std::string(more);
    if (!name.empty()) return "\"" + name + "\" (task " + id + tail + ")";
    const Binding& b = binding(t);
    // (arguments over 64 KiB are not decoded for a message: a 500 MiB string would be copied)
    if (b.describe_args && !t.args.empty() && t.args.size() <= 65536)
        return "task " + id + " (" + b.name + "(" + b.describe_args(t.args) + ")" + tail + ")";
    return "task " + id + (more.empty() ? std::string() : " (" + std::string(more) + ")");
}

void Execution::warn(const std::string& message) const {
    log_warning(log_, message);
}

// ---- the calls bodies make ----

SlotPtr Execution::schedule(const Dependency& d, const std::vector<Slot*>& inputs, std::string&& args,
                            std::unique_ptr<TaskArgs> deferred, const std::vector<Slot*>& after, std::string&& name) {
    Frame* f = current_frame_;
    if (!f)
        throw std::logic_error("flowy: activity '" + d.name +
                               "' called outside a workflow body (from a constructor?): call it from operator()");
    if (abandoning_) throw Abandoned{};
    std::uint32_t b = bind(d, *f->plan->config, f->plan->type->name);
    if (inputs.size() + after.size() > TaskGraph::max_inputs)
        throw std::length_error("flowy: activity '" + d.name + "' called with " +
                                std::to_string(inputs.size() + after.size()) + " results as arguments (at most " +
                                std::to_string(TaskGraph::max_inputs) + ")");
    std::uint32_t call = f->calls[b];
    // Resume replays the body: it must make the calls the trace recorded, in order.
    if (replay_) replay_->check_call(f->scheduled, TaskId{f->prefix, f->plan->config->bindings[b].name, call, 0});
    ++f->scheduled;
    ++f->calls[b];
    std::uint32_t index = graph_.add(f->index, static_cast<std::uint16_t>(b), call, this);
    const Slot* failed = nullptr;
    auto take = [&](Slot& s) {
        s.observed = true;
        if (s.state == Slot::State::failed) {
            if (!failed || finished_before(s, *failed)) failed = &s;
        } else if (s.state == Slot::State::pending) {
            if (s.owner != this)
                throw std::logic_error("flowy: a Result of another run was passed to '" + d.name + "'");
            graph_.depend(s.task, index);
        }
    };
    for (Slot* in : inputs) take(*in);
    for (Slot* in : after) take(*in);
    if (!name.empty()) step_names_.emplace(index, std::move(name));
    Task& t = graph_[index];
    if (recorder_) {
        TaskSource<std::vector<Slot*>> args{this, &inputs};
        TaskSource<std::vector<std::uint32_t>> reads{this, &f->reads};
        TaskSource<std::vector<Slot*>> control{this, &after};
        recorder_->task_scheduled(id_of(t), {task_list(args), task_list(reads),
                                             after.empty() ? TaskList() : task_list(control), step_name(index)});
    }
    f->reads.clear();
    if (failed) {
        task_failed(index, failed->error(), true);
        return t.slot;
    }
    if (t.pending == 0) {
        t.args = std::move(args);
        graph_.make_ready(index);
        if (clocked_) note_ready(index);
        dispatch();  // at once: the body goes on while it runs
    } else if (deferred) {
        t.deferred = std::move(deferred);
    } else {
        t.args = std::move(args);  // encoded already: only an after(...) result is pending
    }
    return t.slot;
}

void Execution::await(Slot& s) {
    Frame* f = current_frame_;
    if (!f) throw std::logic_error("flowy: a Result was read outside the workflow body before its task finished");
    if (s.owner != this) throw std::logic_error("flowy: a Result of another run was read");
    f->waiting = &s;
    suspend(*f);
    f->waiting = nullptr;
}

void Execution::await(FinishQueue& q) {
    Frame* f = current_frame_;
    if (!f) throw std::logic_error("flowy: results were awaited outside the workflow body");
    f->waiting_queue = &q;
    suspend(*f);
    f->waiting_queue = nullptr;
}

std::uint64_t Execution::recorded_order(const Slot& s) const {
    if (!replay_ || s.task == no_task || s.owner != this) return 0;
    return replay_->finish_order(id_of(graph_[s.task]).first_attempt());
}

void Execution::record_read(Slot& s) {
    if (recorder_ && current_frame_ && s.task != no_task) {
        auto& r = current_frame_->reads;
        if (r.empty() || r.back() != s.task) r.push_back(s.task);
    }
}

void Execution::watch(Slot& s, FinishQueue* q) {
    watchers_.emplace(s.task, q);
}

void Execution::unwatch(FinishQueue* q) {
    std::erase_if(watchers_, [q](const auto& kv) { return kv.second == q; });
    queues_.erase(q);
}

// ---- a task's end ----

void Execution::wake_watchers(const Task& t) {
    if (watchers_.empty()) return;
    auto [from, to] = watchers_.equal_range(t.slot->task);
    for (auto it = from; it != to; ++it) it->second->arrived(t.slot);
    watchers_.erase(from, to);
}

void Execution::task_succeeded(std::uint32_t index, std::string bytes) {
    // replayed: a result the recorded run had takes its place in the recorded order
    std::size_t ready = clocked_ ? graph_.ready.size() : 0;
    graph_.succeed(index, std::move(bytes), recorded_order(*graph_[index].slot));
    if (clocked_) {
        clocks_.erase(index);
        note_ready_from(ready);  // the dependents it made ready
    }
    wake_watchers(graph_[index]);
}

void Execution::task_failed(std::uint32_t index, std::shared_ptr<const ErrorInfo> error, bool skipped) {
    graph_.fail(index, error, [&](std::uint32_t ended) {
        if (clocked_) clocks_.erase(ended);
        if (recorder_ && (skipped || ended != index)) recorder_->task_skipped(id_of(graph_[ended]), *error);
        wake_watchers(graph_[ended]);
    });
}

void Execution::report_ignored_failures() {
    for (const Task& t : graph_.tasks()) {
        const Slot& s = *t.slot;
        if (s.state != Slot::State::failed || s.observed) continue;
        std::string id = task_id(t);
        if (recorder_) recorder_->failure_ignored(id_of(t), s.error()->message);
        if (s.error()->task == id)
            warn("task " + id + " failed and its result was never read (failure ignored): " + s.error()->message);
        else
            warn("task " + id + " did not run because " + s.error()->task +
                 " failed, and its result was never read (failure ignored): " + s.error()->message);
    }
}

}  // namespace flowy::detail

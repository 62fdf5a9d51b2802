// The scheduler loop of an execution: enter the bodies that can go on, hand ready
// tasks to the executor, wait for completions and apply them (finish, fail, retry),
// fire the timers of delayed retries, and stop on cancellation, divergence or a
// body that waits for something no task will produce.

#include "engine/execution.hpp"
#include "engine/stop_signals.hpp"
#include "worker/run_activity.hpp"

#include <algorithm>
#include <csignal>

namespace flowy::detail {

namespace {
constexpr double cheap_task_us = 100;  // below this, queue several per worker
constexpr std::uint32_t cheap_depth = 16;
}  // namespace

SlotPtr Execution::run(std::string args, std::unique_ptr<Instance> first) {
    first_instance_ = std::move(first);
    outer_ = current();
    struct Current {  // bodies find their execution through Execution::current()
        Execution* self;
        explicit Current(Execution* e) : self(e) { set_current(e); }
        ~Current() { set_current(self->outer_); }
    } current_scope{this};

    StopSignals stop_signals;
    if (recorder_) {
        std::string parameters = root_.type->parameters.name();  // outlives `start`, which views it
        RunStart start{root_.type->name, executor_name_, parameters, workers_, replay_ != nullptr, args, {}};
        std::vector<const Plan*> plans{&root_};
        std::unordered_set<std::string> seen;
        while (!plans.empty()) {
            const Plan* p = plans.back();
            plans.pop_back();
            for (std::size_t b = 0; b < p->config->bindings.size(); ++b) {
                const Binding& bd = p->config->bindings[b];
                if (bd.child && b < p->children.size() && p->children[b]) plans.push_back(p->children[b].get());
                if (!bd.child && seen.insert(bd.name).second)
                    start.activities.push_back(bd.name + ": " + bd.signature.name());
            }
        }
        recorder_->run_started(start);
    }
    Frame& root = start_frame(root_, {}, no_task, std::move(args));
    std::vector<Completion> completions;
    std::vector<std::uint32_t> runnable;
    const auto tick_every = recorder_ ? recorder_->tick_every() : std::chrono::microseconds(0);
    for (;;) {
        if (recorder_) recorder_->tick(executor_->in_flight(), executor_->stopped_workers());
        if (std::exception_ptr stop = stop_reason()) {
            root.error = stop;
            break;
        }
        if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) {
            ErrorInfo e = timed_out_after("flowy: the execution ran past its execution_timeout of", execution_timeout_);
            root.error = std::make_exception_ptr(TaskTimedout(e.message));
            break;
        }
        for (auto& w : executor_->warnings) warn(w);
        executor_->warnings.clear();
        conclude_frames();
        if (root.state == FrameState::done) break;
        runnable.clear();
        for (std::uint32_t i : live_frames_)
            if (can_resume(frames_[i])) runnable.push_back(i);
        if (!runnable.empty()) {
            for (std::uint32_t i : runnable) enter(frames_[i]);
            continue;
        }
        Clock::time_point next_retry = std::min(release_delayed(), deadline_);
        std::size_t open = graph_.open();
        if (clocked_) next_retry = std::min(next_retry, expire());
        dispatch();
        // Results taken from a resumed trace end tasks inside dispatch(): see to their
        // frames before waiting. Child frames that were started are entered the same way.
        if (graph_.open() != open || (!graph_.ready.empty() && executor_->in_flight() == 0)) continue;
        if (executor_->in_flight() == 0 && delayed_.empty()) {
            bool any = false;
            for (std::uint32_t i : live_frames_) any |= can_resume(frames_[i]);
            if (any) continue;
            // Nothing runs and nothing can start: a body waits for a result no task will produce.
            root.error = std::make_exception_ptr(
                std::logic_error("flowy: the workflow waits for a result that no task of this run produces"));
            break;
        }
        completions.clear();
        if (tick_every.count() > 0) next_retry = std::min(next_retry, Clock::now() + tick_every);
        executor_->wait(completions, next_retry);
        if (recorder_) recorder_->woke();
        for (Completion& c : completions) on_completion(c);
    }

    if (!root.error && root.result && root.result->state == Slot::State::finished) {
        executor_->stop(false);
        report_ignored_failures();
        record_run_end(root);
        return root.result;
    }
    abandon();
    record_run_end(root);
    throw_run_error(root);
}

std::exception_ptr Execution::stop_reason() {
    if (replay_ && replay_->diverged()) return replay_->diverged();
    if (executor_->failure) return executor_->failure;
    if (int sig = cancel_signal())
        return std::make_exception_ptr(
            Cancelled(std::string("flowy: the run was cancelled by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM")));
    return nullptr;
}

Clock::time_point Execution::release_delayed() {
    while (!delayed_.empty()) {
        if (delayed_.front().first > Clock::now()) return delayed_.front().first;
        std::pop_heap(delayed_.begin(), delayed_.end(), std::greater<>());
        graph_.ready.push_back(delayed_.back().second);
        delayed_.pop_back();
        if (clocked_) note_ready(graph_.ready.back());
    }
    return Clock::time_point::max();
}

void Execution::dispatch() {
    while (!graph_.ready.empty()) {
        std::uint32_t index = graph_.ready.front();
        Task& t = graph_[index];
        bool child = frame_at_[t.frame]->plan->children[t.binding] != nullptr;
        std::uint32_t depth = 1;
        if (!child) {
            if (gated_) {
                if (t.state != TaskState::ready) {  // ended while it waited (a schedule timeout)
                    graph_.ready.pop_front();
                    continue;
                }
                if (max_in_flight_ && executor_->in_flight() >= max_in_flight_) return;
                std::uint32_t a = activity_of(t);
                if (limited_ && limit_[a] > 0 && running_[a] >= limit_[a]) {  // waits for a turn: the others go on
                    graph_.ready.pop_front();
                    turns_[a].push_back(index);
                    continue;
                }
            }
            depth = depth_for(t);
            if (!executor_->accepts(depth)) return;
        }
        graph_.ready.pop_front();
        start(index, depth);
    }
}

std::uint32_t Execution::depth_for(const Task& t) const {
    std::uint32_t a = activity_of(t);
    if (solo_[a]) return 1;  // its clocks must not run behind another task
    double c = cost_us_[a];
    return (c >= 0 && c < cheap_task_us) ? cheap_depth : 1;
}

void Execution::start(std::uint32_t index, std::uint32_t depth) {
    Task& t = graph_[index];
    if (t.deferred) {
        try {
            std::string args;
            t.deferred->encode(args);
            t.args = std::move(args);
        } catch (...) {
            t.deferred.reset();
            task_failed(index, std::make_shared<ErrorInfo>(current_error(task_id(t))));
            return;
        }
        t.deferred.reset();
    }
    t.state = TaskState::running;
    if (const Plan* child = frame_at_[t.frame]->plan->children[t.binding].get()) {
        // A child workflow: a new frame, entered by the loop (never from inside a body).
        start_frame(*child, task_id(t) + "/", index, t.args.take());
        return;
    }
    if (replay_) {
        if (const std::string* value = replay_->cached(id_of(t).first_attempt(), t.args)) {
            // Succeeded in the recorded run: its value stands, it does not run again.
            if (recorder_) recorder_->task_cached(id_of(t), {*value, binding(t).describe});
            task_succeeded(index, *value);
            return;
        }
    }
    const ActivityOptions& o = binding(t).options;
    Request r{index,
              activity_of(t),
              t.args,
              depth,
              o.timeout ? *o.timeout : std::chrono::nanoseconds(0),
              id_of(t),
              o.heartbeat_timeout ? *o.heartbeat_timeout : std::chrono::nanoseconds(0)};
    if (gated_) {
        if (auto it = clocks_.find(index); it != clocks_.end() && it->second.start_by != Clock::time_point::max()) {
            // What is left of its schedule_to_start, for an executor that queues it out of
            // sight (its schedule_to_close is this loop's: expire() and lose()).
            r.start_within = std::max(std::chrono::nanoseconds(1), it->second.start_by - Clock::now());
        }
        if (limited_) ++running_[r.activity];
    }
    int worker = executor_->submit(r);
    if (recorder_) recorder_->task_dispatched(id_of(t), executor_->worker(worker), t.args);
}

void Execution::on_completion(Completion& c) {
    Task& t = graph_[c.task];
    if (gated_) {
        if (limited_) end_turn(activity_of(t));
        if (t.state == TaskState::ended) return;  // ended while it ran (schedule_to_close): its attempt was stopped
    }
    switch (c.outcome) {
        case Completion::Outcome::requeue:
            t.state = TaskState::ready;
            graph_.ready.push_front(c.task);
            return;
        case Completion::Outcome::finished: {
            double& cost = cost_us_[activity_of(t)];
            cost = cost < 0 ? double(c.duration_us) : 0.8 * cost + 0.2 * double(c.duration_us);
            if (recorder_)
                recorder_->task_finished(id_of(t), {c.bytes, binding(t).describe}, executor_->worker(c.worker),
                                         {c.started_us, c.ended_us});
            task_succeeded(c.task, std::move(c.bytes));
            return;
        }
        case Completion::Outcome::failed: {
            auto e = std::make_shared<ErrorInfo>(std::move(c.error));
            e->task = task_id(t);
            const ActivityOptions& o = binding(t).options;
            std::string attempt = attempt_of(t);
            if (e->kind == ErrorInfo::Kind::crashed) {
                e->message += " while running " + describe_task(c.task, attempt);
                warn(e->message + "; a new worker took its place");
            } else if (e->kind == ErrorInfo::Kind::timed_out) {
                e->message = describe_task(c.task, attempt) + " " + e->message;
            } else if (const std::string& name = step_name(c.task);
                       !name.empty() && e->message.compare(0, name.size() + 2, name + ": ") != 0) {
                e->message = name + ": " + e->message;  // a step's failure leads with its name
            }
            if (recorder_) {
                WorkerRef worker = executor_->worker(c.worker);
                if (e->kind == ErrorInfo::Kind::crashed)
                    recorder_->worker_crashed(id_of(t), *e, worker);
                else if (e->kind == ErrorInfo::Kind::timed_out)
                    recorder_->task_timed_out(id_of(t), *e, worker);
                else
                    recorder_->task_failed(id_of(t), *e, {c.started_us, c.ended_us}, worker);
            }
            if (!c.final && retry(t, c.task, *e)) return;
            if (t.attempt > 0 && e->kind == ErrorInfo::Kind::exception && o.retry_on_error)
                e->message += " (" + attempt + ")";
            task_failed(c.task, std::move(e));
            return;
        }
    }
}

bool Execution::retry(Task& t, std::uint32_t index, const ErrorInfo& e) {
    const ActivityOptions& o = binding(t).options;
    bool retryable = e.kind != ErrorInfo::Kind::exception || o.retry_on_error;
    if (!retryable || t.attempt >= static_cast<std::uint32_t>(o.retries)) return false;
    TaskId before = id_of(t);
    ++t.attempt;
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(o.retry_delay);
    if (recorder_) recorder_->task_retried(before, id_of(t), delay);
    warn(e.message + "; retrying as " + task_id(t) +
         (delay.count() > 0 ? " in " + std::to_string(delay.count()) + " ms" : std::string()));
    t.state = TaskState::ready;
    if (o.retry_delay.count() > 0) {
        delayed_.emplace_back(Clock::now() + o.retry_delay, index);
        std::push_heap(delayed_.begin(), delayed_.end(), std::greater<>());
        if (auto it = clocks_.find(index); clocked_ && it != clocks_.end())
            it->second.start_by = Clock::time_point::max();  // it waits for its delay, not a worker
    } else {
        graph_.ready.push_back(index);
        if (clocked_) note_ready(index);
    }
    return true;
}

// ---- schedule timeouts and concurrency limits ----

void Execution::note_ready(std::uint32_t index) {
    const Task& t = graph_[index];
    const ActivityOptions& o = binding(t).options;
    if (t.state != TaskState::ready || (!o.schedule_to_start && !o.schedule_to_close)) return;
    auto now = Clock::now();
    TaskClock& c = clocks_[index];
    auto add = [&](Clock::time_point when) {
        deadlines_.emplace_back(when, index);
        std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
    };
    if (o.schedule_to_close && c.close_by == Clock::time_point::max()) add(c.close_by = now + *o.schedule_to_close);
    if (o.schedule_to_start) add(c.start_by = now + *o.schedule_to_start);
}

void Execution::note_ready_from(std::size_t first) {
    for (std::size_t i = first; i < graph_.ready.size(); ++i) note_ready(graph_.ready[i]);
}

Clock::time_point Execution::expire() {
    auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
        std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
        std::uint32_t index = deadlines_.back().second;
        deadlines_.pop_back();
        auto it = clocks_.find(index);
        if (it == clocks_.end()) continue;  // it ended
        const ActivityOptions& o = binding(graph_[index]).options;
        if (it->second.close_by <= now)
            schedule_timed_out(index, "schedule_to_close", *o.schedule_to_close);
        else if (it->second.start_by <= now && graph_[index].state == TaskState::ready)
            schedule_timed_out(index, "schedule_to_start", *o.schedule_to_start);
    }
    return deadlines_.empty() ? Clock::time_point::max() : deadlines_.front().first;
}

void Execution::schedule_timed_out(std::uint32_t index, const char* which, std::chrono::nanoseconds limit) {
    Task& t = graph_[index];
    bool running = t.state == TaskState::running;
    std::string what = std::string("timed out: ") + which + " of";
    auto e = std::make_shared<ErrorInfo>(timed_out_after(what.c_str(), limit));
    e->message += running                                          ? " passed before it ended (its attempt was stopped)"
                  : std::string_view(which) == "schedule_to_start" ? " passed waiting for a worker"
                                                                   : " passed before it started";
    e->task = task_id(t);
    e->message = describe_task(index, attempt_of(t)) + " " + e->message;
    if (running) executor_->lose(index, true);  // its completion, when it comes, is dropped
    if (recorder_) recorder_->task_timed_out(id_of(t), *e, WorkerRef{});
    task_failed(index, std::move(e));
}

void Execution::end_turn(std::uint32_t activity) {
    --running_[activity];
    auto it = turns_.find(activity);
    if (it == turns_.end()) return;
    while (!it->second.empty()) {
        std::uint32_t next = it->second.front();
        it->second.pop_front();
        if (graph_[next].state == TaskState::ready) {
            graph_.ready.push_back(next);
            return;
        }
    }
}

// ---- the end of a run ----

void Execution::record_run_end(const Frame& root) {
    if (!recorder_) return;
    if (!root.error && root.result && root.result->state == Slot::State::finished) {
        std::string bytes;
        try {
            root_.type->encode_result(*root.result, bytes);
        } catch (...) {
        }
        const Slot& r = *root.result;
        TaskSource<std::vector<std::uint32_t>> reads{this, &root.reads};
        if (r.owner == this && r.task != no_task) {
            TaskId from = id_of(graph_[r.task]);
            recorder_->run_finished({bytes, root_.type->describe}, &from, TaskList());
        } else {
            recorder_->run_finished({bytes, root_.type->describe}, nullptr, task_list(reads));
        }
        return;
    }
    ErrorInfo e;
    bool cancelled = false;
    if (root.error) {
        e = *error_of(root.error);
        try {
            std::rethrow_exception(root.error);
        } catch (const Cancelled&) {
            cancelled = true;
        } catch (...) {
        }
    } else if (root.result && root.result->error()) {
        e = *root.result->error();
    }
    recorder_->run_failed(e, cancelled);
}

void Execution::throw_run_error(const Frame& root) {
    if (root.error) {
        try {
            std::rethrow_exception(root.error);
        } catch (...) {
            rethrow_as_run_error();
        }
    }
    throw_error(*root.result->error());
}

}  // namespace flowy::detail

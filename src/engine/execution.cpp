#include "engine/execution.hpp"

#include <boost/context/protected_fixedsize_stack.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <unistd.h>
#include <thread>
#include <unordered_map>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FLOWY_ASAN 1
#endif

namespace flowy::detail {

namespace ctx = boost::context;

namespace {

thread_local Execution* current_execution = nullptr;
constexpr std::size_t body_stack_size = std::size_t(8) << 20;  // reserved, touched on demand
constexpr double cheap_task_us = 100;                          // below this, queue several per worker
constexpr std::uint32_t cheap_depth = 16;
constexpr int max_nesting = 16;

// AddressSanitizer must be told when the stack changes under it (Boost.Context's
// fcontext build does not), or it reports false errors on a body's stack.
inline void start_switch(void** fake, const void* bottom, std::size_t size) {
#ifdef FLOWY_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}
inline void finish_switch(void* fake, const void** bottom, std::size_t* size) {
#ifdef FLOWY_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

/// Boost's guarded stack, remembering where it put the stack.
class BodyStack {
public:
    BodyStack(std::size_t size, const void** bottom, std::size_t* got) : inner_(size), bottom_(bottom), got_(got) {}
    ctx::stack_context allocate() {
        ctx::stack_context sc = inner_.allocate();
        *bottom_ = static_cast<char*>(sc.sp) - sc.size;
        *got_ = sc.size;
        return sc;
    }
    void deallocate(ctx::stack_context& sc) noexcept {
#ifdef FLOWY_ASAN
        // The body's frames leave poisoned shadow behind; the pages may be mapped again
        // (a trace file), where AddressSanitizer would take them for stack.
        __asan_unpoison_memory_region(static_cast<char*>(sc.sp) - sc.size, sc.size);
#endif
        inner_.deallocate(sc);
    }

private:
    ctx::protected_fixedsize_stack inner_;
    const void** bottom_;
    std::size_t* got_;
};

/// Thrown into a suspended body when its run is abandoned, so that the body unwinds
/// on its own stack and returns normally (no std::exception: user code does not
/// catch it by accident).
struct Abandoned {};

/// The error an exception caught from a body stands for.
std::shared_ptr<ErrorInfo> error_of(std::exception_ptr ep) {
    auto e = std::make_shared<ErrorInfo>();
    try {
        std::rethrow_exception(ep);
    } catch (const TaskTimedout& x) {
        *e = ErrorInfo{ErrorInfo::Kind::timed_out, x.what(), x.type(), x.task()};
    } catch (const WorkerCrashed& x) {
        *e = ErrorInfo{ErrorInfo::Kind::crashed, x.what(), x.type(), x.task()};
    } catch (const TaskError& x) {
        *e = ErrorInfo{ErrorInfo::Kind::exception, x.what(), x.type(), x.task()};
    } catch (...) {
        *e = current_error({});
    }
    return e;
}

}  // namespace

// ---- SIGINT / SIGTERM ----

namespace {
volatile std::sig_atomic_t cancel_requested = 0;
struct sigaction saved_int, saved_term;

extern "C" void on_stop_signal(int sig) {
    if (cancel_requested) {
        // The second one forces: die of it (the workers die with us, the shared memory is anonymous).
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cancel_requested = sig;
}

/// Installs the handlers for the outermost run on this process, and restores what was there.
class StopSignals {
public:
    StopSignals() {
        if (installed_++) return;
        cancel_requested = 0;
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns with EINTR
        sigaction(SIGINT, &sa, &saved_int);
        sigaction(SIGTERM, &sa, &saved_term);
    }
    ~StopSignals() {
        if (--installed_) return;
        sigaction(SIGINT, &saved_int, nullptr);
        sigaction(SIGTERM, &saved_term, nullptr);
        cancel_requested = 0;
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    static inline int installed_ = 0;
};
}  // namespace

int cancel_signal() noexcept {
    return cancel_requested;
}

void leave_engine_in_child() {
    current_execution = nullptr;
}

Execution* Execution::current() {
    return current_execution;
}

Execution::Execution(const Config& config, const Plan& root, Registry registry, int workers, const History* history)
    : config_(config),
      root_(root),
      registry_(std::move(registry)),
      cost_us_(registry_.size(), -1.0),
      history_(history),
      workers_(workers) {
    std::string path = config.trace_path;
    if (path.empty())
        if (const char* env = std::getenv("FLOWY_TRACE")) path = env;
    if (!path.empty())
        trace_ = std::make_unique<trace::Writer>(path, history != nullptr, [this](const std::string& m) { warn(m); });
    show_progress_ = config.progress == 1 || (config.progress < 0 && isatty(2));
    switch (config.executor) {
        case Executor::synchronous:
            executor_ = make_synchronous_executor(registry_);
            break;
        case Executor::threads:
            executor_ = make_thread_executor(registry_, workers);
            break;
        case Executor::processes:
            executor_ = make_process_executor(registry_, workers);
            break;
    }
}

Execution::~Execution() {
    abandon();
}

void Execution::abandon() noexcept {
    if (executor_) executor_->stop(true);
    // Bodies still suspended (or never entered) are resumed once more: every await and
    // call now throws Abandoned, so they unwind and return on their own stacks.
    abandoning_ = true;
    for (Frame& f : frames_) {
        if (f.fiber) resume(f);
        f.fiber = ctx::fiber();
        f.instance.reset();
    }
    for (FinishQueue* q : queues_) q->detach();
    queues_.clear();
    watchers_.clear();
    for (Task& t : tasks_) {
        Slot& s = *t.slot;
        if (s.state == Slot::State::pending) {
            auto e = std::make_shared<ErrorInfo>();
            e->task = task_id(t);
            e->message = "the run ended before task " + e->task + " finished";
            s.fail(std::move(e));
            s.finish_seq = ++seq_;
        }
        s.owner = nullptr;
        s.task = UINT32_MAX;
    }
    executor_.reset();
}

const Binding& Execution::binding(const Task& t) const {
    return frames_[t.frame].plan->config->bindings[t.dep];
}

std::string Execution::task_id(const Task& t) const {
    return frames_[t.frame].prefix + binding(t).name + "-" + std::to_string(t.call) + "-" + std::to_string(t.attempt);
}

trace::Writer& Execution::trace_task(std::string_view event, const Task& t) {
    return trace_->begin(event).field_id("id", frames_[t.frame].prefix, binding(t).name, t.call, t.attempt);
}

std::string Execution::first_id(const Task& t) const {
    return frames_[t.frame].prefix + binding(t).name + "-" + std::to_string(t.call) + "-0";
}

namespace {
std::uint64_t args_fnv(std::string_view bytes) {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
    return h;
}
const char* executor_name(Executor e) {
    switch (e) {
        case Executor::processes:
            return "processes";
        case Executor::threads:
            return "threads";
        case Executor::synchronous:
            return "synchronous";
    }
    return "?";
}
}  // namespace

std::uint32_t Execution::activity_of(const Task& t) const {
    return frames_[t.frame].plan->base + t.dep;
}

std::uint32_t Execution::binding_of(const Frame& f, const Dependency& d) const {
    const auto& b = f.plan->config->bindings;
    std::size_t i = 0;
    if (d.index >= 0 && static_cast<std::size_t>(d.index) < b.size() && b[d.index].name == d.name) {
        i = static_cast<std::size_t>(d.index);
    } else {
        while (i < b.size() && b[i].name != d.name) ++i;
        if (i == b.size())
            throw ConfigError("dependency '" + d.name + "' (" + d.signature.name() + ") of " + f.plan->type->name +
                              " is called but not configured: use conf_" + (d.workflow ? "workflow" : "activity") +
                              "(\"" + d.name + "\", ...)");
    }
    if (!(b[i].signature == d.signature))
        throw ConfigError("dependency '" + d.name + "' is declared as " + d.signature.name() + " but configured with " +
                          b[i].signature.name());
    if (d.workflow != bool(b[i].child))
        throw ConfigError("dependency '" + d.name + "' is declared as " + (d.workflow ? "a workflow" : "an activity") +
                          " but configured with conf_" + (b[i].child ? "workflow" : "activity"));
    d.index = static_cast<int>(i);
    return static_cast<std::uint32_t>(i);
}

std::uint32_t Execution::depth_for(const Task& t) const {
    if (binding(t).options.timeout) return 1;  // its clock starts when it is sent: only to an idle worker
    double c = cost_us_[activity_of(t)];
    return (c >= 0 && c < cheap_task_us) ? cheap_depth : 1;
}

void Execution::warn(const std::string& message) const {
    if (config_.log) {
        config_.log(message);
    } else {
        std::fprintf(stderr, "flowy: warning: %s\n", message.c_str());
    }
}

// ---- frames ----

Execution::Frame& Execution::start_frame(const Plan& plan, std::string prefix, std::uint32_t parent_task,
                                         std::string args) {
    Frame& f = frames_.emplace_back();
    f.index = static_cast<std::uint32_t>(frames_.size() - 1);
    f.plan = &plan;
    f.prefix = std::move(prefix);
    f.parent_task = parent_task;
    f.calls.assign(plan.config->bindings.size(), 0);
    f.args = std::move(args);
    live_frames_.push_back(f.index);
    if (trace_ && parent_task != UINT32_MAX)
        trace_->begin("child_started").field("id", task_id(tasks_[parent_task])).end();
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
    f.fiber = ctx::fiber(std::allocator_arg, BodyStack(body_stack_size, &f.stack_bottom, &f.stack_size),
                         [this, &f](ctx::fiber&& scheduler) {
                             finish_switch(nullptr, &main_stack_bottom_, &main_stack_size_);
                             f.scheduler = std::move(scheduler);
                             try {
                                 if (abandoning_) throw Abandoned{};
                                 f.result = f.instance->invoke(f.args);
                                 if (!f.result) throw std::logic_error("flowy: the workflow returned an empty Result");
                             } catch (const ctx::detail::forced_unwind&) {
                                 throw;
                             } catch (const Abandoned&) {
                             } catch (...) {
                                 f.error = std::current_exception();
                             }
                             f.state = FrameState::returned;
                             start_switch(nullptr, main_stack_bottom_, main_stack_size_);
                             return std::move(f.scheduler);
                         });
    f.state = FrameState::running;  // ready to be entered by the loop
}

bool Execution::can_resume(const Frame& f) const {
    if (f.state == FrameState::running) return true;
    if (f.state != FrameState::suspended) return false;
    return (f.waiting && f.waiting->state != Slot::State::pending) || (f.waiting_queue && f.waiting_queue->has_ready());
}

void Execution::resume(Frame& f) {
    current_frame_ = &f;
    void* fake = nullptr;
    start_switch(&fake, f.stack_bottom, f.stack_size);
    f.fiber = std::move(f.fiber).resume();
    finish_switch(fake, nullptr, nullptr);
    current_frame_ = nullptr;
}

void Execution::suspend(Frame& f) {
    if (abandoning_) throw Abandoned{};
    f.state = FrameState::suspended;
    void* fake = nullptr;
    start_switch(&fake, main_stack_bottom_, main_stack_size_);
    f.scheduler = std::move(f.scheduler).resume();
    finish_switch(fake, &main_stack_bottom_, &main_stack_size_);
    f.state = FrameState::running;
    if (abandoning_) throw Abandoned{};
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

void Execution::frame_failed(Frame& f, std::shared_ptr<const ErrorInfo> e) {
    f.state = FrameState::done;
    if (f.parent_task != UINT32_MAX) {
        if (trace_) {
            trace_->begin("child_finished").field("id", task_id(tasks_[f.parent_task])).field_bool("ok", false).end();
            trace_failure(tasks_[f.parent_task], *e, "task_failed");
        }
        fail(f.parent_task, std::move(e));
    } else if (!f.error) {
        f.result = failed_slot(std::move(e));
    }
}

void Execution::settle(Frame& f) {
    if (f.state == FrameState::returned) {
        f.fiber = ctx::fiber();
        if (f.error) {
            if (f.parent_task == UINT32_MAX) {
                f.state = FrameState::done;  // the root keeps the exception itself
            } else {
                frame_failed(f, error_of(f.error));
            }
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
                    if (f.parent_task != UINT32_MAX)
                        frame_failed(f, error_of(f.error));
                    else
                        f.state = FrameState::done;
                }
                return;
            }
            bool quiet = f.parent_task == UINT32_MAX ? outstanding_ == 0 : f.outstanding == 0;
            if (!quiet) return;
            f.state = FrameState::done;
            if (f.parent_task != UINT32_MAX) {
                std::string bytes;
                try {
                    f.plan->type->encode_result(*f.result, bytes);
                } catch (...) {
                    fail(f.parent_task, std::make_shared<ErrorInfo>(current_error(task_id(tasks_[f.parent_task]))));
                    return;
                }
                if (trace_) {
                    const Task& pt = tasks_[f.parent_task];
                    trace_->begin("child_finished").field("id", task_id(pt)).field_bool("ok", true).end();
                    trace_->begin("task_finished")
                        .field("id", task_id(pt))
                        .field_bytes("value", bytes)
                        .field("short", binding(pt).describe ? binding(pt).describe(bytes) : std::string())
                        .end();
                }
                finish(f.parent_task, std::move(bytes));
            }
            return;
        }
    }
    if (f.state == FrameState::restarting) {
        const Slot* failed = nullptr;
        for (const SlotPtr& in : f.restart->inputs) {
            in->observed = true;
            if (in->state == Slot::State::pending) {
                if (in->owner != this) {
                    frame_failed(f, std::make_shared<ErrorInfo>(
                                        ErrorInfo{ErrorInfo::Kind::exception,
                                                  "flowy::restart: an argument is a Result of another run",
                                                  "std::logic_error",
                                                  {}}));
                }
                return;
            }
            if (in->state == Slot::State::failed && (!failed || finished_before(*in, *failed))) failed = in.get();
        }
        if (failed) {
            frame_failed(f, failed->error());
            return;
        }
        if (!(f.restart->values == f.plan->type->parameters)) {
            frame_failed(
                f, std::make_shared<ErrorInfo>(ErrorInfo{ErrorInfo::Kind::exception,
                                                         "flowy::restart: the arguments " + f.restart->values.name() +
                                                             " do not match the parameters of " + f.plan->type->name +
                                                             ", " + f.plan->type->parameters.name(),
                                                         "std::invalid_argument",
                                                         {}}));
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
        if (trace_) {
            std::vector<std::string> ids;
            for (const SlotPtr& in : f.restart->inputs)
                if (in->owner == this && in->task != UINT32_MAX) ids.push_back(task_id(tasks_[in->task]));
            trace_->begin("restarted")
                .field("frame", f.prefix)
                .field("incarnation", std::int64_t(f.incarnation))
                .field_list("args", ids)
                .end();
        }
        start_incarnation(f);
    }
}

void Execution::settle_frames() {
    // A child that ends resolves a task of its parent, which may let the parent end too.
    for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t i = 0; i < live_frames_.size();) {
            Frame& f = frames_[live_frames_[i]];
            FrameState before = f.state;
            int incarnation = f.incarnation;
            if (f.state == FrameState::returned || f.state == FrameState::restarting) settle(f);
            changed |= f.state != before || f.incarnation != incarnation;
            if (f.state == FrameState::done && f.parent_task != UINT32_MAX) {
                f.instance.reset();
                live_frames_[i] = live_frames_.back();
                live_frames_.pop_back();
                continue;
            }
            ++i;
        }
    }
}

// ---- tasks ----

SlotPtr Execution::schedule(const Dependency& d, const std::vector<Slot*>& inputs, std::string&& args,
                            std::unique_ptr<TaskArgs> deferred) {
    Frame* f = current_frame_;
    if (!f)
        throw std::logic_error("flowy: activity '" + d.name +
                               "' called outside a workflow body (from a constructor?): call it from operator()");
    if (abandoning_) throw Abandoned{};
    std::uint32_t dep = binding_of(*f, d);
    if (inputs.size() > max_inputs)
        throw std::length_error("flowy: activity '" + d.name + "' called with " + std::to_string(inputs.size()) +
                                " results as arguments (at most " + std::to_string(max_inputs) + ")");
    std::uint32_t call = f->calls[dep];
    if (history_) {
        // Resume replays the body: it must make the calls the trace recorded, in order.
        auto rec = history_->calls.find(f->prefix);
        std::string id = f->prefix + f->plan->config->bindings[dep].name + "-" + std::to_string(call) + "-0";
        if (rec != history_->calls.end() && f->scheduled < rec->second.size() && rec->second[f->scheduled] != id)
            throw TaskError("flowy: resume: call " + std::to_string(f->scheduled + 1) +
                                (f->prefix.empty() ? std::string() : " of " + f->prefix) + " is " + id +
                                ", but the trace recorded " + rec->second[f->scheduled] +
                                " there: the workflow no longer makes the calls it made",
                            id, "flowy::resume");
    }
    ++f->scheduled;
    auto index = static_cast<std::uint32_t>(tasks_.size());
    Task& t = tasks_.emplace_back();
    t.frame = f->index;
    t.dep = static_cast<std::uint16_t>(dep);
    t.call = f->calls[dep]++;
    t.slot = make_slot();
    t.slot->owner = this;
    t.slot->task = index;
    ++outstanding_;
    ++f->outstanding;
    const Slot* failed = nullptr;
    for (Slot* in : inputs) {
        Slot& s = *in;
        s.observed = true;
        if (s.state == Slot::State::failed) {
            if (!failed || finished_before(s, *failed)) failed = &s;
        } else if (s.state == Slot::State::pending) {
            if (s.owner != this)
                throw std::logic_error("flowy: a Result of another run was passed to '" + d.name + "'");
            add_dependent(tasks_[s.task], index);
            ++t.pending;
        }
    }
    if (trace_) {
        auto item = [&](std::uint32_t i) {
            const Task& x = tasks_[i];
            trace_->list_id(frames_[x.frame].prefix, binding(x).name, x.call, x.attempt);
        };
        const std::string& name = binding(t).name;
        trace_task("task_scheduled", t)
            .field("activity", name)
            .field("call", std::int64_t(t.call))
            .field("frame", f->prefix)
            .list_begin("args");
        for (const Slot* in : inputs)
            if (in->owner == this && in->task != UINT32_MAX) item(in->task);
        trace_->list_end().list_begin("reads");
        for (std::uint32_t r : f->reads) item(r);
        trace_->list_end().end();
    }
    f->reads.clear();
    if (failed) {
        fail(index, failed->error(), true);
        return t.slot;
    }
    if (t.pending == 0) {
        t.args = std::move(args);
        t.state = TaskState::ready;
        ready_.push_back(index);
        dispatch();  // at once: the body goes on while it runs
    } else {
        t.deferred = std::move(deferred);
    }
    return t.slot;
}

void Execution::start(std::uint32_t index, std::uint32_t depth) {
    Task& t = tasks_[index];
    if (t.deferred) {
        try {
            std::string args;
            t.deferred->encode(args);
            t.args = std::move(args);
        } catch (...) {
            t.deferred.reset();
            fail(index, std::make_shared<ErrorInfo>(current_error(task_id(t))));
            return;
        }
        t.deferred.reset();
    }
    t.state = TaskState::running;
    if (const Plan* child = frames_[t.frame].plan->children[t.dep].get()) {
        // A child workflow: a new frame, entered by the loop (never from inside a body).
        start_frame(*child, task_id(t) + "/", index, t.args.take());
        return;
    }
    if (history_) {
        auto done = history_->finished.find(first_id(t));
        if (done != history_->finished.end()) {
            if (done->second.args_hash == args_fnv(t.args)) {
                // Succeeded in the traced run: its recorded value stands, it does not run again.
                if (trace_)
                    trace_task("task_finished", t)
                        .field_bool("cached", true)
                        .field_bytes("value", done->second.value)
                        .field("short", binding(t).describe ? binding(t).describe(done->second.value) : std::string())
                        .end();
                ++finished_count_;
                finish(index, done->second.value);
                return;
            }
            if (!diverged_)
                diverged_ = std::make_exception_ptr(
                    TaskError("flowy: resume: " + first_id(t) +
                                  " is called with other arguments than the trace recorded: the workflow no "
                                  "longer makes the calls it made",
                              first_id(t), "flowy::resume"));
        }
    }
    const ActivityOptions& o = binding(t).options;
    int worker = executor_->submit(
        Request{index, activity_of(t), t.args, depth, o.timeout ? *o.timeout : std::chrono::nanoseconds(0)});
    if (trace_) {
        trace_task("task_dispatched", t)
            .field("worker", std::int64_t(worker))
            .field("pid", std::int64_t(executor_->worker_pid(worker)))
            .field_hex("args_hash", args_fnv(t.args))
            .end();
    }
}

void Execution::dispatch() {
    while (!ready_.empty()) {
        std::uint32_t index = ready_.front();
        Task& t = tasks_[index];
        bool child = frames_[t.frame].plan->children[t.dep] != nullptr;
        std::uint32_t depth = child ? 1 : depth_for(t);
        if (!child && !executor_->accepts(depth)) return;
        ready_.pop_front();
        start(index, depth);
    }
}

void Execution::on_completion(Completion& c) {
    Task& t = tasks_[c.task];
    switch (c.outcome) {
        case Completion::Outcome::requeue:
            t.state = TaskState::ready;
            ready_.push_front(c.task);
            return;
        case Completion::Outcome::finished: {
            double& cost = cost_us_[activity_of(t)];
            cost = cost < 0 ? double(c.duration_us) : 0.8 * cost + 0.2 * double(c.duration_us);
            if (trace_)
                trace_task("task_finished", t)
                    .field("worker", std::int64_t(c.worker))
                    .field("duration_us", std::int64_t(c.duration_us))
                    .field_bytes("value", c.bytes)
                    .field("short", binding(t).describe ? binding(t).describe(c.bytes) : std::string())
                    .end();
            ++finished_count_;
            finish(c.task, std::move(c.bytes));
            return;
        }
        case Completion::Outcome::failed: {
            auto e = std::make_shared<ErrorInfo>(std::move(c.error));
            e->task = task_id(t);
            if (e->kind == ErrorInfo::Kind::crashed) {
                e->message += " while running " + e->task;
                warn(e->message + "; a new worker took its place");
            } else if (e->kind == ErrorInfo::Kind::timed_out) {
                e->message = "task " + e->task + " " + e->message;
            }
            if (trace_)
                trace_failure(t, *e,
                              e->kind == ErrorInfo::Kind::crashed     ? "worker_crashed"
                              : e->kind == ErrorInfo::Kind::timed_out ? "task_timed_out"
                                                                      : "task_failed");
            if (retry(t, c.task, *e)) return;
            ++failed_count_;
            const ActivityOptions& o = binding(t).options;
            if (t.attempt > 0 && (e->kind != ErrorInfo::Kind::exception || o.retry_on_error))
                e->message +=
                    " (attempt " + std::to_string(t.attempt + 1) + " of " + std::to_string(o.retries + 1) + ")";
            fail(c.task, std::move(e));
            return;
        }
    }
}

bool Execution::retry(Task& t, std::uint32_t index, const ErrorInfo& e) {
    const ActivityOptions& o = binding(t).options;
    bool retryable = e.kind != ErrorInfo::Kind::exception || o.retry_on_error;
    if (!retryable || t.attempt >= static_cast<std::uint32_t>(o.retries)) return false;
    std::string before = task_id(t);
    ++t.attempt;
    auto delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(o.retry_delay).count();
    if (trace_)
        trace_->begin("task_retried").field("id", before).field("next", task_id(t)).field("delay_ms", delay_ms).end();
    warn(e.message + "; retrying as " + task_id(t) +
         (delay_ms > 0 ? " in " + std::to_string(delay_ms) + " ms" : std::string()));
    t.state = TaskState::ready;
    if (o.retry_delay.count() > 0) {
        delayed_.emplace_back(Clock::now() + o.retry_delay, index);
        std::push_heap(delayed_.begin(), delayed_.end(), std::greater<>());
    } else {
        ready_.push_back(index);
    }
    return true;
}

void Execution::trace_failure(const Task& t, const ErrorInfo& e, const char* event) {
    trace_task(event, t).field("message", e.message).field("type", e.type).field("origin", e.task).end();
}

void Execution::done(Task& t) {
    t.state = TaskState::done;
    --outstanding_;
    --frames_[t.frame].outstanding;
    t.args.clear();
    t.deferred.reset();
}

void Execution::finish(std::uint32_t index, std::string bytes) {
    Task& t = tasks_[index];
    done(t);
    Slot& s = *t.slot;
    s.state = Slot::State::finished;
    s.finish_seq = ++seq_;
    s.bytes = std::move(bytes);
    resolved(t);
    for (std::uint32_t e = t.first_dependent; e != no_edge; e = edges_[e].next) {
        std::uint32_t d = edges_[e].task;
        Task& dt = tasks_[d];
        if (dt.state != TaskState::waiting) continue;
        if (--dt.pending == 0) {
            dt.state = TaskState::ready;
            ready_.push_back(d);
        }
    }
}

void Execution::fail(std::uint32_t first, std::shared_ptr<const ErrorInfo> error, bool skipped) {
    // A failure reaches every task waiting on it, transitively: none of them runs.
    std::vector<std::uint32_t> work{first};
    while (!work.empty()) {
        std::uint32_t index = work.back();
        work.pop_back();
        Task& t = tasks_[index];
        if (t.state == TaskState::done) continue;
        if (trace_ && (skipped || index != first))
            trace_task("task_skipped", t).field("input", error->task).field("message", error->message).end();
        done(t);
        Slot& s = *t.slot;
        s.fail(error);
        s.finish_seq = ++seq_;
        resolved(t);
        for (std::uint32_t e = t.first_dependent; e != no_edge; e = edges_[e].next)
            if (tasks_[edges_[e].task].state == TaskState::waiting) {
                s.observed = true;  // consumed by a dependent, which carries the error on
                work.push_back(edges_[e].task);
            }
    }
}

void Execution::add_dependent(Task& producer, std::uint32_t index) {
    auto e = static_cast<std::uint32_t>(edges_.size());
    edges_.push_back({index, no_edge});
    if (producer.last_dependent == no_edge)
        producer.first_dependent = e;
    else
        edges_[producer.last_dependent].next = e;
    producer.last_dependent = e;
}

void Execution::resolved(Task& t) {
    if (watchers_.empty()) return;
    auto [from, to] = watchers_.equal_range(t.slot->task);
    for (auto it = from; it != to; ++it) it->second->arrived(t.slot);
    watchers_.erase(from, to);
}

void Execution::watch(Slot& s, FinishQueue* q) {
    watchers_.emplace(s.task, q);
}

void Execution::unwatch(FinishQueue* q) {
    std::erase_if(watchers_, [q](const auto& kv) { return kv.second == q; });
    queues_.erase(q);
}

void Execution::report_ignored_failures() {
    for (const Task& t : tasks_) {
        const Slot& s = *t.slot;
        if (s.state != Slot::State::failed || s.observed) continue;
        std::string id = task_id(t);
        if (trace_) trace_->begin("ignored_failure").field("id", id).field("message", s.error()->message).end();
        if (s.error()->task == id)
            warn("task " + id + " failed and its result was never read (failure ignored): " + s.error()->message);
        else
            warn("task " + id + " did not run because " + s.error()->task +
                 " failed, and its result was never read (failure ignored): " + s.error()->message);
    }
}

// ---- the loop ----

SlotPtr Execution::run(std::string args, std::unique_ptr<Instance> first) {
    first_instance_ = std::move(first);
    outer_ = current_execution;
    current_execution = this;
    struct Restore {
        Execution* self;
        ~Restore() { current_execution = self->outer_; }
    } restore{this};

    StopSignals stop_signals;
    started_us_ = trace::now_us();
    if (trace_) {
        char host[256] = "?";
        gethostname(host, sizeof host - 1);
        std::time_t now = std::time(nullptr);
        char when[32];
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
        trace_->begin("run_started")
            .field("version", std::int64_t(trace::format_version))
            .field("workflow", root_.type->name)
            .field("executor", executor_name(config_.executor))
            .field("workers", std::int64_t(workers_))
            .field("host", host)
            .field("pid", std::int64_t(getpid()))
            .field("time", when)
            .field_bool("resumed", history_ != nullptr)
            .field_bytes("input", args)
            .end();
    }
    Frame& root = start_frame(root_, {}, UINT32_MAX, std::move(args));
    std::vector<Completion> completions;
    std::vector<std::uint32_t> runnable;
    for (;;) {
        if (show_progress_) progress(false);
        if (diverged_) {
            root.error = diverged_;
            break;
        }
        if (int sig = cancel_signal()) {
            root.error = std::make_exception_ptr(
                Cancelled(std::string("flowy: the run was cancelled by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM")));
            break;
        }
        for (auto& w : executor_->warnings) warn(w);
        executor_->warnings.clear();
        settle_frames();
        if (root.state == FrameState::done) break;
        runnable.clear();
        for (std::uint32_t i : live_frames_)
            if (can_resume(frames_[i])) runnable.push_back(i);
        if (!runnable.empty()) {
            for (std::uint32_t i : runnable) resume(frames_[i]);
            continue;
        }
        Clock::time_point next_retry = Clock::time_point::max();
        while (!delayed_.empty()) {
            if (delayed_.front().first > Clock::now()) {
                next_retry = delayed_.front().first;
                break;
            }
            std::pop_heap(delayed_.begin(), delayed_.end(), std::greater<>());
            ready_.push_back(delayed_.back().second);
            delayed_.pop_back();
        }
        dispatch();
        if (!ready_.empty() && executor_->in_flight() == 0) continue;  // child frames were started
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
        executor_->wait(completions, next_retry);
        for (Completion& c : completions) on_completion(c);
    }

    if (show_progress_) progress(true);
    if (!root.error && root.result && root.result->state == Slot::State::finished) {
        executor_->stop(false);
        report_ignored_failures();
        trace_run_end(root);
        return root.result;
    }
    abandon();
    trace_run_end(root);
    if (root.error) {
        try {
            std::rethrow_exception(root.error);
        } catch (const Cancelled&) {
            throw;
        } catch (const TaskError&) {
            throw;
        } catch (const ConfigError&) {
            throw;
        } catch (...) {
            ErrorInfo e = current_error({});
            throw TaskError(e.message, {}, e.type);
        }
    }
    throw_error(*root.result->error());
}

void Execution::trace_run_end(const Frame& root) {
    if (!trace_) return;
    if (!root.error && root.result && root.result->state == Slot::State::finished) {
        std::string bytes;
        try {
            root_.type->encode_result(*root.result, bytes);
        } catch (...) {
        }
        const Slot& r = *root.result;
        trace_->begin("run_finished")
            .field_bytes("value", bytes)
            .field("short", root_.type->describe(bytes))
            .field("from", r.owner == this && r.task != UINT32_MAX ? task_id(tasks_[r.task]) : std::string())
            .end();
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
    trace_->begin("run_failed")
        .field("message", e.message)
        .field("type", e.type)
        .field("origin", e.task)
        .field_bool("cancelled", cancelled)
        .end();
}

void Execution::progress(bool final) {
    std::int64_t now = trace::now_us();
    if (!final && now - progress_drawn_us_ < 100000) return;  // at most ten times a second
    progress_drawn_us_ = now;
    if (final) {
        std::fputs("\r\x1b[K", stderr);
        return;
    }
    std::fprintf(stderr, "\r\x1b[Kflowy: %zu done, %zu running, %zu failed, %.1f s", finished_count_,
                 executor_->in_flight(), failed_count_, double(now - started_us_) / 1e6);
    std::fflush(stderr);
}

// ---- the entry points of the typed layer ----

bool finished_before(const Slot& a, const Slot& b) {
    bool a_task = a.task != UINT32_MAX, b_task = b.task != UINT32_MAX;
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
}

void FinishQueue::arrived(const SlotPtr& s) {
    ready_.push_back(s);
    std::push_heap(ready_.begin(), ready_.end(), later);
}

SlotPtr FinishQueue::take() {
    if (size_ == 0) throw std::logic_error("flowy: no result left to take");
    if (ready_.empty()) {
        if (!exec_) throw std::logic_error("flowy: results awaited outside a workflow run");
        exec_->await(*this);
    }
    std::pop_heap(ready_.begin(), ready_.end(), later);
    SlotPtr s = std::move(ready_.back());
    ready_.pop_back();
    --size_;
    return s;
}

void Execution::noted_read(Slot& s) {
    if (trace_ && current_frame_ && s.task != UINT32_MAX) {
        auto& r = current_frame_->reads;
        if (r.empty() || r.back() != s.task) r.push_back(s.task);
    }
}

void note_read(Slot& s) {
    if (s.owner && s.owner == Execution::current()) s.owner->noted_read(s);
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

SlotPtr Call::submit(std::unique_ptr<TaskArgs> deferred) {
    return exec_->schedule(dep_, inputs_, std::move(bytes_), std::move(deferred));
}

// ---- a run ----

namespace {

std::string config_problems(const Config& c) {
    std::string m = c.errors.front();
    for (std::size_t i = 1; i < c.errors.size(); ++i) m += "; " + c.errors[i];
    return m;
}

/// Checks what `type` declares against `config`, recursively for its child
/// workflows, and lays their activities out in `registry`. The root's instance
/// (constructed once, here) is returned through `root_instance`.
std::unique_ptr<Plan> make_plan(const WorkflowType& type, const Config& config, Registry& registry, int depth,
                                const std::string& where, std::unique_ptr<Instance>* root_instance) {
    if (depth > max_nesting)
        throw ConfigError("flowy: child workflows nest deeper than " + std::to_string(max_nesting) + " levels at " +
                          where + " (does a workflow contain itself?)");
    if (!config.errors.empty())
        throw ConfigError("flowy: bad configuration of " + where + ": " + config_problems(config));

    std::vector<const Dependency*> declared;
    std::unique_ptr<Instance> instance;
    {
        DeclarationScope scope;
        try {
            instance = type.make();
        } catch (const TaskError&) {
            throw;
        } catch (const ConfigError&) {
            throw;
        } catch (...) {
            ErrorInfo e = current_error({});
            throw TaskError(e.message, {}, e.type);
        }
        declared = std::move(scope.declared);
    }
    std::unordered_map<std::string, const Dependency*> seen;
    for (const Dependency* d : declared) {
        auto [it, fresh] = seen.emplace(d->name, d);
        if (!fresh && !(it->second->signature == d->signature && it->second->workflow == d->workflow))
            throw ConfigError("flowy: " + where + " declares dependency '" + d->name + "' twice, as " +
                              it->second->signature.name() + " and as " + d->signature.name());
        const Binding* b = nullptr;
        for (std::size_t i = 0; i < config.bindings.size(); ++i)
            if (config.bindings[i].name == d->name) {
                b = &config.bindings[i];
                d->index = static_cast<int>(i);
            }
        const char* conf = d->workflow ? "conf_workflow" : "conf_activity";
        if (!b)
            throw ConfigError("flowy: dependency '" + d->name + "' (" + d->signature.name() + ") of " + where +
                              " is not configured: call " + conf + "(\"" + d->name + "\", ...) with " +
                              (d->workflow ? "a workflow" : "a function") + " of that signature");
        if (!(b->signature == d->signature))
            throw ConfigError("flowy: dependency '" + d->name + "' of " + where + " is declared as " +
                              d->signature.name() + " but configured with " + b->signature.name());
        if (d->workflow != bool(b->child))
            throw ConfigError("flowy: dependency '" + d->name + "' of " + where + " is declared as " +
                              (d->workflow ? "a child workflow" : "an activity") + " but configured with " +
                              (b->child ? "conf_workflow" : "conf_activity"));
    }
    if (root_instance) *root_instance = std::move(instance);

    auto plan = std::make_unique<Plan>();
    plan->type = &type;
    plan->config = &config;
    plan->base = static_cast<std::uint32_t>(registry.size());
    for (const Binding& b : config.bindings) registry.push_back(b.child ? nullptr : &b.invoke);
    plan->children.resize(config.bindings.size());
    for (std::size_t i = 0; i < config.bindings.size(); ++i) {
        const Binding& b = config.bindings[i];
        if (b.child)
            plan->children[i] = make_plan(*b.child->type, *b.child->config, registry, depth + 1,
                                          "child workflow '" + b.name + "' (" + b.child->type->name + ")", nullptr);
    }
    return plan;
}

}  // namespace

namespace {
/// Checks the configuration, lays out the registry and runs (continuing `history` if given).
SlotPtr run_checked(const Config& config, const WorkflowType& type, std::string args, const History* history) {
    int workers = config.workers;
    if (config.workers_set && workers < 1)
        throw ConfigError("flowy: workers(" + std::to_string(workers) + "): a run needs at least one worker");
    if (!config.workers_set) workers = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    Registry registry;
    std::unique_ptr<Instance> first;
    std::unique_ptr<Plan> plan = make_plan(type, config, registry, 0, type.name, &first);
    Execution ex(config, *plan, std::move(registry), workers, history);
    return ex.run(std::move(args), std::move(first));
}
}  // namespace

SlotPtr run_local(const Config& config, const WorkflowType& type, std::string args) {
    return run_checked(config, type, std::move(args), nullptr);
}

SlotPtr resume_local(const Config& config, const WorkflowType& type, const std::string& path) {
    History history = load_history(path);
    Config traced = config;
    traced.trace_path = path;  // the new events go to the same trace
    return run_checked(traced, type, history.input, &history);
}

}  // namespace flowy::detail

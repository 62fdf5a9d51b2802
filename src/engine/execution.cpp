#include "engine/execution.hpp"

#include <boost/context/protected_fixedsize_stack.hpp>

#include <cstdio>
#include <thread>
#include <unordered_map>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FLOWY_ASAN 1
#endif

namespace flowy::detail {

namespace ctx = boost::context;

namespace {
// AddressSanitizer must be told when the stack changes under it (Boost.Context's
// fcontext build does not), or it reports false errors on the body's stack.
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
    void deallocate(ctx::stack_context& sc) noexcept { inner_.deallocate(sc); }

private:
    ctx::protected_fixedsize_stack inner_;
    const void** bottom_;
    std::size_t* got_;
};
}  // namespace

namespace {
thread_local Execution* current_execution = nullptr;
constexpr std::size_t body_stack_size = std::size_t(8) << 20;  // reserved, touched on demand
constexpr double cheap_task_us = 100;                           // below this, queue several per worker
constexpr std::uint32_t cheap_depth = 16;
}  // namespace

void leave_engine_in_child() { current_execution = nullptr; }

Execution* Execution::current() { return current_execution; }

Execution::Execution(const Config& config, std::string workflow, Registry registry, int workers)
    : config_(config),
      workflow_(std::move(workflow)),
      registry_(std::move(registry)),
      calls_(config.bindings.size(), 0),
      cost_us_(config.bindings.size(), -1.0) {
    switch (config.executor) {
    case Executor::synchronous: executor_ = make_synchronous_executor(registry_); break;
    case Executor::threads: executor_ = make_thread_executor(registry_, workers); break;
    case Executor::processes: executor_ = make_process_executor(registry_, workers); break;
    }
}

Execution::~Execution() { abandon(); }

void Execution::abandon() noexcept {
    if (executor_) executor_->stop(true);
    body_fiber_ = ctx::fiber();  // unwinds a body that is still suspended
    auto ended = std::make_shared<ErrorInfo>();
    for (Task& t : tasks_) {
        Slot& s = *t.slot;
        if (s.state == Slot::State::pending) {
            s.state = Slot::State::failed;
            auto e = std::make_shared<ErrorInfo>();
            e->message = "the run ended before task " + task_id(t) + " finished";
            e->task = task_id(t);
            s.error = std::move(e);
            s.finish_seq = ++seq_;
        }
        s.owner = nullptr;
        s.task = UINT32_MAX;
    }
    executor_.reset();
}

std::string Execution::task_id(const Task& t) const {
    return config_.bindings[t.dep].name + "-" + std::to_string(t.call) + "-" + std::to_string(t.attempt);
}

std::uint32_t Execution::binding_of(const Dependency& d) const {
    auto& b = config_.bindings;
    if (d.index >= 0 && static_cast<std::size_t>(d.index) < b.size() && b[d.index].name == d.name)
        return static_cast<std::uint32_t>(d.index);
    for (std::size_t i = 0; i < b.size(); ++i)
        if (b[i].name == d.name) {
            if (!(b[i].signature == d.signature))
                throw ConfigError("dependency '" + d.name + "' is declared as " + d.signature.name() +
                                  " but configured with " + b[i].signature.name());
            d.index = static_cast<int>(i);
            return static_cast<std::uint32_t>(i);
        }
    throw ConfigError("dependency '" + d.name + "' (" + d.signature.name() +
                      ") is called but not configured: use conf_activity(\"" + d.name + "\", f)");
}

std::uint32_t Execution::depth_for(std::uint32_t dep) const {
    double c = cost_us_[dep];
    return (c >= 0 && c < cheap_task_us) ? cheap_depth : 1;
}

void Execution::warn(const std::string& message) const {
    if (config_.log) {
        config_.log(message);
    } else {
        std::fprintf(stderr, "flowy: warning: %s\n", message.c_str());
    }
}

SlotPtr Execution::schedule(const Dependency& d, std::vector<SlotPtr>& inputs, std::string&& args,
                            std::unique_ptr<TaskArgs> deferred) {
    std::uint32_t dep = binding_of(d);
    auto index = static_cast<std::uint32_t>(tasks_.size());
    Task& t = tasks_.emplace_back();
    t.dep = dep;
    t.call = calls_[dep]++;
    t.slot = std::make_shared<Slot>();
    t.slot->owner = this;
    t.slot->task = index;
    ++outstanding_;
    const Slot* failed = nullptr;
    for (const SlotPtr& in : inputs) {
        Slot& s = *in;
        s.observed = true;
        if (s.state == Slot::State::failed) {
            if (!failed || s.finish_seq < failed->finish_seq) failed = &s;
        } else if (s.state == Slot::State::pending) {
            if (s.owner != this)
                throw std::logic_error("flowy: a Result of another run was passed to '" + d.name + "'");
            tasks_[s.task].dependents.push_back(index);
            ++t.pending;
        }
    }
    if (failed) {
        fail(index, failed->error);
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

void Execution::dispatch() {
    while (!ready_.empty()) {
        std::uint32_t index = ready_.front();
        Task& t = tasks_[index];
        std::uint32_t depth = depth_for(t.dep);
        if (!executor_->accepts(depth)) return;
        ready_.pop_front();
        if (t.deferred) {
            try {
                t.deferred->encode(t.args);
            } catch (...) {
                t.deferred.reset();
                fail(index, std::make_shared<ErrorInfo>(current_error(task_id(t))));
                continue;
            }
            t.deferred.reset();
        }
        t.state = TaskState::running;
        executor_->submit(Request{index, t.dep, &t.args, depth});
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
        double& cost = cost_us_[t.dep];
        cost = cost < 0 ? double(c.duration_us) : 0.8 * cost + 0.2 * double(c.duration_us);
        finish(c.task, std::move(c.bytes));
        return;
    }
    case Completion::Outcome::failed: {
        auto e = std::make_shared<ErrorInfo>(std::move(c.error));
        e->task = task_id(t);
        if (e->kind == ErrorInfo::Kind::crashed) {
            e->message += " while running " + e->task;
            warn(e->message + "; a new worker took its place");
        }
        fail(c.task, std::move(e));
        return;
    }
    }
}

void Execution::finish(std::uint32_t index, std::string bytes) {
    Task& t = tasks_[index];
    t.state = TaskState::done;
    --outstanding_;
    Slot& s = *t.slot;
    s.state = Slot::State::finished;
    s.finish_seq = ++seq_;
    s.bytes = std::move(bytes);
    t.args = std::string();
    for (std::uint32_t d : t.dependents) {
        Task& dt = tasks_[d];
        if (dt.state != TaskState::waiting) continue;
        if (--dt.pending == 0) {
            dt.state = TaskState::ready;
            ready_.push_back(d);
        }
    }
    t.dependents = {};
}

void Execution::fail(std::uint32_t first, std::shared_ptr<const ErrorInfo> error) {
    // A failure reaches every task waiting on it, transitively: none of them runs.
    std::vector<std::uint32_t> work{first};
    while (!work.empty()) {
        std::uint32_t index = work.back();
        work.pop_back();
        Task& t = tasks_[index];
        if (t.state == TaskState::done) continue;
        t.state = TaskState::done;
        --outstanding_;
        Slot& s = *t.slot;
        s.state = Slot::State::failed;
        s.finish_seq = ++seq_;
        s.error = error;
        t.args = std::string();
        t.deferred.reset();
        for (std::uint32_t d : t.dependents)
            if (tasks_[d].state == TaskState::waiting) {
                s.observed = true;  // consumed by a dependent, which carries the error on
                work.push_back(d);
            }
        t.dependents = {};
    }
}

void Execution::resume_body() {
    in_body_ = true;
    void* fake = nullptr;
    start_switch(&fake, body_stack_bottom_, body_stack_size_);
    body_fiber_ = std::move(body_fiber_).resume();
    finish_switch(fake, nullptr, nullptr);
    in_body_ = false;
}

void Execution::await(Slot& s) {
    if (!in_body_)
        throw std::logic_error("flowy: a Result was read outside the workflow body before its task finished");
    if (s.owner != this) throw std::logic_error("flowy: a Result of another run was read");
    waiting_ = &s;
    start_switch(&fake_stack_, scheduler_stack_bottom_, scheduler_stack_size_);
    scheduler_ = std::move(scheduler_).resume();
    finish_switch(fake_stack_, &scheduler_stack_bottom_, &scheduler_stack_size_);
    waiting_ = nullptr;
}

void Execution::report_ignored_failures() const {
    for (const Task& t : tasks_) {
        const Slot& s = *t.slot;
        if (s.state != Slot::State::failed || s.observed) continue;
        std::string id = task_id(t);
        if (s.error->task == id)
            warn("task " + id + " failed and its result was never read (failure ignored): " + s.error->message);
        else
            warn("task " + id + " did not run because " + s.error->task +
                 " failed, and its result was never read (failure ignored): " + s.error->message);
    }
}

SlotPtr Execution::run(const Body& body) {
    outer_ = current_execution;
    current_execution = this;
    struct Restore {
        Execution* self;
        ~Restore() { current_execution = self->outer_; }
    } restore{this};

    body_fiber_ = ctx::fiber(std::allocator_arg, BodyStack(body_stack_size, &body_stack_bottom_, &body_stack_size_),
                             [this, &body](ctx::fiber&& scheduler) {
                                 finish_switch(nullptr, &scheduler_stack_bottom_, &scheduler_stack_size_);
                                 scheduler_ = std::move(scheduler);
                                 try {
                                     result_ = body();
                                     if (!result_)
                                         throw std::logic_error("flowy: the workflow returned an empty Result");
                                 } catch (const ctx::detail::forced_unwind&) {
                                     throw;
                                 } catch (...) {
                                     body_error_ = std::current_exception();
                                 }
                                 body_done_ = true;
                                 start_switch(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
                                 return std::move(scheduler_);
                             });
    resume_body();

    std::vector<Completion> done;
    for (;;) {
        for (auto& w : executor_->warnings) warn(w);
        executor_->warnings.clear();
        if (body_done_) {
            if (body_error_) break;
            if (result_->state == Slot::State::failed) break;
            if (result_->state == Slot::State::finished && outstanding_ == 0) break;
        } else if (waiting_ && waiting_->state != Slot::State::pending) {
            resume_body();
            continue;
        }
        dispatch();
        if (executor_->in_flight() == 0) {
            // Nothing runs and nothing can start: the body waits for a result no task will produce.
            body_error_ = std::make_exception_ptr(
                std::logic_error("flowy: the workflow waits for a result that no task of this run produces"));
            break;
        }
        done.clear();
        executor_->wait(done);
        for (Completion& c : done) on_completion(c);
    }

    bool ok = !body_error_ && result_->state == Slot::State::finished;
    if (ok) {
        executor_->stop(false);
        report_ignored_failures();
        return result_;
    }
    abandon();
    if (body_error_) {
        try {
            std::rethrow_exception(body_error_);
        } catch (const TaskError&) {
            throw;
        } catch (const ConfigError&) {
            throw;
        } catch (...) {
            ErrorInfo e = current_error({});
            throw TaskError(e.message, {}, e.type);
        }
    }
    throw_error(*result_->error);
}

// ---- the entry points of the typed layer ----

void await(Slot& s) {
    Execution* ex = Execution::current();
    if (!ex)
        throw std::logic_error("flowy: a Result was read before its task finished, outside a workflow run");
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
    inputs_.push_back(s);
    bool ok = s->state == Slot::State::finished;
    ready_ = ready_ && ok;
    return ok;
}

SlotPtr Call::submit(std::unique_ptr<TaskArgs> deferred) {
    return exec_->schedule(dep_, inputs_, std::move(bytes_), std::move(deferred));
}

SlotPtr run_local(const Config& config, const std::string& workflow, const std::function<void()>& construct,
                  const Body& body) {
    if (!config.errors.empty()) {
        std::string m = "flowy: bad configuration of " + workflow + ": " + config.errors.front();
        for (std::size_t i = 1; i < config.errors.size(); ++i) m += "; " + config.errors[i];
        throw ConfigError(m);
    }
    int workers = config.workers;
    if (config.workers_set && workers < 1)
        throw ConfigError("flowy: workers(" + std::to_string(workers) + "): a run needs at least one worker");
    if (!config.workers_set) workers = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

    std::vector<const Dependency*> declared;
    {
        DeclarationScope scope;
        try {
            construct();
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
        if (!fresh && !(it->second->signature == d->signature))
            throw ConfigError("flowy: " + workflow + " declares dependency '" + d->name + "' twice, as " +
                              it->second->signature.name() + " and as " + d->signature.name());
        const Binding* b = nullptr;
        for (std::size_t i = 0; i < config.bindings.size(); ++i)
            if (config.bindings[i].name == d->name) {
                b = &config.bindings[i];
                d->index = static_cast<int>(i);
            }
        if (!b)
            throw ConfigError("flowy: dependency '" + d->name + "' (" + d->signature.name() + ") of " + workflow +
                              " is not configured: call conf_activity(\"" + d->name +
                              "\", f) with a function of that signature");
        if (!(b->signature == d->signature))
            throw ConfigError("flowy: dependency '" + d->name + "' of " + workflow + " is declared as " +
                              d->signature.name() + " but configured with " + b->signature.name());
    }

    Registry registry;
    registry.reserve(config.bindings.size());
    for (const Binding& b : config.bindings) registry.push_back(&b.invoke);
    Execution ex(config, workflow, std::move(registry), workers);
    return ex.run(body);
}

}  // namespace flowy::detail

#pragma once
/// \file flowy::LocalWorkflow: configuration and the local engine.

#include <flowy/activity.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace flowy {

namespace detail {

template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};
template <class R, class... A>
struct callable_traits<R(A...)> {
    using signature = R(A...);
};
template <class R, class... A>
struct callable_traits<R(A...) noexcept> : callable_traits<R(A...)> {};
template <class R, class... A>
struct callable_traits<R (*)(A...)> : callable_traits<R(A...)> {};
template <class R, class... A>
struct callable_traits<R (*)(A...) noexcept> : callable_traits<R(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...)> : callable_traits<R(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) noexcept> : callable_traits<R(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R(A...)> {};

template <class F>
concept has_signature = requires {
    typename callable_traits<F>::signature;
};

/// Passes a decoded argument on: moved, unless the parameter is a non-const lvalue reference.
template <class Param, class V>
decltype(auto) pass(V& v) {
    if constexpr (std::is_lvalue_reference_v<Param> && !std::is_const_v<std::remove_reference_t<Param>>)
        return (v);
    else
        return std::move(v);
}

template <class Sig>
struct InvokerOf;
template <class R, class... A>
struct InvokerOf<R(A...)> {
    static std::string describe(std::string_view bytes) { return detail::describe<std::decay_t<R>>(bytes); }
    static std::string describe_args(std::string_view bytes) {
        return detail::describe_args<std::decay_t<A>...>(bytes);
    }
    template <class F>
    static Invoker make(F f) {
        static_assert(serialisable_v<std::decay_t<R>> && (serialisable_v<std::decay_t<A>> && ...),
                      "flowy: the configured function's parameter and result types must be serialisable with cereal");
        return [f = std::move(f)](std::streambuf& args, ResultOut& out) mutable {
            std::tuple<std::decay_t<A>...> values{decode_from<std::decay_t<A>>(args)...};
            call(f, values, out, std::index_sequence_for<A...>{});
        };
    }
    template <class F, class Tuple, std::size_t... I>
    static void call(F& f, Tuple& values, ResultOut& out, std::index_sequence<I...>) {
        if constexpr (std::is_void_v<R>) {
            std::invoke(f, pass<A>(std::get<I>(values))...);
        } else {
            const std::decay_t<R> r = std::invoke(f, pass<A>(std::get<I>(values))...);
            encode_to(out.begin(out.needs_size() ? encoded_size(r) : 0), r);
        }
    }
};

template <class W>
concept workflow_class = requires {
    &W::operator();
};

/// Calls the body of `w` with arguments encoded as its parameters; returns its result's
/// slot (an engine's instance, and direct mode's restart).
template <class W, class Ret, class... P>
SlotPtr invoke_encoded(W& w, std::string_view args, Ret (*)(P...)) {
    ViewSource src(args);
    std::istream is(&src);
    std::tuple<std::decay_t<P>...> values{decode<std::decay_t<P>>(is)...};
    return std::apply(
        [&](auto&... v) -> SlotPtr {
            if constexpr (std::is_void_v<Ret>) {
                std::invoke(w, pass<P>(v)...);
                return finished_void_slot();
            } else if constexpr (is_result_v<Ret>) {
                Ret r = std::invoke(w, pass<P>(v)...);
                return slot_of(r);
            } else {
                return finished_slot(std::invoke(w, pass<P>(v)...));
            }
        },
        values);
}

template <class W, class Sig>
struct WorkflowOf;
template <class W, class Ret, class... P>
struct WorkflowOf<W, Ret(P...)> {
    using value_type = result_value_t<Ret>;
    static_assert(serialisable_v<value_type> && (serialisable_v<std::decay_t<P>> && ...),
                  "flowy: a workflow's parameter and result types must be serialisable with cereal");

    struct Inst final : Instance {
        W w;
        SlotPtr invoke(std::string_view args) override {
            return invoke_encoded(w, args, static_cast<Ret (*)(P...)>(nullptr));
        }
    };

    static const WorkflowType& type() {
        static const WorkflowType t{type_name(typeid(W)),
                                    SignatureOf<value_type(P...)>::value,
                                    SignatureOf<void(P...)>::value,
                                    []() -> std::unique_ptr<Instance> { return std::make_unique<Inst>(); },
                                    &encode_result,
                                    &detail::describe<value_type>};
        return t;
    }

    static void encode_result(Slot& s, std::string& out) {
        if constexpr (!std::is_void_v<value_type>) {
            if (!s.bytes.empty())
                out += s.bytes;
            else
                encode(out, value_of<value_type>(s));
        }
    }

    template <class... A>
    static std::string encode_args(const A&... a) {
        static_assert(sizeof...(A) == sizeof...(P),
                      "flowy: run() takes as many arguments as the workflow's operator()");
        static_assert((accepts<std::decay_t<P>, std::remove_cvref_t<A>>() && ...),
                      "flowy: run() arguments do not match the workflow's operator()");
        std::string out;
        (encode_arg<std::decay_t<P>>(out, a), ...);
        return out;
    }
};

template <class W>
using workflow_of = WorkflowOf<W, typename callable_traits<W>::signature>;

}  // namespace detail

template <class W>
class LocalWorkflow;

/// Runs a workflow object directly, with no engine (its activities built from
/// callables), following restart() to the last incarnation; returns its value or
/// throws TaskError, like LocalWorkflow::run.
///
///     Countdown w;
///     w.add = [](int a, int b) { return a + b; };
///     assert(flowy::run_direct(w, 10, 0) == 55);
template <class W, class... A>
auto run_direct(W& w, A&&... args) {
    using Sig = typename detail::callable_traits<W>::signature;
    using Flow = detail::workflow_of<W>;
    using T = typename Flow::value_type;
    detail::SlotPtr s = detail::invoke_encoded(w, Flow::encode_args(args...), static_cast<Sig*>(nullptr));
    while (s && s->restarting) {
        const detail::RestartRequest& req = *detail::restart_of(*s);
        for (const auto& in : req.inputs) detail::settle(in);
        if (std::string m = detail::restart_mismatch(req, Flow::type()); !m.empty())
            throw TaskError(m, {}, "std::invalid_argument");
        std::string encoded;
        req.args->encode(encoded);
        s = detail::invoke_encoded(w, encoded, static_cast<Sig*>(nullptr));
    }
    if constexpr (std::is_void_v<T>)
        detail::settle(s);
    else
        return T(detail::value_of<T>(detail::settle(s)));
}

namespace detail {

/// The configuration calls every engine's workflow has (LocalWorkflow, PostgresWorkflow):
/// `Self` is the engine's class, `W` the workflow class.
template <class Self, class W>
class WorkflowConfig {
public:
    /// Binds dependency `name` to function `f` (a function, or a lambda with one signature).
    template <class F>
    Self& conf_activity(std::string name, F f, ActivityOptions opts = {}) {
        using Fn = std::decay_t<F>;
        static_assert(detail::has_signature<Fn>,
                      "flowy: conf_activity needs a function or a lambda with one signature (not a "
                      "generic lambda or an overload set): wrap it in std::function<R(Args...)>");
        using Sig = typename detail::callable_traits<Fn>::signature;
        config_.bind(std::move(name), detail::SignatureOf<Sig>::value, detail::InvokerOf<Sig>::make(Fn(std::move(f))),
                     std::move(opts), &detail::InvokerOf<Sig>::describe, &detail::InvokerOf<Sig>::describe_args);
        return self();
    }
    /// Binds dependency `name` (a `Workflow<R(Args...)>` member) to a configured child workflow.
    /// The configuration is copied: configure the child before binding it.
    template <class Other, class C>
    Self& conf_workflow(std::string name, const WorkflowConfig<Other, C>& child) {
        auto c = std::make_shared<detail::ChildWorkflow>();
        c->type = &detail::workflow_of<C>::type();
        c->config = std::make_shared<detail::Config>(child.config_);
        config_.bind_workflow(std::move(name), std::move(c));
        return self();
    }
    /// How many workers run tasks (default: the number of cores).
    Self& workers(int n) {
        config_.set_workers(n);
        return self();
    }
    /// Ends an execution that has not ended this long after it started (on the
    /// PostgreSQL engine: after it was created, whichever process decides it): its
    /// running tasks are stopped and it fails with TaskTimedout ("the execution ran
    /// past its execution_timeout of ..."). None by default.
    Self& execution_timeout(std::chrono::nanoseconds d) {
        config_.execution_timeout = d;
        if (d.count() <= 0) config_.errors.push_back("execution_timeout must be positive");
        return self();
    }
    /// At most `n` tasks of an execution are handed out at once (queued for a worker or
    /// running); the others wait in the execution until one ends. 0 (the default): no cap.
    Self& max_in_flight(int n) {
        if (n < 0)
            config_.errors.push_back("max_in_flight(" + std::to_string(n) + "): must not be negative");
        else
            config_.max_in_flight = static_cast<std::size_t>(n);
        return self();
    }
    /// Records every event of each run to the trace file at `path` (JSON Lines; see
    /// docs/trace-format.md). Without it, the environment variable FLOWY_TRACE names one.
    Self& trace(std::string path) {
        config_.trace_path = std::move(path);
        return self();
    }
    /// Whether to draw a live status line on standard error (default: when it is a terminal).
    Self& progress(bool on) {
        config_.progress = on ? 1 : 0;
        return self();
    }
    /// Where warnings go (an ignored failure, a replaced worker); default: standard error.
    Self& log(std::function<void(std::string_view)> sink) {
        config_.log = std::move(sink);
        return self();
    }

protected:
    template <class, class>
    friend class WorkflowConfig;
    Self& self() { return static_cast<Self&>(*this); }
    static void check_workflow_class() {
        static_assert(std::is_default_constructible_v<W>, "flowy: the workflow class must be default-constructible");
        static_assert(detail::workflow_class<W>,
                      "flowy: the workflow class needs exactly one operator() (not a template or an overload set)");
    }
    detail::Config config_;
};

}  // namespace detail

/// Configuration and the local engine for a workflow class `W`.
///
///     flowy::LocalWorkflow<ExampleWorkflow> w;
///     w.conf_activity("square", square_activity);
///     w.conf_activity("sum", sum_activity);
///     int v = w.run(2, 10);  // 104
///
/// `W` is default-constructible; its `operator()` is the workflow body and returns
/// `Result<T>` or `T`. Each run constructs a fresh `W`.
template <class W>
class LocalWorkflow : public detail::WorkflowConfig<LocalWorkflow<W>, W> {
    using Base = detail::WorkflowConfig<LocalWorkflow<W>, W>;
    using Base::config_;

public:
    /// Where tasks run (default: Executor::processes).
    LocalWorkflow& executor(Executor e) {
        config_.executor = e;
        return *this;
    }

    /// Runs one execution of the workflow to its end and returns its value.
    /// Throws TaskError if the workflow failed, ConfigError if the configuration does not fit.
    template <class... A>
    auto run(A&&... args) {
        Base::check_workflow_class();
        using Flow = detail::workflow_of<W>;
        using T = typename Flow::value_type;
        detail::SlotPtr result = detail::run_local(config_, Flow::type(), Flow::encode_args(args...));
        if constexpr (!std::is_void_v<T>) return T(detail::value_of<T>(*result));
    }

    /// Runs the workflow again from the trace at `path`, with the arguments recorded
    /// there: tasks that succeeded are not run again (their recorded values are used),
    /// the rest run, and the new events are appended to the same trace. Returns like run().
    /// A body that makes other calls than the trace recorded stops with a TaskError
    /// naming the first diverging call.
    auto resume(const std::string& path) {
        static_assert(detail::workflow_class<W>,
                      "flowy: the workflow class needs exactly one operator() (not a template or an overload set)");
        using Flow = detail::workflow_of<W>;
        using T = typename Flow::value_type;
        detail::SlotPtr result = detail::resume_local(config_, Flow::type(), path);
        if constexpr (!std::is_void_v<T>) return T(detail::value_of<T>(*result));
    }
};

}  // namespace flowy

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
concept has_signature = requires { typename callable_traits<F>::signature; };

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
    template <class F>
    static Invoker make(F f) {
        static_assert(serialisable_v<std::decay_t<R>> && (serialisable_v<std::decay_t<A>> && ...),
                      "flowy: the configured function's parameter and result types must be serialisable with cereal");
        return [f = std::move(f)](std::string_view args, std::string& out) mutable {
            ViewSource src(args);
            std::istream is(&src);
            std::tuple<std::decay_t<A>...> values{decode<std::decay_t<A>>(is)...};
            call(f, values, out, std::index_sequence_for<A...>{});
        };
    }
    template <class F, class Tuple, std::size_t... I>
    static void call(F& f, Tuple& values, std::string& out, std::index_sequence<I...>) {
        if constexpr (std::is_void_v<R>) {
            std::invoke(f, pass<A>(std::get<I>(values))...);
        } else {
            encode(out, std::invoke(f, pass<A>(std::get<I>(values))...));
        }
    }
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
class LocalWorkflow {
public:
    /// Binds dependency `name` to function `f` (a function, or a lambda with one signature).
    template <class F>
    LocalWorkflow& conf_activity(std::string name, F f, ActivityOptions opts = {}) {
        using Fn = std::decay_t<F>;
        static_assert(detail::has_signature<Fn>,
                      "flowy: conf_activity needs a function or a lambda with one signature (not a "
                      "generic lambda or an overload set): wrap it in std::function<R(Args...)>");
        using Sig = typename detail::callable_traits<Fn>::signature;
        config_.bind(std::move(name), detail::SignatureOf<Sig>::value,
                     detail::InvokerOf<Sig>::make(Fn(std::move(f))), opts);
        return *this;
    }
    /// How many workers run tasks (default: the number of cores).
    LocalWorkflow& workers(int n) {
        config_.set_workers(n);
        return *this;
    }
    /// Where tasks run (default: Executor::processes).
    LocalWorkflow& executor(Executor e) {
        config_.executor = e;
        return *this;
    }
    /// Where warnings go (an ignored failure, a replaced worker); default: standard error.
    LocalWorkflow& log(std::function<void(std::string_view)> sink) {
        config_.log = std::move(sink);
        return *this;
    }

    /// Runs one execution of the workflow to its end and returns its value.
    /// Throws TaskError if the workflow failed, ConfigError if the configuration does not fit.
    template <class... A>
    auto run(A&&... args) {
        static_assert(std::is_default_constructible_v<W>, "flowy: the workflow class must be default-constructible");
        static_assert(std::is_invocable_v<W&, A&&...>,
                      "flowy: run() arguments do not match the workflow's operator()");
        using Ret = std::invoke_result_t<W&, A&&...>;
        using T = detail::result_value_t<Ret>;
        std::unique_ptr<W> wf;
        detail::SlotPtr result = detail::run_local(
            config_, detail::type_name(typeid(W)), [&] { wf = std::make_unique<W>(); },
            [&]() -> detail::SlotPtr {
                if constexpr (std::is_void_v<Ret>) {
                    std::invoke(*wf, std::forward<A>(args)...);
                    return detail::finished_void_slot();
                } else if constexpr (detail::is_result_v<Ret>) {
                    Ret r = std::invoke(*wf, std::forward<A>(args)...);
                    return detail::slot_of(r);
                } else {
                    return detail::finished_slot(std::invoke(*wf, std::forward<A>(args)...));
                }
            });
        if constexpr (!std::is_void_v<T>) return T(detail::value_of<T>(*result));
    }

private:
    detail::Config config_;
};

}  // namespace flowy

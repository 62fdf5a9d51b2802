#pragma once
/// \file flowy::Activity, the proxy a workflow calls to schedule a task.

#include <flowy/result.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace flowy {

namespace detail {

template <class T>
struct result_vector : std::false_type {};
template <class U, class Al>
struct result_vector<std::vector<Result<U>, Al>> : std::true_type {
    using element = U;
};

/// Whether an argument of type `A` may be passed for a parameter of type `P`.
template <class P, class A>
constexpr bool accepts() {
    if constexpr (is_result_v<A>) {
        return std::is_convertible_v<const result_value_t<A>&, P>;
    } else if constexpr (result_vector<A>::value) {
        if constexpr (result_vector<P>::value) {
            return false;
        } else if constexpr (requires { typename P::value_type; } &&
                             std::is_same_v<P, std::vector<typename P::value_type>>) {
            return std::is_convertible_v<const typename result_vector<A>::element&, typename P::value_type>;
        } else {
            return false;
        }
    } else {
        return std::is_convertible_v<const A&, P>;
    }
}

/// Adds the results among an argument to a call's inputs.
template <class A>
void gather(Call& call, const A& a) {
    if constexpr (is_result_v<A>) {
        call.input(slot_of(a));
    } else if constexpr (result_vector<A>::value) {
        call.reserve(a.size());
        for (const auto& r : a) call.input(slot_of(r));
    }
}

/// The value an argument stands for, as the parameter type (inputs must be finished).
template <class P, class A>
decltype(auto) resolve(const A& a) {
    if constexpr (is_result_v<A>) {
        const auto& v = value_of<result_value_t<A>>(*slot_of(a));
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(v)>, P>)
            return v;
        else
            return P(v);
    } else if constexpr (result_vector<A>::value) {
        P out;
        out.reserve(a.size());
        for (const auto& r : a) out.push_back(value_copy<typename result_vector<A>::element>(*slot_of(r)));
        return out;
    } else if constexpr (std::is_same_v<A, P>) {
        return (a);
    } else {
        return P(a);
    }
}

/// Appends one argument, encoded as parameter type `P`; a finished result of exactly
/// that type is copied as the bytes it arrived in.
template <class P, class A>
void encode_arg(std::string& out, const A& a) {
    if constexpr (is_result_v<A> && std::is_same_v<result_value_t<A>, P>) {
        const Slot& s = *slot_of(a);
        if (!s.bytes.empty()) {
            out += s.bytes;
            return;
        }
    }
    encode(out, resolve<P>(a));
}

/// A step name an argument gives its call: a plain value with a `step_name()` member
/// (a flowy::Command) names the task it is passed to, unless the call was named.
template <class A>
void name_from(Call& call, const A& a) {
    if constexpr (requires { std::string(a.step_name()); }) {
        if (!call.named()) call.name(std::string(a.step_name()));
    }
}

/// Adds `a` (a Result of any type, or a vector of them) to what a step waits for.
template <class A>
void add_after(StepOptions& o, const A& a) {
    if constexpr (is_result_v<A>) {
        o.after.push_back(slot_of(a));
    } else if constexpr (result_vector<A>::value) {
        for (const auto& r : a) o.after.push_back(slot_of(r));
    } else {
        static_assert(is_result_v<A>, "flowy: after() takes Results (of any type) or vectors of Results");
    }
}

/// How a deferred call keeps an argument: results as they are, plain values already
/// converted to the parameter type (so nothing dangles, a string literal included).
template <class P, class A>
using stored_t = std::conditional_t<is_result_v<A> || result_vector<A>::value, A, P>;

/// The arguments of a call whose inputs were not finished, kept until they are.
template <class Params, class... As>
class DeferredArgs final : public TaskArgs {
public:
    template <class... Fw>
    explicit DeferredArgs(Fw&&... a) : args_(std::forward<Fw>(a)...) {}
    void encode(std::string& out) const override { encode_all(out, std::index_sequence_for<As...>{}); }
    const std::tuple<As...>& values() const { return args_; }

private:
    template <std::size_t... I>
    void encode_all(std::string& out, std::index_sequence<I...>) const {
        (encode_arg<std::tuple_element_t<I, Params>>(out, std::get<I>(args_)), ...);
    }
    std::tuple<As...> args_;
};

}  // namespace detail

template <class Signature>
class Activity;

/// One call of an activity with a step name or results to wait for, made by
/// `activity.named("unit tests")` and `activity.after(lib, app)`; chain them, then call
/// it like the activity: `test.named("unit tests").after(lib, app)(flowy::shell("make test"))`.
template <class A>
class Step {
public:
    Step(const A& activity, detail::StepOptions options) : activity_(activity), options_(std::move(options)) {}
    /// Names the step (pictures, reports, messages); task ids stay as they are.
    Step named(std::string name) && {
        options_.name = std::move(name);
        return std::move(*this);
    }
    /// Runs it only after these results finished (skipped, like any dependent, if one
    /// failed), without taking their values: a control edge.
    template <class... Rs>
    Step after(const Rs&... results) && {
        (detail::add_after(options_, results), ...);
        return std::move(*this);
    }
    template <class... As>
    auto operator()(As&&... a) const {
        return activity_.call(&options_, std::forward<As>(a)...);
    }

private:
    const A& activity_;
    detail::StepOptions options_;
};

/// A proxy for an activity: calling it schedules a task and returns its Result at once.
///
///     struct Flow {
///         flowy::Activity<int(int)> square{"square"};
///         flowy::Result<int> operator()(int x) { return square(x); }
///     };
///
/// Constructed from a callable instead of a name, it runs the callable inline (no engine),
/// so a workflow can be unit-tested as plain code.
template <class R, class... Args>
class Activity<R(Args...)> {
    static_assert(detail::storable_v<R> && (detail::storable_v<std::decay_t<Args>> && ...),
                  "flowy: activity parameter and result types must be object types (or void for the result)");
    static_assert(detail::serialisable_v<R>,
                  "flowy: the activity's result type cannot be serialised with cereal: give it a "
                  "serialize() member (or save/load), or include the cereal header for the standard type");
    static_assert((detail::serialisable_v<std::decay_t<Args>> && ...),
                  "flowy: an activity parameter type cannot be serialised with cereal: give it a "
                  "serialize() member (or save/load), or include the cereal header for the standard type");

    using Params = std::tuple<std::decay_t<Args>...>;

public:
    using result_type = R;

    /// A dependency named `name`, bound to a function by `conf_activity(name, f)`.
    explicit Activity(std::string name) : Activity(std::move(name), false) {}
    /// An activity that runs `f` inline when called (direct mode, no engine).
    template <class F>
    requires(std::is_invocable_r_v<R, F&, Args...> && !std::is_convertible_v<F, std::string> &&
             !std::is_same_v<std::remove_cvref_t<F>, Activity>)
        Activity(F f)  // NOLINT: implicit, so `Activity<int(int)> square = square_activity;` works
        : dep_{std::string(), detail::SignatureOf<R(Args...)>::value}, direct_(std::move(f)) {}

protected:
    Activity(std::string name, bool workflow)
        : dep_{std::move(name), detail::SignatureOf<R(Args...)>::value, workflow} {
        detail::declare(dep_);
    }

public:
    /// The dependency name (empty in direct mode).
    const std::string& name() const noexcept { return dep_.name; }

    /// Schedules a task with these arguments (values, Results, or vectors of Results) and returns its result.
    template <class... A>
    Result<R> operator()(A&&... a) const {
        return call(nullptr, std::forward<A>(a)...);
    }

    /// This activity's next call, under a display name: `build.named("build app")(cmd)`.
    Step<Activity> named(std::string name) const { return Step<Activity>(*this, {std::move(name), {}}); }
    /// This activity's next call, run only after `results` (Results of any type, or
    /// vectors of them) finished: `test.after(lib, app)(flowy::shell("make test"))`.
    template <class... Rs>
    Step<Activity> after(const Rs&... results) const {
        return Step<Activity>(*this, {}).after(results...);
    }

private:
    friend class Step<Activity>;

    template <class... A>
    Result<R> call(const detail::StepOptions* o, A&&... a) const {
        static_assert(sizeof...(A) == sizeof...(Args), "flowy: wrong number of arguments in an activity call");
        static_assert((detail::accepts<std::decay_t<Args>, std::remove_cvref_t<A>>() && ...),
                      "flowy: an argument does not fit the activity's parameter: pass a value convertible "
                      "to it, a Result of such a value, or a std::vector<Result<U>> for a std::vector<U>");
        if (direct_) return call_direct(o, a...);
        detail::Call call(dep_);
        (detail::gather(call, a), ...);
        if (o) {
            for (const auto& s : o->after) call.after(s);
            if (!o->name.empty()) call.name(o->name);
        }
        (detail::name_from(call, a), ...);
        if (call.inputs_ready()) {
            encode_now(call.bytes(), std::index_sequence_for<Args...>{}, a...);
            return Result<R>(call.submit(nullptr));
        }
        return Result<R>(
            call.submit(std::make_unique<
                        detail::DeferredArgs<Params, detail::stored_t<std::decay_t<Args>, std::remove_cvref_t<A>>...>>(
                std::forward<A>(a)...)));
    }

    template <std::size_t... I, class... A>
    static void encode_now(std::string& out, std::index_sequence<I...>, const A&... a) {
        (detail::encode_arg<std::tuple_element_t<I, Params>>(out, a), ...);
    }

    template <class... A>
    Result<R> call_direct(const detail::StepOptions* o, const A&... a) const {
        std::vector<const detail::Slot*> inputs;
        auto add = [&](const detail::SlotPtr& s) {
            if (!s) throw std::logic_error("flowy: an empty Result passed to an activity");
            if (s->state == detail::Slot::State::pending) detail::await(*s);
            s->observed = true;
            inputs.push_back(s.get());
        };
        auto collect = [&](const auto& x) {
            using X = std::remove_cvref_t<decltype(x)>;
            if constexpr (detail::is_result_v<X>) {
                add(detail::slot_of(x));
            } else if constexpr (detail::result_vector<X>::value) {
                for (const auto& r : x) add(detail::slot_of(r));
            }
        };
        (collect(a), ...);
        if (o)
            for (const auto& s : o->after) add(s);
        if (const detail::Slot* f = detail::first_failed(inputs)) return Result<R>(detail::failed_slot(f->error()));
        try {
            if constexpr (std::is_void_v<R>) {
                invoke_direct(std::index_sequence_for<Args...>{}, a...);
                return Result<R>();
            } else {
                return Result<R>(detail::finished_slot(invoke_direct(std::index_sequence_for<Args...>{}, a...)));
            }
        } catch (...) {
            return Result<R>(detail::failed_slot(std::make_shared<detail::ErrorInfo>(detail::current_error({}))));
        }
    }

    template <std::size_t... I, class... A>
    R invoke_direct(std::index_sequence<I...>, const A&... a) const {
        return direct_(detail::resolve<std::tuple_element_t<I, Params>>(a)...);
    }

    detail::Dependency dep_;
    std::function<R(Args...)> direct_;
};

/// Called from inside an activity (its own thread): reports that the attempt is alive
/// and making progress. An activity configured with `ActivityOptions::heartbeat_timeout`
/// must call it at least that often, or its attempt is lost: it ends as timed out
/// ("no heartbeat for 300 ms"), which counts against `retries` like a timeout, and the
/// processes executor stops its worker. Returns false once the attempt is lost (a gap
/// longer than the heartbeat timeout; on the PostgreSQL engine also a lease taken by
/// another process): the activity should stop, its result will not be used. Cheap (a
/// clock read and a store); returns true outside an attempt (direct mode, unit tests).
bool heartbeat() noexcept;

}  // namespace flowy

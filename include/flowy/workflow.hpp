#pragma once
/// \file Child workflows (flowy::Workflow) and flowy::restart.

#include <flowy/activity.hpp>

#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace flowy {

/// A proxy for a child workflow, declared in the parent with its dependency name and
/// bound with `conf_workflow(name, child)` to a configured `LocalWorkflow<C>`. Calling
/// it runs the child on the parent's workers and returns its value as a Result; the
/// child's failure is a TaskError in the parent carrying the child's message.
template <class Signature>
class Workflow;

template <class R, class... Args>
class Workflow<R(Args...)> : public Activity<R(Args...)> {
public:
    /// A child workflow named `name`, bound by `conf_workflow(name, child)`.
    explicit Workflow(std::string name) : Activity<R(Args...)>(std::move(name), true) {}
    /// A child run inline (direct mode): `f` is typically a lambda calling the child's body.
    template <class F>
    requires(std::is_invocable_r_v<R, F&, Args...> && !std::is_convertible_v<F, std::string> &&
             !std::is_same_v<std::remove_cvref_t<F>, Workflow>) Workflow(F f)
        : Activity<R(Args...)>(std::move(f)) {}  // NOLINT: implicit, like Activity
};

namespace detail {

/// The value type an argument of restart() stands for.
template <class A>
struct restart_value {
    using type = std::decay_t<A>;
};
template <class U>
struct restart_value<Result<U>> {
    using type = U;
};
template <class U, class Al>
struct restart_value<std::vector<Result<U>, Al>> {
    using type = std::vector<U>;
};
template <>
struct restart_value<const char*> {
    using type = std::string;
};
template <>
struct restart_value<char*> {
    using type = std::string;
};
template <class A>
using restart_value_t = typename restart_value<std::decay_t<A>>::type;

/// What restart(args...) returns: converts to the Result the body returns.
template <class... As>
class RestartCall {
public:
    template <class... Fw>
    explicit RestartCall(Fw&&... a) : args_(std::make_shared<Args>(std::forward<Fw>(a)...)) {}

    template <class T>
    operator Result<T>() const {  // NOLINT: implicit, so that `return restart(...)` works
        auto req = std::make_shared<RestartRequest>();
        req->values = SignatureOf<void(restart_value_t<As>...)>::value;
        std::apply([&](const auto&... a) { (gather_into(req->inputs, a), ...); }, args_->values());
        req->args = args_;
        return Result<T>(SlotPtr(new RestartSlot(std::move(req))));
    }

private:
    using Args = DeferredArgs<std::tuple<restart_value_t<As>...>, stored_t<restart_value_t<As>, As>...>;

    template <class A>
    static void gather_into(std::vector<SlotPtr>& out, const A& a) {
        if constexpr (is_result_v<A>) {
            out.push_back(slot_of(a));
        } else if constexpr (result_vector<A>::value) {
            for (const auto& r : a) out.push_back(slot_of(r));
        }
    }

    std::shared_ptr<Args> args_;
};

}  // namespace detail

/// Returned from a workflow body: the execution continues as new with these
/// arguments (each a value, a Result or a vector of Results; unfinished ones are waited
/// for, a failed one fails the workflow). `run()` returns the last incarnation's value.
///
///     flowy::Result<int> operator()(int n, int acc) {
///         if (n == 0) return acc;
///         return flowy::restart(n - 1, add(acc, n));
///     }
template <class... A>
detail::RestartCall<std::remove_cvref_t<A>...> restart(A&&... args) {
    static_assert((detail::serialisable_v<detail::restart_value_t<A>> && ...),
                  "flowy::restart: every argument must be serialisable with cereal");
    return detail::RestartCall<std::remove_cvref_t<A>...>(std::forward<A>(args)...);
}

}  // namespace flowy

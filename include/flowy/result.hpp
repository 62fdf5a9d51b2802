#pragma once
/// \file flowy::Result, the placeholder for a task's outcome.

#include <flowy/detail/core.hpp>
#include <flowy/detail/serialize.hpp>

#include <stdexcept>
#include <type_traits>
#include <utility>

namespace flowy {

template <class T>
class Result;

namespace detail {

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<Result<T>> : std::true_type {};
template <class T>
inline constexpr bool is_result_v = is_result<std::remove_cvref_t<T>>::value;

template <class T>
struct result_value {
    using type = T;
};
template <class T>
struct result_value<Result<T>> {
    using type = T;
};
/// `T` for `Result<T>`, else the type itself.
template <class T>
using result_value_t = typename result_value<std::remove_cvref_t<T>>::type;

/// From this size on, a decoded result drops its encoded bytes.
inline constexpr std::size_t big_value = std::size_t(1) << 20;

/// The value of a finished, successful slot, decoded from its bytes on first use.
template <class T>
const T& value_of(Slot& s) {
    if (!s.value) {
        if constexpr (std::is_same_v<T, std::string>) {
            if (s.bytes.size() >= big_value) {  // a big string takes over its encoded bytes' buffer
                std::string b = s.bytes.take();
                if (string_in_place(b)) {
                    s.value = std::make_unique<ValueOf<T>>(std::move(b));
                    return static_cast<const ValueOf<T>&>(*s.value).v;
                }
                s.bytes = std::move(b);
            }
        }
        s.value = std::make_unique<ValueOf<T>>(decode<T>(s.bytes));
        // Keep one copy of a big value, not two: it is encoded again if passed on.
        if (s.bytes.size() >= big_value) s.bytes.clear();
    }
    return static_cast<const ValueOf<T>&>(*s.value).v;
}

/// The value of a finished, successful slot, as a copy: decoded from its bytes without
/// keeping the decoded value (one read of each of many results, as an activity argument).
template <class T>
T value_copy(const Slot& s) {
    if (s.value) return static_cast<const ValueOf<T>&>(*s.value).v;
    return decode<T>(s.bytes);
}

/// Waits for `s`, marks it read, throws its error if it failed.
inline Slot& settle(const SlotPtr& p) {
    if (!p) throw std::logic_error("flowy: read of an empty Result (default-constructed, never assigned)");
    Slot& s = *p;
    if (s.restarting)
        throw std::logic_error(
            "flowy: the Result of restart() is not a value: return it from the workflow body (in direct mode, "
            "run the workflow with flowy::run_direct)");
    if (s.state == Slot::State::pending) await(s);
    if (s.owner) note_read(s);
    s.observed = true;
    if (s.state == Slot::State::failed) throw_error(*s.error());
    return s;
}

template <class T>
const SlotPtr& slot_of(const Result<T>& r) {
    return r.slot_;
}

}  // namespace detail

/// The placeholder for a task's outcome: `get()` suspends the workflow body until it is known.
template <class T>
class Result {
    static_assert(detail::storable_v<T>, "flowy: Result<T> needs an object type T (no references)");

public:
    /// An empty result; reading it is an error. Assign a real one before use.
    Result() = default;
    /// An already-finished result holding `value`, so a body can `return acc;`.
    Result(T value) : slot_(detail::finished_slot(std::move(value))) {}  // NOLINT: implicit by design
    /// Wraps the state of a task (used by the engine).
    explicit Result(detail::SlotPtr s) : slot_(std::move(s)) {}

    /// The value; suspends the body until the task finished; throws TaskError if it failed.
    const T& get() const { return detail::value_of<T>(detail::settle(slot_)); }

private:
    template <class U>
    friend const detail::SlotPtr& detail::slot_of(const Result<U>&);
    detail::SlotPtr slot_;
};

/// The outcome of an activity run for its effect: `get()` returns nothing, or throws TaskError.
template <>
class Result<void> {
public:
    /// An already-finished, successful result.
    Result() : slot_(detail::finished_void_slot()) {}
    /// Wraps the state of a task (used by the engine).
    explicit Result(detail::SlotPtr s) : slot_(std::move(s)) {}

    /// Suspends the body until the task finished; throws TaskError if it failed.
    void get() const { detail::settle(slot_); }

private:
    template <class U>
    friend const detail::SlotPtr& detail::slot_of(const Result<U>&);
    detail::SlotPtr slot_;
};

}  // namespace flowy

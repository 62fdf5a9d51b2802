#pragma once
/// \file Operations on results: wait, first, finish_order, parallel_reduce.

#include <flowy/activity.hpp>

#include <cstddef>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace flowy {

/// Suspends the body until `r` has finished; throws TaskError if it failed.
template <class T>
void wait(const Result<T>& r) {
    detail::settle(detail::slot_of(r));
}

/// The result that finished first, failed ones included (reading a failed one throws).
/// Values finished before the run (plain values, direct mode) count as first.
template <class T, class... Rest>
requires(std::is_same_v<Rest, Result<T>>&&...) Result<T> first(const Result<T>& r, const Rest&... rest) {
    detail::FinishQueue q;
    q.add(detail::slot_of(r));
    (q.add(detail::slot_of(rest)), ...);
    return Result<T>(q.take());
}

/// The result of `rs` that finished first; `rs` must not be empty.
template <class T>
Result<T> first(const std::vector<Result<T>>& rs) {
    if (rs.empty()) throw std::invalid_argument("flowy::first: no results to choose from");
    detail::FinishQueue q;
    for (const auto& r : rs) q.add(detail::slot_of(r));
    return Result<T>(q.take());
}

/// An input range over results in the order they finish (see finish_order()).
template <class T>
class FinishOrder : public std::ranges::view_base {
    struct State {
        detail::FinishQueue queue;
        detail::SlotPtr current;
        void fetch() {
            if (!current) current = queue.take();
        }
    };

public:
    class iterator {
    public:
        using value_type = Result<T>;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::input_iterator_tag;

        iterator() = default;
        explicit iterator(State* s) : s_(s) {}
        /// The next result to finish; suspends the body until it has.
        Result<T> operator*() const {
            s_->fetch();
            return Result<T>(s_->current);
        }
        iterator& operator++() {
            s_->fetch();
            s_->current = nullptr;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return !it.s_->current && it.s_->queue.size() == 0;
        }

    private:
        State* s_ = nullptr;
    };

    FinishOrder() = default;
    explicit FinishOrder(const std::vector<Result<T>>& rs) : state_(std::make_shared<State>()) {
        for (const auto& r : rs) state_->queue.add(detail::slot_of(r));
    }
    iterator begin() const { return iterator(state_.get()); }
    std::default_sentinel_t end() const { return {}; }

private:
    std::shared_ptr<State> state_;
};

/// The results of `rs` in the order they finish, as an input range: reading the next
/// element suspends the body only until one more has finished.
///
///     for (flowy::Result<int> r : flowy::finish_order(rs)) total += r.get();
template <class T>
FinishOrder<T> finish_order(const std::vector<Result<T>>& rs) {
    return FinishOrder<T>(rs);
}

/// Reduces `rs` with an associative, commutative activity, pairing the results in the
/// order they finish, so the reduction runs as the inputs arrive: `rs.size() - 1`
/// calls of `f`. Returns the final result; a single result is returned as it is.
/// The body waits here until the last pair has been handed to `f`.
template <class R, class A, class B, class T>
Result<R> parallel_reduce(const Activity<R(A, B)>& f, const std::vector<Result<T>>& rs) {
    static_assert(std::is_same_v<R, T> && std::is_same_v<std::decay_t<A>, T> && std::is_same_v<std::decay_t<B>, T>,
                  "flowy::parallel_reduce: the activity must take two values of the results' type and return one");
    if (rs.empty()) throw std::invalid_argument("flowy::parallel_reduce: no results to reduce");
    if (rs.size() == 1) return rs.front();
    detail::FinishQueue q;
    for (const auto& r : rs) q.add(detail::slot_of(r));
    for (std::size_t i = 1; i < rs.size(); ++i) {
        Result<T> a(q.take());
        Result<T> b(q.take());
        q.add(detail::slot_of(f(a, b)));
    }
    return Result<T>(q.take());
}

}  // namespace flowy

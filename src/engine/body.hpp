#pragma once
// A workflow body's fiber: its own guarded stack (reserved, touched on demand), the
// switches between it and the scheduler, and what AddressSanitizer must be told
// about them. A body runs until it reads a result that is not there yet, leaves for
// the scheduler there, and is entered again once the result is in.

#include <boost/context/fiber.hpp>

#include <cstddef>
#include <utility>

namespace flowy::detail {

/// Where a stack lies (for AddressSanitizer's fiber annotations).
struct StackBounds {
    const void* bottom = nullptr;
    std::size_t size = 0;
};

// AddressSanitizer must be told when the stack changes under it (Boost.Context's
// fcontext build does not), or it reports false errors on a body's stack.
void start_stack_switch(void** fake, const StackBounds& to) noexcept;
void finish_stack_switch(void* fake, StackBounds* from) noexcept;

/// Boost's guarded stack for a body, remembering where it put it.
class BodyStack {
public:
    static constexpr std::size_t size = std::size_t(8) << 20;  // reserved, touched on demand
    explicit BodyStack(StackBounds* bounds);
    boost::context::stack_context allocate();
    void deallocate(boost::context::stack_context& sc) noexcept;

private:
    StackBounds* bounds_;
};

class Body {
public:
    /// Makes the fiber that runs `fn` when first entered. `scheduler` is where the
    /// scheduler's stack lies, shared by the bodies of one execution. `fn` must not
    /// throw, but for Boost's forced unwinding of a fiber that is dropped.
    template <class Fn>
    void create(StackBounds& scheduler, Fn fn) {
        scheduler_stack_ = &scheduler;
        fiber_ = boost::context::fiber(std::allocator_arg, BodyStack(&stack_),
                                       [this, fn = std::move(fn)](boost::context::fiber&& from) mutable {
                                           finish_stack_switch(nullptr, scheduler_stack_);
                                           scheduler_ = std::move(from);
                                           fn();
                                           start_stack_switch(nullptr, *scheduler_stack_);
                                           return std::move(scheduler_);
                                       });
    }
    /// Whether it has a fiber: created and not dropped (a body that returned has none).
    bool exists() const { return bool(fiber_); }
    /// From the scheduler: runs the body until it leaves or returns.
    void enter() {
        void* fake = nullptr;
        start_stack_switch(&fake, stack_);
        fiber_ = std::move(fiber_).resume();
        finish_stack_switch(fake, nullptr);
    }
    /// From inside the body: back to the scheduler, until it enters the body again.
    void leave() {
        void* fake = nullptr;
        start_stack_switch(&fake, *scheduler_stack_);
        scheduler_ = std::move(scheduler_).resume();
        finish_stack_switch(fake, scheduler_stack_);
    }
    /// Drops the fiber (a suspended one unwinds its stack first).
    void drop() { fiber_ = boost::context::fiber(); }

private:
    boost::context::fiber fiber_, scheduler_;
    StackBounds stack_;
    StackBounds* scheduler_stack_ = nullptr;
};

/// Thrown into a suspended body when its run is abandoned, so that the body unwinds
/// on its own stack and returns normally (no std::exception: user code does not
/// catch it by accident).
struct Abandoned {};

}  // namespace flowy::detail

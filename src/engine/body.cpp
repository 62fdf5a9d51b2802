#include "engine/body.hpp"

#include <boost/context/protected_fixedsize_stack.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FLOWY_ASAN 1
#endif

namespace flowy::detail {

void start_stack_switch(void** fake, const StackBounds& to) noexcept {
#ifdef FLOWY_ASAN
    __sanitizer_start_switch_fiber(fake, to.bottom, to.size);
#else
    (void)fake, (void)to;
#endif
}

void finish_stack_switch(void* fake, StackBounds* from) noexcept {
#ifdef FLOWY_ASAN
    __sanitizer_finish_switch_fiber(fake, from ? &from->bottom : nullptr, from ? &from->size : nullptr);
#else
    (void)fake, (void)from;
#endif
}

BodyStack::BodyStack(StackBounds* bounds) : bounds_(bounds) {}

boost::context::stack_context BodyStack::allocate() {
    boost::context::stack_context sc = boost::context::protected_fixedsize_stack(size).allocate();
    bounds_->bottom = static_cast<char*>(sc.sp) - sc.size;
    bounds_->size = sc.size;
    return sc;
}

void BodyStack::deallocate(boost::context::stack_context& sc) noexcept {
#ifdef FLOWY_ASAN
    // The body's frames leave poisoned shadow behind; the pages may be mapped again
    // (a trace file), where AddressSanitizer would take them for stack.
    __asan_unpoison_memory_region(static_cast<char*>(sc.sp) - sc.size, sc.size);
#endif
    boost::context::protected_fixedsize_stack(size).deallocate(sc);
}

}  // namespace flowy::detail

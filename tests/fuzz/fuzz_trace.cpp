// libFuzzer target for the trace reader and everything drawn from a trace: any bytes
// either load (and then render, summarise and time without trouble) or are refused
// with a TraceError. Anything else (a crash, a sanitizer report, another exception)
// is a bug. Built and run by tests/fuzz/run.sh.
#include <flowy/trace.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        flowy::Trace t = flowy::Trace::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        (void)t.summary(false);
        (void)t.timeline();
        (void)t.junit();
        (void)t.summary_markdown();
        if (t.tasks().size() < 64) (void)t.to_dot();  // cgraph is slow; small graphs cover the code
    } catch (const flowy::TraceError&) {
    }
    return 0;
}

// libFuzzer target for the trace reader and everything drawn from a trace: any bytes
// either load (and then render, summarise and time without trouble) or are refused
// with a TraceError, and what loads exports to JSON Lines that load the same. Anything
// else (a crash, a sanitizer report, another exception) is a bug. Both encodings: JSON
// Lines and the journal, whose checksums this build does not check (so that mutations
// reach the fields). Built and run by tests/fuzz/run.sh.
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
        // What loads exports, and the export loads the same: a journal's JSON Lines.
        flowy::Trace again = flowy::Trace::parse(t.jsonl(), "fuzz.jsonl");
        if (again.tasks().size() != t.tasks().size() || again.runs().size() != t.runs().size()) __builtin_trap();
    } catch (const flowy::TraceError&) {
    }
    return 0;
}

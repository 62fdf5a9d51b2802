#pragma once
// What the samples share: activities that sleep a number of time units (as in the
// original Flowy examples), and a tiny command line:
//   SAMPLE [--unit-ms N] [--executor processes|threads|synchronous] [--workers N]
//          [--trace PATH] [--svg PATH]
// Each sample prints its duration in units, then its result on the last line;
// --trace records the run, --svg draws it (and records it to PATH.trace if no --trace).
#include <flowy/flowy.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

namespace sample {

inline double unit_ms = 100;  // one time unit; set before run(), so forked workers inherit it

inline void sleep_units(double units) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(units * unit_ms * 1000)));
}

/// Sleeps `units`, returns `result`: an activity that stands for real work.
inline int act(double units, int result) {
    sleep_units(units);
    return result;
}
/// A map step: x squared, after `units`.
inline int square(int x, double units) {
    sleep_units(units);
    return x * x;
}
/// A reduce step: the sum, after 1.5 units.
inline int add(int a, int b) {
    sleep_units(1.5);
    return a + b;
}

struct Options {
    flowy::Executor executor = flowy::Executor::processes;
    int workers = 8;
    std::string trace, svg;
};

inline Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--unit-ms") {
            unit_ms = std::atof(value().c_str());
        } else if (a == "--trace") {
            o.trace = value();
        } else if (a == "--svg") {
            o.svg = value();
        } else if (a == "--workers") {
            o.workers = std::atoi(value().c_str());
        } else if (a == "--executor") {
            std::string e = value();
            if (e == "processes")
                o.executor = flowy::Executor::processes;
            else if (e == "threads")
                o.executor = flowy::Executor::threads;
            else if (e == "synchronous")
                o.executor = flowy::Executor::synchronous;
            else {
                std::fprintf(stderr, "unknown executor '%s'\n", e.c_str());
                std::exit(2);
            }
        } else {
            std::fprintf(stderr,
                         "usage: %s [--unit-ms N] [--executor processes|threads|synchronous] [--workers N] "
                         "[--trace PATH] [--svg PATH]\n",
                         argv[0]);
            std::exit(2);
        }
    }
    return o;
}

/// Configures the sample activities on `w` (and what `configure(w)` adds), runs it,
/// prints the duration and the result.
template <class W, class Configure, class... A>
int main_with(int argc, char** argv, Configure configure, A&&... args) {
    Options o = parse(argc, argv);
    flowy::LocalWorkflow<W> w;
    w.executor(o.executor).workers(o.workers);
    if (o.trace.empty() && !o.svg.empty()) o.trace = o.svg + ".trace";
    if (!o.trace.empty()) w.trace(o.trace);
    struct Draw {  // draws the trace when the run is over, however it ended
        const Options& o;
        ~Draw() {
            if (o.svg.empty()) return;
            try {
                flowy::Trace::load(o.trace).write_svg(o.svg);
            } catch (const std::exception& e) {
                std::cerr << "cannot draw " << o.svg << ": " << e.what() << std::endl;
            }
        }
    } draw{o};
    W probe;  // configure only what this workflow declares
    if constexpr (requires { probe.a; }) w.conf_activity("a", act);
    if constexpr (requires { probe.square; }) w.conf_activity("square", square);
    if constexpr (requires { probe.add; }) w.conf_activity("add", add);
    configure(w);
    auto t0 = std::chrono::steady_clock::now();
    try {
        if constexpr (std::is_void_v<decltype(w.run(args...))>) {
            w.run(std::forward<A>(args)...);
            auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            std::cout << "duration: " << ms / unit_ms << " units\n"
                      << "done" << std::endl;
        } else {
            auto result = w.run(std::forward<A>(args)...);
            auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            std::cout << "duration: " << ms / unit_ms << " units\n" << result << std::endl;
        }
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}

template <class W, class... A>
int main(int argc, char** argv, A&&... args) {
    return main_with<W>(
        argc, argv, [](auto&) {}, std::forward<A>(args)...);
}

}  // namespace sample

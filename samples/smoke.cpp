// A CI smoke test written as a workflow: build the project's samples in parallel,
// run each one as soon as it is built, check what it prints, and draw the pipeline.
//
//   build sequential ──► run sequential ──► check ─┐
//   build parallel_sum ─► run parallel_sum ─► check ┼──► all passed?
//   build parallel_wait ► run parallel_wait ► check ┘      ...
//
//   smoke BUILD_DIR [--trace PATH] [--svg PATH]
// BUILD_DIR is a configured flowy build: samples are compiled against it through its
// uninstalled pkg-config file, so the pipeline also checks that a user's build works.
#include <flowy/command.hpp>
#include <flowy/flowy.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace {

std::string build_dir, source_dir, out_dir;

struct Sample {
    std::string name, expected;
};
const std::vector<Sample> samples = {
    // samples whose result does not depend on timing (the pipeline runs them all at once)
    {"sequential", "4"},   {"parallel_sum", "10"},        {"parallel_wait", "done"},
    {"conditional", "70"}, {"parallel_map_reduce", "91"}, {"finish_order_map_reduce", "91"},
};

flowy::Command build(std::string name) {
    std::string pc = "PKG_CONFIG_PATH=" + build_dir + "/meson-uninstalled";
    return flowy::shell("c++ -O1 " + source_dir + "/samples/" + name + ".cpp -o " + out_dir + "/" + name + " $(" + pc +
                        " pkg-config --cflags --libs flowy)");
}

// Runs a built sample (its library from the build tree).
flowy::CommandResult run_sample(flowy::CommandResult built) {
    std::string exe = built.command.substr(built.command.find(" -o ") + 4);
    exe = exe.substr(0, exe.find(' '));
    flowy::Command c = flowy::command(exe, {"--unit-ms", "5"});
    c.env["LD_LIBRARY_PATH"] = build_dir + "/src";
    return flowy::run_command(c);
}

// Checks the last line a sample printed.
std::string check(flowy::CommandResult ran, std::string expected) {
    std::string out = ran.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::string last = out.substr(out.rfind('\n') + 1);
    if (last != expected) throw std::runtime_error(ran.command + " printed " + last + ", expected " + expected);
    return ran.command + ": ok";
}

struct Smoke {
    flowy::Activity<flowy::CommandResult(flowy::Command)> build{"build"};
    flowy::Activity<flowy::CommandResult(flowy::CommandResult)> run{"run"};
    flowy::Activity<std::string(flowy::CommandResult, std::string)> check{"check"};

    int operator()() {
        std::vector<flowy::Result<std::string>> checks;
        for (const Sample& s : samples) checks.push_back(check(run(build(::build(s.name))), s.expected));
        int failed = 0;
        for (auto& c : checks) {
            try {
                std::cout << c.get() << "\n";
            } catch (const flowy::TaskError& e) {
                std::cout << "FAILED: " << e.task() << ": " << e.what() << "\n";
                ++failed;
            }
        }
        return failed;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: smoke BUILD_DIR [--trace PATH] [--svg PATH]\n";
        return 2;
    }
    build_dir = argv[1];
    source_dir = FLOWY_SOURCE_DIR;
    out_dir = build_dir + "/smoke";
    std::string trace, svg;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--trace") trace = argv[i + 1];
        if (a == "--svg") svg = argv[i + 1];
    }
    if (trace.empty()) trace = out_dir + "/smoke.jsonl";
    flowy::run_command(flowy::command("mkdir", {"-p", out_dir}));
    flowy::LocalWorkflow<Smoke> w;
    w.workers(4).trace(trace);
    w.conf_activity("build", flowy::run_command, {.timeout = std::chrono::minutes(5)});
    w.conf_activity("run", run_sample, {.timeout = std::chrono::minutes(1)});
    w.conf_activity("check", check);
    int failed = w.run();
    if (!svg.empty()) flowy::Trace::load(trace).write_svg(svg);
    std::cout << (failed ? "smoke: " + std::to_string(failed) + " failed" : std::string("smoke: all passed")) << "\n";
    return failed ? 1 : 0;
}

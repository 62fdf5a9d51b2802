// A CI smoke test written as a workflow: build the project's samples in parallel, run
// each one as soon as it is built, check what it prints, and publish what a CI job
// shows: a JUnit report, a Markdown step summary and an HTML report.
//
//   prepare ─► build sequential ──► run sequential ──► check sequential
//           ├► build parallel_sum ─► run parallel_sum ─► check parallel_sum
//           └► ...
//
//   smoke BUILD_DIR [--trace PATH] [--svg PATH] [--junit PATH] [--markdown PATH] [--report PATH]
// BUILD_DIR is a configured flowy build: samples are compiled against it through its
// uninstalled pkg-config file, so the pipeline also checks that a user's build works.
// The reports go to BUILD_DIR/smoke/ unless told otherwise; the exit code is the
// number of failed steps (0: all passed).
#include <flowy/command.hpp>
#include <flowy/flowy.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
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

flowy::Command build(const std::string& name) {
    std::string pc = "PKG_CONFIG_PATH=" + build_dir + "/meson-uninstalled";
    return flowy::shell("c++ -O1 " + source_dir + "/samples/" + name + ".cpp -o " + out_dir + "/" + name + " $(" + pc +
                        " pkg-config --cflags --libs flowy)")
        .named("build " + name);
}

flowy::Command run(const std::string& name) {
    flowy::Command c = flowy::command(out_dir + "/" + name, {"--unit-ms", "5"});
    c.env["LD_LIBRARY_PATH"] = build_dir + "/src";  // its library from the build tree
    return c.named("run " + name);
}

// Checks the last line a sample printed.
std::string check(flowy::CommandResult ran, std::string expected) {
    std::string out = ran.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::string last = out.substr(out.rfind('\n') + 1);
    if (last != expected) throw std::runtime_error(ran.name + " printed " + last + ", expected " + expected);
    return ran.name + ": ok";
}

struct Smoke {
    flowy::Activity<flowy::CommandResult(flowy::Command)> sh{"sh"};
    flowy::Activity<std::string(flowy::CommandResult, std::string)> check{"check"};

    int operator()() {
        auto prepare = sh(flowy::command("mkdir", {"-p", out_dir}).named("prepare"));
        std::vector<flowy::Result<std::string>> checks;
        for (const Sample& s : samples) {
            auto built = sh.after(prepare)(build(s.name));  // needs the directory, not a value
            auto ran = sh.after(built)(run(s.name));        // needs the program, not a value
            checks.push_back(check.named("check " + s.name)(ran, s.expected));
        }
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

bool write(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (f.good()) return true;
    std::cerr << "smoke: cannot write " << path << "\n";
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc % 2 != 0) {
        std::cerr << "usage: smoke BUILD_DIR [--trace PATH] [--svg PATH] [--junit PATH] [--markdown PATH] "
                     "[--report PATH]\n";
        return 2;
    }
    build_dir = argv[1];
    source_dir = FLOWY_SOURCE_DIR;
    out_dir = build_dir + "/smoke";
    std::map<std::string, std::string> to = {{"--trace", out_dir + "/smoke.trace"},
                                             {"--svg", ""},
                                             {"--junit", out_dir + "/junit.xml"},
                                             {"--markdown", out_dir + "/summary.md"},
                                             {"--report", out_dir + "/report.html"}};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!to.count(argv[i])) {
            std::cerr << "smoke: unknown option " << argv[i] << "\n";
            return 2;
        }
        to[argv[i]] = argv[i + 1];
    }
    std::filesystem::create_directories(out_dir);  // the trace lives there before the pipeline runs
    flowy::LocalWorkflow<Smoke> w;
    w.workers(4).trace(to["--trace"]);
    w.conf_activity("sh", flowy::run_command, {.timeout = std::chrono::minutes(5)});
    w.conf_activity("check", check);
    int failed = w.run();

    flowy::Trace trace = flowy::Trace::load(to["--trace"]);
    bool ok = write(to["--junit"], trace.junit()) && write(to["--markdown"], trace.summary_markdown()) &&
              write(to["--report"], trace.report_html());
    if (!to["--svg"].empty()) trace.write_svg(to["--svg"]);
    // a CI job's step summary: GitHub Actions names the file in GITHUB_STEP_SUMMARY
    if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY"); summary && *summary) {
        std::ofstream(summary, std::ios::app) << trace.summary_markdown();
    }
    std::cout << (failed ? "smoke: " + std::to_string(failed) + " failed" : std::string("smoke: all passed"))
              << "\nreports: " << to["--junit"] << ", " << to["--markdown"] << ", " << to["--report"] << "\n";
    return failed ? 1 : ok ? 0 : 1;
}

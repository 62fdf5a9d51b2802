// A CI pipeline that goes wrong in every way a report must show, for the report tests
// (tests/test_reports.py): named steps, steps ordered by after(...) without data, a
// failing test step with output on both streams (more lines than a message's tail, colour
// codes and a non-ASCII line included), a step that times out on both of its attempts, steps skipped because of
// them, and a plain (non-command) activity.
//
//   ci_pipeline TRACE
#include <flowy/command.hpp>
#include <flowy/flowy.hpp>

#include <iostream>

using namespace std::chrono_literals;

namespace {

std::string count_lines(flowy::CommandResult r) {
    std::size_t n = 0;
    for (char ch : r.out) n += ch == '\n';
    return std::to_string(n) + " lines";
}

struct Pipeline {
    flowy::Activity<flowy::CommandResult(flowy::Command)> sh{"sh"};
    flowy::Activity<flowy::CommandResult(flowy::Command)> slow{"slow"};
    flowy::Activity<std::string(flowy::CommandResult)> lines{"lines"};

    int operator()() {
        auto configure = sh(flowy::shell("echo configured").named("configure"));
        auto lib = sh.after(configure)(
            flowy::shell("echo compiling lib; printf 'bytes \\377\\376\\n'; echo 'lib: warning: unused' >&2"));
        auto app = sh.named("build app").after(configure)(flowy::command("echo", {"linking", "app"}));
        auto unit = sh.named("unit tests")
                        .after(lib, app)(flowy::shell("for i in $(seq -w 1 30); do echo \"case_$i ... ok\"; done; "
                                                      "printf 'test_a ... \\033[32mok\\033[0m\\n"
                                                      "test_b ... \\033[31mFAILED\\033[0m\\n'; "
                                                      "echo 'assertion failed: тест 1 != 2 <&>' >&2; exit 2"));
        auto integration = slow.named("integration").after(lib, app)(flowy::shell("sleep 5"));
        auto package = sh.named("package").after(unit, integration)(flowy::shell("echo packaged"));
        auto docs = sh.after(configure)(flowy::shell("seq 1 500").named("docs"));
        auto counted = lines(docs);
        std::vector<flowy::Result<flowy::CommandResult>> all{configure, lib, app, unit, integration, package, docs};
        int failed = 0;
        for (auto& r : all) {
            try {
                r.get();
            } catch (const flowy::TaskError& e) {
                std::cout << "FAILED " << e.task() << ": " << e.what() << "\n";
                ++failed;
            }
        }
        std::cout << "docs: " << counted.get() << "\n";
        return failed;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: ci_pipeline TRACE\n";
        return 2;
    }
    flowy::LocalWorkflow<Pipeline> w;
    w.workers(3).trace(argv[1]).log([](std::string_view) {});
    w.conf_activity("sh", flowy::run_command);
    w.conf_activity("slow", flowy::run_command, {.timeout = 300ms, .retries = 1});
    w.conf_activity("lines", count_lines);
    int failed = w.run();
    std::cout << failed << " failed\n";
    return 0;
}

// flowy: work on trace files.
//   flowy render TRACE -o OUT.svg|.png|.dot
//   flowy timeline TRACE -o OUT.json
//   flowy summary TRACE [--format text|markdown]
//   flowy junit TRACE -o OUT.xml
//   flowy report TRACE -o OUT.html
//   flowy executions --db CONNINFO
//   flowy export TRACE -o OUT.jsonl
//   flowy export --db CONNINFO ID -o OUT.jsonl
//   flowy --version
// Exit codes: 0 success, 1 the command failed (message on stderr), 2 bad usage.
#include <flowy/postgres.hpp>
#include <flowy/trace.hpp>
#include <flowy/version.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>

namespace {

bool use_color(FILE* f) {
    return isatty(fileno(f)) && !std::getenv("NO_COLOR");
}

void error(const std::string& m) {
    bool c = use_color(stderr);
    std::cerr << (c ? "\x1b[31m" : "") << "flowy: " << m << (c ? "\x1b[0m" : "") << "\n";
}

flowy::Trace load(const std::string& path) {
    flowy::Trace t = flowy::Trace::load(path);
    for (const auto& w : t.warnings()) std::cerr << "flowy: warning: " << w << "\n";
    return t;
}

/// Writes `text` to `path`; false (with a message) if it could not.
bool write_file(const std::string& path, const std::string& text, const char* command) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (f.good()) return true;
    error(std::string(command) + ": cannot write " + path);
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"flowy: draw, time and summarise the traces of flowy runs"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("flowy ") + flowy::version(), "Print the library's version");
    std::string trace, out;

    auto* render = app.add_subcommand("render", "Draw the execution graph (Graphviz): .svg, .png or .dot");
    render->add_option("trace", trace, "A trace file (a run journal, or JSON Lines)")->required();
    render->add_option("-o,--output", out, "Where to write the picture: OUT.svg, OUT.png or OUT.dot")->required();

    auto* timeline = app.add_subcommand("timeline", "Write a Chrome trace-event file (Perfetto, chrome://tracing)");
    timeline->add_option("trace", trace, "A trace file (a run journal, or JSON Lines)")->required();
    timeline->add_option("-o,--output", out, "Where to write the JSON")->required();

    auto* summary = app.add_subcommand("summary", "Print tasks by state, times per activity, the critical path");
    summary->add_option("trace", trace, "A trace file (a run journal, or JSON Lines)")->required();
    std::string format = "text";
    summary->add_option("--format", format, "text (default) or markdown (a CI job's step summary)")
        ->check(CLI::IsMember({"text", "markdown"}));

    auto* junit = app.add_subcommand("junit", "Write a JUnit XML report: one testcase per task (CI test reports)");
    junit->add_option("trace", trace, "A trace file (a run journal, or JSON Lines)")->required();
    junit->add_option("-o,--output", out, "Where to write the XML")->required();

    auto* report = app.add_subcommand("report", "Write one self-contained HTML page: picture, timeline, summary");
    report->add_option("trace", trace, "A trace file (a run journal, or JSON Lines)")->required();
    report->add_option("-o,--output", out, "Where to write the HTML")->required();

    std::string db, id;
    int limit = 100;
    auto* executions = app.add_subcommand("executions", "List the executions in a PostgreSQL engine's database");
    executions->add_option("--db", db, "A libpq connection string (URI or key=value)")->required();
    executions->add_option("-n,--limit", limit, "At most this many, newest first (default 100)");

    auto* exporter = app.add_subcommand(
        "export", "Write a trace (a run journal), or with --db an execution's history, as JSON Lines");
    exporter->add_option("--db", db, "A libpq connection string (URI or key=value): export an execution");
    exporter->add_option("source", id, "A trace file, or with --db the execution's id")->required();
    exporter->add_option("-o,--output", out, "Where to write the trace (JSON Lines)")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    try {
        if (render->parsed()) {
            std::string ext = out.size() >= 4 ? out.substr(out.size() - 4) : "";
            if (ext != ".svg" && ext != ".png" && ext != ".dot") {
                error("render: the output must end in .svg, .png or .dot: " + out);
                return 2;
            }
            load(trace).write_svg(out);
        } else if (timeline->parsed()) {
            if (!write_file(out, load(trace).timeline(), "timeline")) return 1;
        } else if (summary->parsed()) {
            flowy::Trace t = load(trace);
            std::cout << (format == "markdown" ? t.summary_markdown() : t.summary(use_color(stdout)));
        } else if (junit->parsed()) {
            if (!write_file(out, load(trace).junit(), "junit")) return 1;
        } else if (report->parsed()) {
            if (!write_file(out, load(trace).report_html(), "report")) return 1;
        } else if (executions->parsed()) {
            std::printf("%-8s %-24s %-10s %-19s %-22s %s\n", "ID", "WORKFLOW", "STATUS", "STARTED", "DECIDER",
                        "TASKS (queued/running/succeeded/failed)");
            for (const flowy::ExecutionInfo& e : flowy::list_executions(db, limit)) {
                char when[32] = "-";
                if (std::int64_t us = e.started_us ? e.started_us : e.created_us; us > 0) {
                    std::time_t s = static_cast<std::time_t>(us / 1000000);
                    std::tm tm{};
                    localtime_r(&s, &tm);
                    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
                }
                std::printf("%-8s %-24s %-10s %-19s %-22s %lld/%lld/%lld/%lld%s%s\n", flowy::to_string(e.id).c_str(),
                            e.workflow.c_str(), e.status.c_str(), when, e.decider.empty() ? "-" : e.decider.c_str(),
                            static_cast<long long>(e.queued), static_cast<long long>(e.running),
                            static_cast<long long>(e.succeeded), static_cast<long long>(e.failed),
                            e.error.empty() ? "" : "  ", e.error.substr(0, 80).c_str());
            }
        } else if (exporter->parsed()) {
            if (db.empty()) {
                for (const auto& w : flowy::Trace::convert_to_jsonl(id, out))
                    std::cerr << "flowy: warning: " << w << "\n";
            } else if (!write_file(out, flowy::export_trace(db, flowy::ExecutionId::parse(id)), "export")) {
                return 1;
            }
        }
    } catch (const std::exception& e) {
        error(e.what());
        return 1;
    }
    return 0;
}

// flowy: work on trace files.
//   flowy render TRACE -o OUT.svg|.png|.dot
//   flowy timeline TRACE -o OUT.json
//   flowy summary TRACE [--format text|markdown]
//   flowy junit TRACE -o OUT.xml
//   flowy report TRACE -o OUT.html
//   flowy executions --db CONNINFO [--status STATUS] [--since AGE|DATE]
//   flowy cancel --db CONNINFO ID
//   flowy purge --db CONNINFO --older-than AGE
//   flowy export TRACE -o OUT.jsonl
//   flowy export --db CONNINFO ID -o OUT.jsonl
//   flowy --version
// Exit codes: 0 success, 1 the command failed (message on stderr), 2 bad usage.
#include <flowy/postgres.hpp>
#include <flowy/trace.hpp>
#include <flowy/version.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>

namespace {

/// An age: a number and a unit (s, m, h, d, w): "90s", "15m", "12h", "30d".
std::chrono::seconds parse_age(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    static const std::pair<const char*, long long> units[] = {
        {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
    if (digits > 0 && digits <= 9)
        for (auto [unit, seconds] : units)
            if (text.substr(digits) == unit) return std::chrono::seconds(std::stoll(text.substr(0, digits)) * seconds);
    throw CLI::ValidationError("an age is a number and a unit (s, m, h, d or w), as 30d: not '" + text + "'");
}

/// --since: an age ("2h": that long ago) or a local date and time ("2026-12-06",
/// "2026-12-06T14:30"); Unix microseconds.
std::int64_t parse_since(const std::string& text) {
    if (!text.empty() && text.back() >= 'a') {
        auto now =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        return now - std::chrono::duration_cast<std::chrono::microseconds>(parse_age(text)).count();
    }
    std::tm tm{};
    tm.tm_isdst = -1;
    const char* end = strptime(text.c_str(), "%Y-%m-%d", &tm);
    if (end && *end == 'T') end = strptime(end + 1, "%H:%M", &tm);
    if (end && *end == ':') end = strptime(end + 1, "%S", &tm);
    if (!end || *end != '\0')
        throw CLI::ValidationError("--since takes an age (2h, 30d) or a date (2026-12-06, 2026-12-06T14:30): not '" +
                                   text + "'");
    return std::int64_t(std::mktime(&tm)) * 1000000;
}

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
    std::string status, since, older_than;
    executions->add_option("--status", status, "Only those with this status")
        ->check(CLI::IsMember({"pending", "running", "succeeded", "failed", "cancelled"}));
    executions->add_option("--since", since, "Only those created since: an age (2h, 30d) or a date (2026-12-06)");

    auto* cancel = app.add_subcommand("cancel", "Cancel an execution: its running attempts are stopped");
    cancel->add_option("--db", db, "A libpq connection string (URI or key=value)")->required();
    cancel->add_option("id", id, "The execution's id")->required();

    auto* purge = app.add_subcommand("purge", "Remove executions that ended long enough ago, with their history");
    purge->add_option("--db", db, "A libpq connection string (URI or key=value)")->required();
    purge->add_option("--older-than", older_than, "Ended more than this long ago: 90s, 15m, 12h, 30d, 2w")->required();

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
            flowy::ExecutionFilter filter{status, since.empty() ? 0 : parse_since(since)};
            std::printf("%-8s %-24s %-8s %-10s %-19s %-22s %s\n", "ID", "WORKFLOW", "VERSION", "STATUS", "STARTED",
                        "DECIDER", "TASKS (queued/running/succeeded/failed)");
            auto local_time = [](std::int64_t us, const char* format) {
                char text[32] = "-";
                if (us <= 0) return std::string(text);
                std::time_t s = static_cast<std::time_t>(us / 1000000);
                std::tm tm{};
                localtime_r(&s, &tm);
                std::strftime(text, sizeof text, format, &tm);
                return std::string(text);
            };
            for (const flowy::ExecutionInfo& e : flowy::list_executions(db, filter, limit)) {
                std::string when = local_time(e.started_us ? e.started_us : e.created_us, "%Y-%m-%d %H:%M:%S");
                std::string note = e.error.substr(0, 80);
                if (!e.waiting_list.empty())  // queued on a list nobody serves: say so before anything else
                    note = "waiting for a worker of task list " + e.waiting_list + " since " +
                           local_time(e.waiting_since_us, "%H:%M:%S");
                std::printf("%-8s %-24s %-8s %-10s %-19s %-22s %lld/%lld/%lld/%lld%s%s\n",
                            flowy::to_string(e.id).c_str(), e.workflow.c_str(), e.version.c_str(), e.status.c_str(),
                            when.c_str(), e.decider.empty() ? "-" : e.decider.c_str(), static_cast<long long>(e.queued),
                            static_cast<long long>(e.running), static_cast<long long>(e.succeeded),
                            static_cast<long long>(e.failed), note.empty() ? "" : "  ", note.c_str());
            }
        } else if (cancel->parsed()) {
            flowy::ExecutionId e = flowy::ExecutionId::parse(id);
            if (!flowy::cancel_execution(db, e)) {
                error("cancel: execution " + id + " had already ended: nothing to cancel");
                return 1;
            }
            std::cout << "execution " << e << " cancelled\n";
        } else if (purge->parsed()) {
            std::size_t n = flowy::purge_executions(db, parse_age(older_than));
            std::cout << "removed " << n << (n == 1 ? " execution" : " executions") << " that ended more than "
                      << older_than << " ago\n";
        } else if (exporter->parsed()) {
            if (db.empty()) {
                for (const auto& w : flowy::Trace::convert_to_jsonl(id, out))
                    std::cerr << "flowy: warning: " << w << "\n";
            } else if (!write_file(out, flowy::export_trace(db, flowy::ExecutionId::parse(id)), "export")) {
                return 1;
            }
        }
    } catch (const CLI::ValidationError& e) {  // an age or a date that does not read
        error(e.what());
        return 2;
    } catch (const std::exception& e) {
        error(e.what());
        return 1;
    }
    return 0;
}

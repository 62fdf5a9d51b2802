// The other views of a trace: a Chrome trace-event timeline and a text summary.

#include <flowy/trace.hpp>

#include "trace/writer.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowy {
namespace {

std::string fmt_ms(double us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f ms", us / 1000.0);
    return buf;
}

}  // namespace

std::string Trace::timeline() const {
    // One row (tid) per worker: its tasks never overlap, as Perfetto requires; the
    // workflow's runs on a row of their own (tid 0).
    std::string out = "{\"traceEvents\":[\n";
    std::int64_t origin = runs_.empty() ? 0 : runs_.front().started_us;
    bool first = true;
    auto add = [&](const std::string& e) {
        if (!first) out += ",\n";
        first = false;
        out += e;
    };
    auto str = [](std::string_view s) {
        std::string o;
        detail::trace::append_json_string(o, s);
        return o;
    };
    add(R"({"ph":"M","pid":1,"tid":0,"name":"thread_name","args":{"name":"workflow"}})");
    std::map<std::int64_t, std::string> workers;  // index -> where it is ("" on one host)
    for (const TraceTask& t : tasks_)
        if (t.worker >= 0 && !workers.count(t.worker))
            workers[t.worker] = t.host.empty() ? "" : " (" + t.host + " pid " + std::to_string(t.pid) + ")";
    for (const auto& [w, where] : workers)
        add(R"({"ph":"M","pid":1,"tid":)" + std::to_string(w + 1) + R"(,"name":"thread_name","args":{"name":)" +
            str("worker " + std::to_string(w) + where) + "}}");
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const TraceRun& r = runs_[i];
        std::int64_t end = r.ended_us >= 0 ? r.ended_us : r.started_us;
        add(R"({"ph":"X","pid":1,"tid":0,"name":)" + str(r.resumed ? "resumed run" : "run") +
            ",\"ts\":" + std::to_string(r.started_us - origin) + ",\"dur\":" + std::to_string(end - r.started_us) +
            ",\"args\":{\"workflow\":" + str(r.workflow) + ",\"outcome\":" + str(to_string(r.outcome)) + "}}");
    }
    for (const TraceTask& t : tasks_) {
        if (t.run_us() < 0) continue;
        // When it ran, by its worker's stamps: a worker runs one task at a time, so the
        // slices of one row never overlap (time queued on the worker is an argument).
        std::int64_t tid = t.worker >= 0 ? t.worker + 1 : 0;
        std::int64_t queued = t.queue_us();
        add(R"({"ph":"X","pid":1,"tid":)" + std::to_string(tid) + ",\"name\":" +
            str(t.name.empty() ? t.activity : t.name) + ",\"ts\":" + std::to_string(t.run_start() - origin) +
            ",\"dur\":" + std::to_string(t.run_us()) + ",\"args\":{\"id\":" + str(t.last_id) +
            ",\"activity\":" + str(t.activity) + ",\"attempts\":" + std::to_string(t.attempts) +
            (queued >= 0 ? ",\"queued_us\":" + std::to_string(queued) : std::string()) + ",\"outcome\":" +
            str(to_string(t.state)) + (t.short_value.empty() ? std::string() : ",\"value\":" + str(t.short_value)) +
            (t.message.empty() ? std::string() : ",\"error\":" + str(t.message)) + "}}");
    }
    out += "\n]}\n";
    return out;
}

std::string Trace::summary(bool color) const {
    auto paint = [&](const char* code, const std::string& s) {
        return color ? std::string("\x1b[") + code + "m" + s + "\x1b[0m" : s;
    };
    std::string out;
    char line[512];
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const TraceRun& r = runs_[i];
        double wall = r.ended_us >= 0 ? double(r.ended_us - r.started_us) : 0;
        const char* outcome = r.outcome == TraceRun::Outcome::running && !r.trace_stopped.empty()
                                  ? "went on untraced (its trace stopped)"
                                  : to_string(r.outcome);
        std::snprintf(line, sizeof line, "%s %s on %s, %lld workers, %s: %s in %s%s%s\n",
                      r.resumed ? "resumed run of" : "run of", r.workflow.c_str(), r.executor.c_str(),
                      static_cast<long long>(r.workers), r.host.c_str(), outcome, fmt_ms(wall).c_str(),
                      r.outcome == TraceRun::Outcome::finished ? (", result " + r.short_value).c_str() : "",
                      r.message.empty() ? "" : (": " + r.message).c_str());
        out += r.outcome == TraceRun::Outcome::finished ? paint("32", line) : paint("31", line);
    }

    std::map<std::string, int> by_state;
    for (const TraceTask& t : tasks_) ++by_state[to_string(t.state)];
    out += "\ntasks: " + std::to_string(tasks_.size());
    for (const auto& [s, n] : by_state) out += ", " + std::to_string(n) + " " + s;
    if (!ignored_.empty()) out += ", " + std::to_string(ignored_.size()) + " failures ignored";
    // After a resume, a task's state is what the last run that called it recorded: say
    // how many the last run did not call (it failed or was stopped before it got there).
    if (runs_.size() > 1) {
        auto last = static_cast<int>(runs_.size()) - 1;
        auto earlier = std::count_if(tasks_.begin(), tasks_.end(), [&](const TraceTask& t) { return t.run < last; });
        if (earlier > 0)
            out += "\n  (" + std::to_string(earlier) +
                   " of them as an earlier run left them: the last run did not call " +
                   (earlier == 1 ? "it)" : "them)");
    }
    out += "\n\nper activity:          count      total       mean        max\n";
    struct Agg {
        int n = 0;
        double total = 0, max = 0;
    };
    std::map<std::string, Agg> acts;
    std::map<std::int64_t, std::vector<std::pair<std::int64_t, std::int64_t>>> ran;  // per worker: when
    double queued = 0, queued_max = 0;
    const TraceTask* queued_longest = nullptr;
    for (const TraceTask& t : tasks_) {
        if (t.run_us() < 0) continue;
        double d = double(t.run_us());
        Agg& a = acts[t.activity];
        ++a.n;
        a.total += d;
        a.max = std::max(a.max, d);
        if (t.worker >= 0) ran[t.worker].emplace_back(t.run_start(), t.run_end());
        if (double q = double(t.queue_us()); q > 0) {
            queued += q;
            if (q > queued_max) queued_max = q, queued_longest = &t;
        }
    }
    // A worker's busy time is the union of when its tasks ran: never more than the run.
    std::map<std::int64_t, double> busy;
    for (auto& [w, spans] : ran) {
        std::sort(spans.begin(), spans.end());
        std::int64_t until = INT64_MIN;
        double b = 0;
        for (auto [from, to] : spans) {
            from = std::max(from, until);
            if (to > from) b += double(to - from);
            until = std::max(until, to);
        }
        busy[w] = b;
    }
    for (const auto& [name, a] : acts) {
        std::snprintf(line, sizeof line, "  %-18s %7d %10s %10s %10s\n", name.c_str(), a.n, fmt_ms(a.total).c_str(),
                      fmt_ms(a.total / a.n).c_str(), fmt_ms(a.max).c_str());
        out += line;
    }
    double span = 0;
    for (const TraceRun& r : runs_)
        if (r.ended_us >= 0) span += double(r.ended_us - r.started_us);
    if (!busy.empty() && span > 0) {
        out += "\nworker utilisation:\n";
        for (const auto& [w, b] : busy) {
            std::snprintf(line, sizeof line, "  worker %lld: %5.1f%% busy\n", static_cast<long long>(w),
                          std::min(100.0, 100.0 * b / span));
            out += line;
        }
    }
    if (queued_longest) {
        std::snprintf(line, sizeof line, "\nqueued on workers before starting: %s in all, at most %s (%s)\n",
                      fmt_ms(queued).c_str(), fmt_ms(queued_max).c_str(), queued_longest->last_id.c_str());
        out += line;
    }

    std::vector<const TraceTask*> slow;
    for (const TraceTask& t : tasks_)
        if (t.run_us() >= 0) slow.push_back(&t);
    std::sort(slow.begin(), slow.end(),
              [](const TraceTask* a, const TraceTask* b) { return a->run_us() > b->run_us(); });
    if (slow.size() > 10) slow.resize(10);
    out += "\nslowest tasks:\n";
    for (const TraceTask* t : slow) {
        std::snprintf(line, sizeof line, "  %-30s %10s  %s%s\n", t->last_id.c_str(),
                      fmt_ms(double(t->run_us())).c_str(), to_string(t->state),
                      t->name.empty() ? "" : ("  " + t->name).c_str());
        out += line;
    }

    std::vector<const TraceTask*> path = critical_path();
    if (!path.empty()) {
        double total = 0;
        for (const TraceTask* t : path) total += double(std::max<std::int64_t>(0, t->run_us()));
        out += "\ncritical path (" + fmt_ms(total) + " of task time, " + std::to_string(path.size()) + " tasks):\n  ";
        for (std::size_t i = 0; i < path.size(); ++i) {
            if (i) out += " -> ";
            if (i == 6 && path.size() > 8) {
                out += "... -> ";
                i = path.size() - 2;
            }
            out += path[i]->last_id;
            if (!path[i]->name.empty()) out += " (" + path[i]->name + ")";
        }
        out += "\n";
    }
    for (const auto& w : warnings_) out += paint("33", "warning: " + w) + "\n";
    return out;
}

}  // namespace flowy

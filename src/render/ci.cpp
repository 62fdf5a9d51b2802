// The reports a CI job publishes: a JUnit XML file (Jenkins, GitLab, GitHub test
// reporters) and a Markdown summary (GitHub's step summary, GitLab's job page); and
// what they share with the other views (src/render/views.hpp).

#include "render/views.hpp"

#include <flowy/detail/serialize.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

namespace flowy {

namespace detail::views {

std::string printable(std::string_view s) {
    static const char replacement[] = "\xEF\xBF\xBD";  // U+FFFD
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == 0x1b) {  // ESC: drop a CSI sequence (colours, cursor moves) whole
            std::size_t j = i + 1;
            if (j < s.size() && s[j] == '[') {
                ++j;
                while (j < s.size() && static_cast<unsigned char>(s[j]) >= 0x20 &&
                       static_cast<unsigned char>(s[j]) < 0x40)
                    ++j;
                if (j < s.size()) ++j;  // the final byte
            }
            i = j;
            continue;
        }
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                out += replacement;
            else
                out += static_cast<char>(c);
            ++i;
            continue;
        }
        // a UTF-8 sequence: its length, and that each continuation byte is one
        std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        bool ok = n > 0 && i + n <= s.size();
        for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (ok && n == 3) {  // no overlong forms, no surrogates
            auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
        }
        if (ok && n == 4) {
            auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += replacement;
            ++i;
        }
    }
    return out;
}

std::string xml(std::string_view s) {
    std::string out;
    for (char ch : printable(s)) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += ch;
        }
    }
    return out;
}

std::string seconds(std::int64_t us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", double(std::max<std::int64_t>(us, 0)) / 1e6);
    return buf;
}

std::string duration(std::int64_t us) {
    char buf[32];
    if (us < 0) return "";
    if (us < 10'000)
        std::snprintf(buf, sizeof buf, "%.1f ms", double(us) / 1e3);
    else if (us < 1'000'000)
        std::snprintf(buf, sizeof buf, "%.0f ms", double(us) / 1e3);
    else if (us < 120'000'000)
        std::snprintf(buf, sizeof buf, "%.1f s", double(us) / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%lld min %lld s", static_cast<long long>(us / 60'000'000),
                      static_cast<long long>(us / 1'000'000 % 60));
    return buf;
}

std::optional<CommandResult> command_of(const Trace& trace, const TraceTask& task) {
    bool failed = task.state == TraceTask::State::failed;
    const std::string& bytes = failed ? task.detail : task.value;
    if ((!failed && task.state != TraceTask::State::finished) || bytes.empty() || trace.runs().empty())
        return std::nullopt;
    const TraceRun& run =
        trace.runs()[std::min<std::size_t>(std::size_t(std::max(task.run, 0)), trace.runs().size() - 1)];
    auto it = run.activities.find(task.activity);
    if (it == run.activities.end() || it->second.rfind("flowy::CommandResult (", 0) != 0) return std::nullopt;
    try {
        return decode<CommandResult>(bytes);
    } catch (...) {
        return std::nullopt;
    }
}

namespace {
/// "exit 2: assertion failed: 1 != 2": the exit code and the last line of standard error
/// (or else of standard output), at most 200 bytes of it.
std::string command_outcome(const CommandResult& c) {
    for (const std::string* s : {&c.err, &c.out}) {
        std::size_t end = s->find_last_not_of(" \t\r\n");
        if (end == std::string::npos) continue;
        std::size_t begin = s->rfind('\n', end);
        begin = begin == std::string::npos ? 0 : begin + 1;
        std::size_t n = end + 1 - begin;
        if (n > 200) {  // cut on a character's first byte
            n = 200;
            while (n > 0 && (static_cast<unsigned char>((*s)[begin + n]) & 0xC0) == 0x80) --n;
        }
        return c.describe() + ": " + printable(std::string_view(*s).substr(begin, n));
    }
    return c.describe();
}
}  // namespace

std::string failure_line(const Trace& trace, const TraceTask& task) {
    if (failed(task))
        if (auto c = command_of(trace, task)) return command_outcome(*c);
    return message_of(task);
}

std::string message_of(const TraceTask& task) {
    std::string m = task.message;
    if (!task.name.empty() && m.compare(0, task.name.size() + 2, task.name + ": ") == 0)
        m.erase(0, task.name.size() + 2);
    return m;
}

bool is_error(const TraceTask& t) {
    using S = TraceTask::State;
    return t.state == S::timed_out || t.state == S::crashed || t.state == S::interrupted ||
           t.state == S::never_finished;
}

bool is_failure(const TraceTask& t) {
    return t.state == TraceTask::State::failed;
}

TaskIndex index_of(const Trace& trace) {
    TaskIndex index;
    for (std::size_t i = 0; i < trace.tasks().size(); ++i) index.set(trace.tasks()[i].id, i);
    return index;
}

Tally tally(const Trace& trace) {
    Tally n;
    for (const TraceTask& t : trace.tasks()) {
        n.failed += failed(t);
        n.skipped += t.state == TraceTask::State::skipped;
        n.passed += t.state == TraceTask::State::finished;
    }
    for (const TraceRun& r : trace.runs())
        if (r.ended_us >= 0) n.wall_us += r.ended_us - r.started_us;
    return n;
}

}  // namespace detail::views

namespace v = detail::views;

std::vector<const TraceTask*> Trace::critical_path() const {
    // The chain of dependencies (arguments, reads, after(...)) with the most task time.
    detail::TaskIndex by_id = v::index_of(*this);
    std::vector<std::size_t> order(tasks_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return tasks_[a].scheduled_us < tasks_[b].scheduled_us; });
    std::vector<double> length(tasks_.size(), -1);
    std::vector<std::size_t> previous(tasks_.size(), SIZE_MAX);
    std::size_t end = SIZE_MAX;
    for (std::size_t i : order) {
        const TraceTask& t = tasks_[i];
        double own = double(std::max<std::int64_t>(0, t.run_us()));
        length[i] = own;
        auto consider = [&](const std::string& id) {
            std::size_t in = by_id.find(id);
            if (in == detail::TaskIndex::none || in == i || length[in] < 0) return;
            if (length[in] + own > length[i]) {
                length[i] = length[in] + own;
                previous[i] = in;
            }
        };
        for (const auto& a : t.args) consider(a);
        for (const auto& r : t.reads) consider(r);
        for (const auto& a : t.after) consider(a);
        if (end == SIZE_MAX || length[i] >= length[end]) end = i;  // on a tie, the later: it ends the chain
    }
    std::vector<const TraceTask*> path;
    for (std::size_t i = end; i != SIZE_MAX; i = previous[i]) path.push_back(&tasks_[i]);
    std::reverse(path.begin(), path.end());
    return path;
}

namespace {

const char* mark(const TraceTask& t) {
    using S = TraceTask::State;
    switch (t.state) {
        case S::finished:
            return "✅";
        case S::skipped:
            return "⏭️";
        case S::never_finished:
        case S::interrupted:
        case S::scheduled:
        case S::running:
            return "⏸️";
        default:
            return "❌";
    }
}

/// A Markdown table cell: one line, pipes escaped, at most `limit` bytes.
std::string cell(std::string_view s, std::size_t limit = 120) {
    std::string out;
    for (char ch : v::printable(s)) {
        if (ch == '\n' || ch == '\t')
            out += ' ';
        else if (ch == '|')
            out += "\\|";
        else if (ch == '<')
            out += "&lt;";
        else
            out += ch;
    }
    return detail::clip_short(std::move(out), limit);
}

/// What a task's row says happened: its value, why it failed or was skipped.
std::string outcome_of(const Trace& trace, const TraceTask& t, const detail::TaskIndex& by_id) {
    switch (t.state) {
        case TraceTask::State::finished:
            return t.short_value;
        case TraceTask::State::skipped: {
            std::size_t in = by_id.find(t.because);
            return "skipped: " +
                   (in == detail::TaskIndex::none ? t.because : trace.tasks()[in].title() + " (" + t.because + ")") +
                   " failed";
        }
        case TraceTask::State::never_finished:
        case TraceTask::State::interrupted:
            return to_string(t.state);
        default:
            return v::failure_line(trace, t);
    }
}

}  // namespace

std::string Trace::summary_markdown() const {
    std::string out;
    if (runs_.empty()) return "flowy: an empty trace\n";
    const TraceRun& last = runs_.back();
    bool ok = last.outcome == TraceRun::Outcome::finished;
    v::Tally n = v::tally(*this);
    out += std::string("## ") + (ok && n.failed == 0 ? "✅ " : "❌ ") + cell(last.workflow, 80) + ": " +
           to_string(last.outcome) + " in " + v::duration(n.wall_us);
    if (runs_.size() > 1) out += " (" + std::to_string(runs_.size()) + " runs: resumed)";
    out += "\n\n";
    if (!ok && !last.message.empty()) out += "> " + cell(last.message, 400) + "\n\n";
    out += "**" + std::to_string(tasks_.size()) + " steps**: " + std::to_string(n.passed) + " passed, " +
           std::to_string(n.failed) + " failed, " + std::to_string(n.skipped) + " skipped";
    if (std::size_t other = tasks_.size() - n.passed - n.failed - n.skipped)
        out += ", " + std::to_string(other) + " not run";
    out += "\n\n";

    // Failures first, then the rest in the order they were called; a long run is cut.
    constexpr std::size_t max_rows = 200;
    std::vector<const TraceTask*> rows;
    for (const TraceTask& t : tasks_)
        if (v::failed(t)) rows.push_back(&t);
    for (const TraceTask& t : tasks_)
        if (!v::failed(t)) rows.push_back(&t);
    detail::TaskIndex by_id = v::index_of(*this);
    out += "| | step | task | state | time | outcome |\n|---|---|---|---|--:|---|\n";
    for (std::size_t i = 0; i < rows.size() && i < max_rows; ++i) {
        const TraceTask& t = *rows[i];
        out += std::string("| ") + mark(t) + " | " + cell(t.title(), 60) + " | `" + cell(t.last_id, 60) + "` | " +
               to_string(t.state) + " | " + v::duration(t.run_us()) + " | " + cell(outcome_of(*this, t, by_id)) +
               " |\n";
    }
    if (rows.size() > max_rows)
        out += "\n… and " + std::to_string(rows.size() - max_rows) + " more steps (`flowy summary` lists them all)\n";

    std::vector<const TraceTask*> path = critical_path();
    if (!path.empty()) {
        std::int64_t total = 0;
        for (const TraceTask* t : path) total += std::max<std::int64_t>(0, t->run_us());
        out += "\n**Critical path** (" + v::duration(total) + " of step time): ";
        for (std::size_t i = 0; i < path.size(); ++i) {
            if (i) out += " → ";
            if (i == 6 && path.size() > 8) {
                out += "… → ";
                i = path.size() - 2;
            }
            out += cell(path[i]->title(), 60);
        }
        out += "\n";
    }
    std::size_t shown = 0;
    for (const TraceTask* t : rows) {
        if (!v::failed(*t) || t->message.empty() || shown == 20) continue;
        if (shown++ == 0) out += "\n### Failures\n";
        std::string m = v::printable(t->message);
        std::size_t fence = 3;
        while (m.find(std::string(fence, '`')) != std::string::npos) ++fence;
        out += "\n**" + cell(t->title(), 80) + "** (`" + cell(t->last_id, 60) + "`, " + to_string(t->state) + ")\n\n" +
               std::string(fence, '`') + "\n" + m + "\n" + std::string(fence, '`') + "\n";
    }
    for (const auto& w : warnings_) out += "\n> ⚠️ " + cell(w, 400) + "\n";
    return out;
}

std::string Trace::junit() const {
    // One testsuite per run that called steps, one testcase per step, in the structure
    // that Jenkins' JUnit schema (junit-10.xsd) and GitLab's test reports read.
    struct Count {
        std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
        std::int64_t us = 0;
    };
    std::vector<Count> per_run(runs_.size());
    for (const TraceTask& t : tasks_) {
        if (t.run < 0 || std::size_t(t.run) >= runs_.size()) continue;
        Count& c = per_run[std::size_t(t.run)];
        ++c.tests;
        c.failures += v::is_failure(t);
        c.errors += v::is_error(t);
        c.skipped += t.state == TraceTask::State::skipped;
    }
    Count all;
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const TraceRun& r = runs_[i];
        per_run[i].us = r.ended_us >= 0 ? r.ended_us - r.started_us : 0;
        all.tests += per_run[i].tests;
        all.failures += per_run[i].failures;
        all.errors += per_run[i].errors;
        all.skipped += per_run[i].skipped;
        all.us += per_run[i].us;
    }
    auto counts = [](const Count& c) {
        return " tests=\"" + std::to_string(c.tests) + "\" failures=\"" + std::to_string(c.failures) + "\" errors=\"" +
               std::to_string(c.errors) + "\" skipped=\"" + std::to_string(c.skipped) + "\" time=\"" +
               v::seconds(c.us) + "\"";
    };
    std::string name = runs_.empty() ? std::string("flowy") : runs_.front().workflow;
    std::string out =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"" + v::xml(name) + "\"" + counts(all) + ">\n";
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const TraceRun& r = runs_[i];
        if (per_run[i].tests == 0 && i + 1 < runs_.size()) continue;
        std::string stamp = r.time;
        if (!stamp.empty() && stamp.back() == 'Z') stamp.pop_back();  // UTC, in the schema's form
        out += "  <testsuite name=\"" +
               v::xml(r.workflow + (r.resumed ? " (resumed run " + std::to_string(i) + ")" : "")) + "\"" +
               counts(per_run[i]) + (stamp.size() == 19 ? " timestamp=\"" + v::xml(stamp) + "\"" : "") +
               " hostname=\"" + v::xml(r.host.empty() ? "localhost" : r.host) + "\" id=\"" + std::to_string(i) +
               "\">\n";
        for (const TraceTask& t : tasks_) {
            if (t.run != static_cast<int>(i)) continue;
            out += "    <testcase name=\"" + v::xml(t.name.empty() ? t.id : t.name + " (" + t.id + ")") +
                   "\" classname=\"" + v::xml(t.frame.empty() ? t.activity : t.frame + t.activity) + "\" time=\"" +
                   v::seconds(std::max<std::int64_t>(0, t.run_us())) + "\"";
            std::string body;
            std::string line = v::failure_line(*this, t);
            std::string first_line = line.substr(0, line.find('\n'));
            if (t.state == TraceTask::State::skipped) {
                body += "      <skipped message=\"" + v::xml("not run: " + t.because + " failed") + "\"/>\n";
            } else if (v::is_failure(t)) {
                body += "      <failure message=\"" + v::xml(first_line) + "\" type=\"" +
                        v::xml(t.error_type.empty() ? "error" : t.error_type) + "\">" + v::xml(t.message) +
                        "</failure>\n";
            } else if (v::is_error(t)) {
                std::string m = t.message.empty() ? std::string(to_string(t.state)) : t.message;
                body += "      <error message=\"" + v::xml(m.substr(0, m.find('\n'))) + "\" type=\"" +
                        v::xml(to_string(t.state)) + "\">" + v::xml(m) + "</error>\n";
            }
            if (auto c = v::command_of(*this, t)) {
                std::string out_text = "$ " + c->command + "\n" + c->out;
                body += "      <system-out>" + v::xml(out_text) + "</system-out>\n";
                if (!c->err.empty()) body += "      <system-err>" + v::xml(c->err) + "</system-err>\n";
            } else if (t.cached) {
                body += "      <system-out>finished in an earlier run (resumed from the trace)</system-out>\n";
            }
            out += body.empty() ? "/>\n" : ">\n" + body + "    </testcase>\n";
        }
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    return out;
}

}  // namespace flowy

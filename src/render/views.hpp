#pragma once
// What the reports (summary, Markdown, JUnit, HTML) share: text made safe to show,
// times in words, and the command a step ran.

#include <flowy/command.hpp>
#include <flowy/trace.hpp>

#include "common/task_id.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowy::detail::views {

/// `s` made safe for XML, HTML, SVG and terminals: colour and cursor escape sequences
/// removed, other control bytes (but newline and tab) and invalid UTF-8 replaced by U+FFFD.
std::string printable(std::string_view s);

/// `s` escaped for XML text and attribute values (after printable()).
std::string xml(std::string_view s);

/// "0.412" (seconds, for JUnit) and "412 ms" / "3.2 s" (for people).
std::string seconds(std::int64_t us);
std::string duration(std::int64_t us);

/// What the task's command did, when its activity returns a flowy::CommandResult and it
/// finished or failed with one (a non-zero exit); nothing otherwise.
std::optional<CommandResult> command_of(const Trace& trace, const TraceTask& task);

/// The message of a failed task without its step name in front (reports show the name).
std::string message_of(const TraceTask& task);

/// What a line about a failed task says: for a failed command its exit code and the last
/// line it wrote (its command line and output have places of their own), else the
/// message without the step's name.
std::string failure_line(const Trace& trace, const TraceTask& task);

/// Whether the task failed in a way that reports count as an error rather than a
/// failure: a timeout, a crash, a run that ended under it.
bool is_error(const TraceTask& task);
bool is_failure(const TraceTask& task);
/// Either: the task failed.
inline bool failed(const TraceTask& task) {
    return is_failure(task) || is_error(task);
}

/// What the reports' headings count: tasks by outcome, and the runs' wall time.
struct Tally {
    std::size_t passed = 0, failed = 0, skipped = 0;
    std::int64_t wall_us = 0;
};
Tally tally(const Trace& trace);

/// The trace's tasks by id (any attempt's id finds its task): positions in trace.tasks().
TaskIndex index_of(const Trace& trace);

}  // namespace flowy::detail::views

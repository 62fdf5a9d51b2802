#include "trace/trace_recorder.hpp"

#include "trace/history.hpp"

#include <unistd.h>

namespace flowy::detail::trace {

void TraceRecorder::run_started(const RunStart& run) {
    RunPlace here = here_and_now();
    w_.begin("run_started")
        .field("version", std::int64_t(format_version))
        .field("workflow", run.workflow)
        .field("parameters", run.parameters)
        .field("executor", run.executor)
        .field("workers", std::int64_t(run.workers))
        .field("host", here.host)
        .field("pid", std::int64_t(getpid()))
        .field("time", here.time)
        .field_bool("resumed", run.resumed)
        .field_bytes("input", run.input)
        .field_list("activities", run.activities)
        .end();
}

void TraceRecorder::task_scheduled(const TaskId& task, const Scheduled& call) {
    w_.begin("task_scheduled")
        .field_id("id", task)
        .field("activity", task.dependency)
        .field("call", std::int64_t(task.call))
        .field("frame", task.frame)
        .list_begin("args");
    call.args.for_each([this](const TaskId& a) { w_.list_id(a); });
    w_.list_end().list_begin("reads");
    call.reads.for_each([this](const TaskId& r) { w_.list_id(r); });
    w_.list_end();
    if (!call.after.empty()) {
        w_.list_begin("after");
        call.after.for_each([this](const TaskId& a) { w_.list_id(a); });
        w_.list_end();
    }
    if (!call.name.empty()) w_.field("name", call.name);
    w_.end();
}

void TraceRecorder::task_dispatched(const TaskId& task, const WorkerRef& worker, std::string_view args) {
    w_.begin("task_dispatched")
        .field_id("id", task)
        .field("worker", std::int64_t(worker.index))
        .field("pid", std::int64_t(worker.pid))
        .field_hex("args_hash", args_hash(args))
        .end();
}

void TraceRecorder::task_finished(const TaskId& task, const ValueRef& value, const WorkerRef& worker,
                                  const RunTimes& times) {
    w_.begin("task_finished")
        .field_id("id", task)
        .field("worker", std::int64_t(worker.index))
        .field("duration_us", times.ended_us - times.started_us);
    if (!worker.host.empty()) w_.field("host", worker.host).field("pid", std::int64_t(worker.pid));
    if (times.ended_us > 0) w_.field("started_us", times.started_us).field("ended_us", times.ended_us);
    w_.field_bytes("value", value.bytes).field("short", value.short_form()).end();
}

void TraceRecorder::task_cached(const TaskId& task, const ValueRef& value) {
    w_.begin("task_finished")
        .field_id("id", task)
        .field_bool("cached", true)
        .field_bytes("value", value.bytes)
        .field("short", value.short_form())
        .end();
}

void TraceRecorder::failure(std::string_view event, const TaskId& task, const ErrorInfo& error, const WorkerRef& worker,
                            const RunTimes* times) {
    w_.begin(event)
        .field_id("id", task)
        .field("message", error.message)
        .field("type", error.type)
        .field("origin", error.task);
    if (!error.detail.empty()) w_.field_bytes("detail", error.detail);
    if (times && times->ended_us > 0) w_.field("started_us", times->started_us).field("ended_us", times->ended_us);
    if (worker.index >= 0) w_.field("worker", std::int64_t(worker.index));
    if (!worker.host.empty()) w_.field("host", worker.host).field("pid", std::int64_t(worker.pid));
    w_.end();
}

void TraceRecorder::task_skipped(const TaskId& task, const ErrorInfo& because) {
    w_.begin("task_skipped").field_id("id", task).field("input", because.task).field("message", because.message).end();
}

void TraceRecorder::task_retried(const TaskId& failed, const TaskId& next, std::chrono::milliseconds delay) {
    w_.begin("task_retried")
        .field_id("id", failed)
        .field_id("next", next)
        .field("delay_ms", std::int64_t(delay.count()))
        .end();
}

void TraceRecorder::child_started(const TaskId& task) {
    w_.begin("child_started").field_id("id", task).end();
}

void TraceRecorder::child_finished(const TaskId& task, const ValueRef& value) {
    w_.begin("child_finished").field_id("id", task).field_bool("ok", true).end();
    w_.begin("task_finished")
        .field_id("id", task)
        .field_bytes("value", value.bytes)
        .field("short", value.short_form())
        .end();
}

void TraceRecorder::child_failed(const TaskId& task, const ErrorInfo& error) {
    w_.begin("child_finished").field_id("id", task).field_bool("ok", false).end();
    failure("task_failed", task, error, WorkerRef{});
}

void TraceRecorder::restarted(std::string_view frame, int incarnation, const TaskList& args) {
    w_.begin("restarted").field("frame", frame).field("incarnation", std::int64_t(incarnation)).list_begin("args");
    args.for_each([this](const TaskId& a) { w_.list_id(a); });
    w_.list_end().end();
}

void TraceRecorder::failure_ignored(const TaskId& task, std::string_view message) {
    w_.begin("ignored_failure").field_id("id", task).field("message", message).end();
}

void TraceRecorder::run_finished(const ValueRef& value, const TaskId* from, const TaskList& reads) {
    w_.begin("run_finished").field_bytes("value", value.bytes).field("short", value.short_form());
    if (from) {
        w_.field_id("from", *from);
    } else {
        w_.field("from", std::string_view()).list_begin("reads");
        reads.for_each([this](const TaskId& r) { w_.list_id(r); });
        w_.list_end();
    }
    w_.end();
}

void TraceRecorder::run_failed(const ErrorInfo& error, bool cancelled) {
    w_.begin("run_failed")
        .field("message", error.message)
        .field("type", error.type)
        .field("origin", error.task)
        .field_bool("cancelled", cancelled)
        .end();
}

}  // namespace flowy::detail::trace

#pragma once
/// \file Errors raised by flowy runs.

#include <memory>
#include <stdexcept>
#include <string>

namespace flowy {

/// A task (or the workflow body) failed; `what()` is the failure's message.
class TaskError : public std::runtime_error {
public:
    /// A failure with its message, the id of the task that failed and the exception type name.
    explicit TaskError(const std::string& message, std::string task = {}, std::string type = {});

    /// The id of the task that failed (`<dependency>-<call index>-<attempt>`), empty for the body.
    const std::string& task() const noexcept;
    /// The type name of the original exception, empty where there was none (a crash).
    const std::string& type() const noexcept;

private:
    std::shared_ptr<const std::pair<std::string, std::string>> where_;  // task, type
};

/// Every attempt of a task ran past its timeout.
class TaskTimedout : public TaskError {
public:
    using TaskError::TaskError;
};

/// The worker process running a task died (a signal or an exit); `what()` names the cause.
class WorkerCrashed : public TaskError {
public:
    using TaskError::TaskError;
};

/// The run was stopped by SIGINT or SIGTERM: its workers were stopped, nothing is left behind.
class Cancelled : public TaskError {
public:
    using TaskError::TaskError;
};

/// The configuration does not fit the workflow; raised before any task runs.
class ConfigError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

}  // namespace flowy

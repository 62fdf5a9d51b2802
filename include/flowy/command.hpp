#pragma once
/// \file Command activities: workflow steps that are programs.
///
///     struct Smoke {
///         flowy::Activity<flowy::CommandResult(flowy::Command)> sh{"sh"};
///         flowy::Result<flowy::CommandResult> operator()() { return sh(flowy::shell("make test")); }
///     };
///     w.conf_activity("sh", flowy::run_command);

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

namespace flowy {

/// A program to run: what, where, with what environment and input.
struct Command {
    std::string program;                     ///< a path, or a name looked up on PATH
    std::vector<std::string> args;           ///< arguments (not including the program)
    std::string cwd;                         ///< working directory; empty: the worker's
    std::map<std::string, std::string> env;  ///< added to (or replacing in) the inherited environment
    std::optional<std::string> input;        ///< written to its standard input (else /dev/null)
    bool expect_failure = false;             ///< a non-zero exit is a result, not an error
    std::string name;                        ///< the step's display name; empty: see step_name()

    /// The command line, for messages: program and arguments, quoted where needed.
    std::string line() const;
    /// How pictures, reports and messages name it: `name`, or else the program (without
    /// its directory) and its first arguments (`ctest -j2 --output-on-failure`), a shell
    /// script's first line for `shell(...)`; at most 48 bytes. A call that takes a
    /// Command as an argument is named by it, unless the call was named.
    std::string step_name() const;
    /// This command, named: `flowy::shell("make test").named("unit tests")`.
    Command named(std::string n) && {
        name = std::move(n);
        return std::move(*this);
    }
    Command named(std::string n) const& {
        Command c = *this;
        c.name = std::move(n);
        return c;
    }

    template <class Archive>
    void serialize(Archive& a) {
        a(program, args, cwd, env, input, expect_failure, name);
    }
};

/// What a command did. Each stream keeps at most `output_limit` bytes: the first and
/// the last half of it, with a line saying how much was cut in between.
struct CommandResult {
    static constexpr std::size_t output_limit = std::size_t(1) << 20;  ///< 1 MiB per stream

    std::string command;          ///< the command line
    int exit_code = 0;            ///< the exit status, or -N when killed by signal N
    std::string out, err;         ///< standard output and error (bounded)
    std::uint64_t out_bytes = 0;  ///< how much it wrote in all
    std::uint64_t err_bytes = 0;
    std::int64_t duration_us = 0;
    std::string name;  ///< the command's step_name()

    /// The short form in traces and pictures: "exit N" (or "killed by signal N").
    std::string describe() const;

    template <class Archive>
    void serialize(Archive& a) {
        a(command, exit_code, out, err, out_bytes, err_bytes, duration_us, name);
    }
};

/// A command that exited with a non-zero status (unless it expected to): `what()` leads
/// with the exit code, then the command line and the last lines of its standard error
/// (`exit 2: `/bin/sh -c 'make test'`; the last lines...`); in a run, the TaskError's
/// message puts the step's name in front (`unit tests: exit 2: ...`).
class CommandFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
    CommandFailed(const std::string& what, CommandResult result)
        : std::runtime_error(what), result_(std::make_shared<const CommandResult>(std::move(result))) {}

    /// What the command did: its exit code and both streams in full (bounded as in a
    /// CommandResult); null when it was thrown without one. A run records it with the
    /// failure, so the trace's reports (`flowy junit`, `flowy report`) show a failed
    /// command's whole output.
    const CommandResult* result() const noexcept { return result_.get(); }

private:
    std::shared_ptr<const CommandResult> result_;  // shared: copying an exception must not throw
};

/// Runs `c` (Boost.Process) and waits for it, capturing both streams without deadlock.
/// Throws CommandFailed on a non-zero exit (unless `c.expect_failure`), and
/// std::runtime_error when the program cannot be started. Configure it as an activity:
/// `w.conf_activity("sh", flowy::run_command)`.
CommandResult run_command(Command c);

/// `/bin/sh -c script`.
Command shell(std::string script);

/// `program args...`.
Command command(std::string program, std::vector<std::string> args = {});

}  // namespace flowy

// Command activities with Boost.Process v2: both output streams are read at once
// (no deadlock however much a program writes), each kept to a bounded head and tail.
// The program inherits the worker's process group, so a timeout that kills the
// worker's group kills the program and all it started.

#include <flowy/command.hpp>
#include <flowy/detail/serialize.hpp>

// Boost 1.81's header-only mode of Process v2 lacks process_environment::on_setup:
// build it in separate-compilation mode, with its sources compiled here, once.
#define BOOST_PROCESS_V2_SEPARATE_COMPILATION 1

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <boost/asio/write.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/src.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>

extern char** environ;

namespace flowy {

namespace {

namespace asio = boost::asio;
namespace bp2 = boost::process::v2;

std::string quote(const std::string& s) {
    if (!s.empty() && s.find_first_of(" \t\n'\"\\$`|&;<>()*?[]{}!#~") == std::string::npos) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// Keeps the first and the last `limit / 2` bytes of a stream.
class Capture {
public:
    void add(const char* p, std::size_t n) {
        total_ += n;
        std::size_t half = CommandResult::output_limit / 2;
        if (head_.size() < half) {
            std::size_t k = std::min(n, half - head_.size());
            head_.append(p, k);
            p += k;
            n -= k;
        }
        if (n == 0) return;
        tail_.append(p, n);
        if (tail_.size() > 2 * half) tail_.erase(0, tail_.size() - half);
    }
    std::string text() const {
        std::size_t half = CommandResult::output_limit / 2;
        std::string tail = tail_.size() > half ? tail_.substr(tail_.size() - half) : tail_;
        std::uint64_t cut = total_ - head_.size() - tail.size();
        if (cut == 0) return head_ + tail;
        return head_ + "\n[... flowy cut " + std::to_string(cut) + " bytes of output here ...]\n" + tail;
    }
    std::uint64_t total() const { return total_; }

private:
    std::string head_, tail_;
    std::uint64_t total_ = 0;
};

void read_all(asio::readable_pipe& pipe, std::array<char, 65536>& buf, Capture& into) {
    pipe.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
        into.add(buf.data(), n);
        if (!ec) read_all(pipe, buf, into);
    });
}

std::string last_lines(const std::string& text, int lines) {
    std::size_t end = text.size();
    while (end > 0 && text[end - 1] == '\n') --end;
    std::size_t at = end;
    for (int i = 0; i < lines && at > 0; ++i) {
        at = text.rfind('\n', at - 1);
        if (at == std::string::npos) {
            at = 0;
            break;
        }
    }
    return text.substr(at == 0 ? 0 : at + 1, end - (at == 0 ? 0 : at + 1));
}

}  // namespace

std::string Command::line() const {
    std::string out = quote(program);
    for (const auto& a : args) out += " " + quote(a);
    return out;
}

std::string Command::step_name() const {
    if (!name.empty()) return name;
    constexpr std::size_t limit = 48;
    std::string out;
    if (program == "/bin/sh" || program == "sh" || program == "/bin/bash" || program == "bash") {
        // `sh -c script`: the script says what it does
        if (args.size() >= 2 && args[0] == "-c") {
            out = args[1].substr(0, args[1].find('\n'));
            return detail::clip_short(out, limit);
        }
    }
    out = program.substr(program.rfind('/') == std::string::npos ? 0 : program.rfind('/') + 1);
    for (std::size_t i = 0; i < args.size() && out.size() < limit; ++i) out += " " + quote(args[i]);
    return detail::clip_short(out, limit);
}

std::string CommandResult::describe() const {
    return exit_code >= 0 ? "exit " + std::to_string(exit_code) : "killed by signal " + std::to_string(-exit_code);
}

Command shell(std::string script) {
    return Command{"/bin/sh", {"-c", std::move(script)}, {}, {}, {}, false, {}};
}

Command command(std::string program, std::vector<std::string> args) {
    return Command{std::move(program), std::move(args), {}, {}, {}, false, {}};
}

namespace {
/// In the command's process, before exec: SIGPIPE and SIGXFSZ as programs expect them
/// (a program that ignores SIGPIPE would otherwise pass that on: `yes | head` would
/// report write errors instead of ending quietly), as Python's subprocess does.
struct DefaultSignals {
    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher&, const bp2::filesystem::path&, const char* const*&) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGXFSZ, SIG_DFL);
        return {};
    }
};
}  // namespace

CommandResult run_command(Command c) {
    CommandResult r;
    r.command = c.line();
    r.name = c.step_name();
    auto t0 = std::chrono::steady_clock::now();

    bp2::filesystem::path exe = c.program;
    if (c.program.find('/') == std::string::npos) {
        exe = bp2::environment::find_executable(c.program);
        if (exe.empty())
            throw std::runtime_error("cannot start `" + r.command + "`: '" + c.program + "' is not on PATH");
    }
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        std::string key = kv.substr(0, kv.find('='));
        if (!c.env.count(key)) env.push_back(std::move(kv));
    }
    for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);

    asio::io_context ctx;
    asio::readable_pipe out(ctx), err(ctx);
    asio::writable_pipe in(ctx);
    Capture out_text, err_text;
    std::array<char, 65536> out_buf, err_buf;
    int native = 0;  // the raw wait status: WIFSIGNALED needs it
    {
        std::fflush(nullptr);  // Boost.Process calls exit() in the child if exec fails
        std::optional<bp2::process> proc;
        try {
            bp2::process_start_dir dir{c.cwd.empty() ? bp2::filesystem::current_path() : bp2::filesystem::path(c.cwd)};
            proc.emplace(ctx, exe, c.args,
                         c.input ? bp2::process_stdio{in, out, err} : bp2::process_stdio{nullptr, out, err}, dir,
                         bp2::process_environment{env}, DefaultSignals{});
        } catch (const std::exception& e) {
            throw std::runtime_error("cannot start `" + r.command + "`: " + e.what());
        }
        if (c.input) {
            asio::async_write(in, asio::buffer(*c.input), [&](boost::system::error_code, std::size_t) { in.close(); });
        }
        read_all(out, out_buf, out_text);
        read_all(err, err_buf, err_text);
        proc->async_wait([](boost::system::error_code, int) {});
        ctx.run();
        native = proc->native_exit_code();
    }
    r.duration_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    r.out = out_text.text();
    r.err = err_text.text();
    r.out_bytes = out_text.total();
    r.err_bytes = err_text.total();
    r.exit_code = WIFSIGNALED(native) ? -WTERMSIG(native) : WEXITSTATUS(native);
    if (r.exit_code != 0 && !c.expect_failure) {
        // the engine puts the step's name in front (a command names its step)
        std::string out_tail = last_lines(r.out, 10), err_tail = last_lines(r.err, 10);
        std::string m = r.describe() + ": `" + r.command + "`";
        if (out_tail.empty() && err_tail.empty()) m += "; it wrote nothing";
        if (!out_tail.empty()) m += "; the last lines of its standard output:\n" + out_tail;
        if (!err_tail.empty())
            m += std::string(out_tail.empty() ? ";" : "\nand") + " the last lines of its standard error:\n" + err_tail;
        throw CommandFailed(m);
    }
    return r;
}

}  // namespace flowy

// Command activities, started with posix_spawn (glibc's is a vfork-style clone: no copy
// of the worker's page tables, however large the program is) and read with poll: both
// output streams are read at once (no deadlock however much a program writes), each kept
// to a bounded head and tail. The program inherits the worker's process group, so a
// timeout that kills the worker's group kills the program and all it started; it gets
// no descriptor of the worker's but its three standard streams.

#include <flowy/command.hpp>
#include <flowy/detail/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace flowy {

namespace {

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

/// A descriptor closed when it goes out of scope.
struct Fd {
    int fd = -1;
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

/// A pipe whose both ends are closed on exec (the child gets its end by dup2).
void make_pipe(Fd& read_end, Fd& write_end) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
    read_end.fd = p[0];
    write_end.fd = p[1];
}

/// posix_spawn's file actions and attributes, destroyed when done.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attributes);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

/// Blocks SIGPIPE in this thread while input is written to a program that may have
/// closed its end (EPIPE, not a signal that kills the worker), and takes back a SIGPIPE
/// that the writes raised.
class NoSigpipe {
public:
    NoSigpipe() {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe, &old_);
    }
    ~NoSigpipe() {
        if (raised_ && !was_pending_) {
            sigset_t pipe;
            sigemptyset(&pipe);
            sigaddset(&pipe, SIGPIPE);
            timespec zero{0, 0};
            while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;
    void raised() { raised_ = true; }

private:
    sigset_t old_;
    bool was_pending_ = false, raised_ = false;
};

}  // namespace

CommandResult run_command(Command c) {
    CommandResult r;
    r.command = c.line();
    r.name = c.step_name();
    auto t0 = std::chrono::steady_clock::now();
    auto cannot_start = [&](const std::string& why) {
        return std::runtime_error("cannot start `" + r.command + "`: " + why);
    };

    if (!c.cwd.empty()) {
        struct stat st {};
        if (::stat(c.cwd.c_str(), &st) != 0)
            throw cannot_start("its working directory " + c.cwd + ": " + std::strerror(errno));
        if (!S_ISDIR(st.st_mode)) throw cannot_start("its working directory " + c.cwd + " is not a directory");
    }
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv = *e;
        if (!c.env.count(std::string(kv.substr(0, kv.find('='))))) env.emplace_back(kv);
    }
    for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (auto& kv : env) envp.push_back(kv.data());
    envp.push_back(nullptr);
    argv.push_back(c.program.data());
    for (auto& a : c.args) argv.push_back(a.data());
    argv.push_back(nullptr);

    Fd out_r, out_w, err_r, err_w, in_r, in_w;
    make_pipe(out_r, out_w);
    make_pipe(err_r, err_w);
    if (c.input) make_pipe(in_r, in_w);
    pid_t pid = -1;
    {
        SpawnSetup s;
        if (c.input)
            posix_spawn_file_actions_adddup2(&s.actions, in_r.fd, STDIN_FILENO);
        else
            posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&s.actions, out_w.fd, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&s.actions, err_w.fd, STDERR_FILENO);
        if (!c.cwd.empty()) posix_spawn_file_actions_addchdir_np(&s.actions, c.cwd.c_str());
        posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);  // nothing of the worker's leaks in
        // SIGPIPE and SIGXFSZ as programs expect them (a program that ignores SIGPIPE would
        // otherwise pass that on: `yes | head` would report write errors instead of ending
        // quietly), as Python's subprocess does; and no signal blocked.
        sigset_t defaults, none;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGXFSZ);
        sigemptyset(&none);
        posix_spawnattr_setsigdefault(&s.attributes, &defaults);
        posix_spawnattr_setsigmask(&s.attributes, &none);
        posix_spawnattr_setflags(&s.attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        bool search = c.program.find('/') == std::string::npos;
        int rc = search ? posix_spawnp(&pid, c.program.c_str(), &s.actions, &s.attributes, argv.data(), envp.data())
                        : posix_spawn(&pid, c.program.c_str(), &s.actions, &s.attributes, argv.data(), envp.data());
        if (rc != 0) {
            if (search && rc == ENOENT) throw cannot_start("'" + c.program + "' is not on PATH");
            throw cannot_start(std::strerror(rc));
        }
    }
    out_w.reset();
    err_w.reset();
    in_r.reset();

    // Both streams at once, and the input as the program takes it.
    Capture out_text, err_text;
    std::array<char, 65536> buf;
    std::size_t written = 0;
    std::optional<NoSigpipe> no_sigpipe;
    if (c.input) {
        no_sigpipe.emplace();
        ::fcntl(in_w.fd, F_SETFL, ::fcntl(in_w.fd, F_GETFL) | O_NONBLOCK);
        if (c.input->empty()) in_w.reset();
    }
    for (;;) {
        pollfd fds[3];
        nfds_t n = 0;
        if (out_r.fd >= 0) fds[n++] = {out_r.fd, POLLIN, 0};
        if (err_r.fd >= 0) fds[n++] = {err_r.fd, POLLIN, 0};
        if (in_w.fd >= 0) fds[n++] = {in_w.fd, POLLOUT, 0};
        if (n == 0) break;
        if (::poll(fds, n, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (!fds[i].revents) continue;
            if (fds[i].fd == in_w.fd) {
                ssize_t k = ::write(in_w.fd, c.input->data() + written, c.input->size() - written);
                if (k > 0) written += static_cast<std::size_t>(k);
                if (k < 0 && errno == EPIPE) no_sigpipe->raised();
                if ((k < 0 && errno != EAGAIN && errno != EINTR) || written == c.input->size()) in_w.reset();
                continue;
            }
            Fd& from = fds[i].fd == out_r.fd ? out_r : err_r;
            ssize_t k = ::read(from.fd, buf.data(), buf.size());
            if (k > 0)
                (&from == &out_r ? out_text : err_text).add(buf.data(), static_cast<std::size_t>(k));
            else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                from.reset();
        }
    }
    in_w.reset();
    no_sigpipe.reset();
    int native = 0;  // the raw wait status: WIFSIGNALED needs it
    while (::waitpid(pid, &native, 0) < 0 && errno == EINTR) {
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
        throw CommandFailed(m, std::move(r));
    }
    return r;
}

}  // namespace flowy

#include "trace/writer.hpp"

#include "common/clock.hpp"
#include "trace/journal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

namespace flowy::detail::trace {

std::int64_t now_us() {
    return monotonic_us();
}

RunPlace here_and_now() {
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return {host, when};
}

namespace {
const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// The file grows by its size so far, from 64 KiB up to steps of 1 MiB: a short run
// writes few zeros (a W2 run of 1,000 steps takes 75 KB), a long one grows rarely.
constexpr std::size_t first_step = std::size_t(64) << 10;
constexpr std::size_t grow_step = std::size_t(1) << 20;

/// Writes the base64 of `in` at `out` ((size + 2) / 3 * 4 bytes); returns the end.
char* encode_base64(char* out, std::string_view in) {
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
        *out++ = b64[v >> 18];
        *out++ = b64[(v >> 12) & 63];
        *out++ = b64[(v >> 6) & 63];
        *out++ = b64[v & 63];
    }
    if (i < in.size()) {
        std::uint32_t v = std::uint8_t(in[i]) << 16;
        if (i + 1 < in.size()) v |= std::uint8_t(in[i + 1]) << 8;
        *out++ = b64[v >> 18];
        *out++ = b64[(v >> 12) & 63];
        *out++ = i + 1 < in.size() ? b64[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return out;
}
}  // namespace

void append_base64(std::string& out, std::string_view bytes) {
    std::size_t at = out.size();
    out.resize(at + (bytes.size() + 2) / 3 * 4);
    encode_base64(out.data() + at, bytes);
}

bool unbase64(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4) return false;
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        int a = val(in[i]), b = val(in[i + 1]);
        if (a < 0 || b < 0) return false;
        bool last = i + 4 == in.size();
        int c = in[i + 2] == '=' && last ? -2 : val(in[i + 2]);
        int d = in[i + 3] == '=' && last ? -2 : val(in[i + 3]);
        if (c == -1 || d == -1 || (c == -2 && d != -2)) return false;
        out += char((a << 2) | (b >> 4));
        if (c >= 0) out += char(((b & 15) << 4) | (c >> 2));
        if (d >= 0) out += char(((c & 3) << 6) | d);
    }
    return true;
}

char* put_json_string(char* p, std::string_view s) {
    *p++ = '"';
    for (unsigned char c : s) {
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = char(c);
            continue;
        }
        *p++ = '\\';
        switch (c) {
            case '"':
            case '\\':
                *p++ = char(c);
                break;
            case '\n':
                *p++ = 'n';
                break;
            case '\r':
                *p++ = 'r';
                break;
            case '\t':
                *p++ = 't';
                break;
            default:
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = "0123456789abcdef"[c >> 4];
                *p++ = "0123456789abcdef"[c & 15];
        }
    }
    *p++ = '"';
    return p;
}

void append_json_string(std::string& out, std::string_view s) {
    std::size_t at = out.size();
    out.resize(at + s.size() * 6 + 2);
    out.resize(static_cast<std::size_t>(put_json_string(out.data() + at, s) - out.data()));
}

// ---- the SIGBUS guard ----

struct Writer::Guard {
    std::atomic<char*> base{nullptr};
    std::atomic<std::size_t> len{0};
    std::atomic<bool> cut_short{false};
    std::atomic<bool> used{false};
    std::atomic<int> fd{-1};
};
const std::atomic<bool> Writer::never{false};

namespace {
Writer::Guard guards[64];
std::mutex guard_mutex;
int guards_in_use = 0;
struct sigaction previous_sigbus {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
    auto* at = static_cast<char*>(info->si_addr);
    for (auto& g : guards) {
        char* base = g.base.load(std::memory_order_acquire);
        std::size_t len = g.len.load(std::memory_order_acquire);
        if (!base || at < base || at >= base + len) continue;
        // Our mapping, past the end of a file cut short: anonymous memory in its place
        // from this page on (what is written there is lost); the writer stops at its
        // next event.
        auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
        char* from = reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(at) & ~(page - 1));
        void* p = mmap(from, static_cast<std::size_t>(base + len - from), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED) {
            g.cut_short.store(true, std::memory_order_release);
            return;
        }
        break;
    }
    // Not ours: as the program would have had it.
    if ((previous_sigbus.sa_flags & SA_SIGINFO) && previous_sigbus.sa_sigaction) {
        previous_sigbus.sa_sigaction(sig, info, context);
    } else if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
        previous_sigbus.sa_handler(sig);
    } else {
        signal(SIGBUS, SIG_DFL);  // the faulting access runs again and ends the process as before
    }
}

Writer::Guard* take_guard() {
    std::lock_guard<std::mutex> l(guard_mutex);
    for (auto& g : guards) {
        if (g.used.load()) continue;
        g.used = true;
        g.cut_short = false;
        if (guards_in_use++ == 0) {
            struct sigaction sa {};
            sa.sa_sigaction = on_sigbus;
            sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGBUS, &sa, &previous_sigbus);
        }
        return &g;
    }
    return nullptr;  // 64 traces written at once: the 65th goes unguarded
}

void give_back(Writer::Guard* g) {
    if (!g) return;
    std::lock_guard<std::mutex> l(guard_mutex);
    g->len.store(0, std::memory_order_release);
    g->base.store(nullptr, std::memory_order_release);
    g->fd = -1;
    g->used = false;
    if (--guards_in_use == 0) sigaction(SIGBUS, &previous_sigbus, nullptr);
}

}  // namespace

void leave_traces_in_child() noexcept {
    if (!guards_in_use) return;
    for (auto& g : guards) {
        if (!g.used.load()) continue;
        if (int fd = g.fd.load(); fd >= 0) ::close(fd);
        if (char* base = g.base.load()) munmap(base, g.len.load());
        g.base = nullptr;
        g.len = 0;
        g.fd = -1;
        g.used = false;  // the parent's writers are never used here (a worker ends with _exit)
    }
    guards_in_use = 0;
    sigaction(SIGBUS, &previous_sigbus, nullptr);
}

namespace {
/// The process that holds the lock of a trace: the pid in a journal's header, or that of
/// the last run_started line of JSON Lines,
/// looked for backwards a MiB at a time (past the zeros the writer keeps ahead), in
/// the last 16 MiB.
std::string holder_of(int fd) {
    unsigned char h[journal::header_size];
    if (::pread(fd, h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
        journal::is_journal(std::string_view(reinterpret_cast<const char*>(h), sizeof h))) {
        // a journal's header names the process that opened it last
        std::uint32_t pid = h[12] | (h[13] << 8) | (h[14] << 16) | (std::uint32_t(h[15]) << 24);
        return "process " + std::to_string(pid);
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) return "another process";
    constexpr std::size_t block = 1 << 20, overlap = 4096;
    std::string buf;
    auto end = static_cast<std::size_t>(st.st_size);
    for (int round = 0; round < 16 && end > 0; ++round) {
        std::size_t from = end > block ? end - block : 0;
        std::size_t n = std::min(end + overlap, static_cast<std::size_t>(st.st_size)) - from;
        buf.assign(n, '\0');
        if (::pread(fd, buf.data(), n, static_cast<off_t>(from)) != static_cast<ssize_t>(n)) break;
        std::size_t at = buf.rfind("\"event\":\"run_started\"");
        if (at != std::string::npos) {
            std::size_t pid = buf.find("\"pid\":", at);
            std::size_t eol = buf.find('\n', at);
            if (pid != std::string::npos && pid < eol)
                return "process " + std::to_string(std::strtoll(buf.c_str() + pid + 6, nullptr, 10));
            break;
        }
        end = from;
    }
    return "another process";
}
}  // namespace

Encoding encoding_of_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Encoding::journal;
    char head[4096];
    ssize_t n = ::read(fd, head, sizeof head);
    ::close(fd);
    std::string_view text(head, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (journal::is_journal(text)) return Encoding::journal;
    return text.find_first_not_of('\0') == std::string_view::npos ? Encoding::journal : Encoding::jsonl;
}

Writer::Writer(const std::string& path, bool append, std::function<void(const std::string&)> warn, Encoding encoding)
    : path_(path), warn_(std::move(warn)), encoding_(encoding) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        int e = errno;
        fd_ = -1;
        fail(std::string("cannot open: ") + std::strerror(e));
        return;
    }
    // One writer at a time: a lock on the open file description (not dropped when this
    // process opens and closes the file elsewhere, as a POSIX record lock would be).
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd_, F_OFD_SETLK, &lock) != 0) {
        int e = errno;
        std::string who = e == EAGAIN || e == EACCES ? holder_of(fd_) : std::string();
        ::close(fd_);  // closed first: fail() would cut the file, which is not ours to cut
        fd_ = -1;
        fail(who.empty() ? std::string("cannot lock: ") + std::strerror(e) : "another run (" + who + ") is writing it");
        return;
    }
    if (!append && ftruncate(fd_, 0) != 0) {
        int e = errno;
        fail(std::string("cannot empty it: ") + std::strerror(e));
        return;
    }
    guard_ = take_guard();
    if (guard_) {
        cut_short_ = &guard_->cut_short;
        guard_->fd = fd_;
    }
    if (append && encoding == Encoding::journal) {
        // After the last complete record; a file without a header starts again.
        if (!journal::end_of(fd_, size_)) {
            std::string why = std::strerror(errno);
            ::close(fd_);  // closed first: fail() would cut the file
            fd_ = -1;
            fail("cannot read: " + why);
            return;
        }
    } else if (append) {
        // Continue after the last complete line; a torn line or zeros after it are
        // dropped. Read backwards from the end, a block at a time, up to a newline.
        struct stat st {};
        fstat(fd_, &st);
        auto at = static_cast<std::size_t>(st.st_size);
        char block[1 << 16];
        while (at > 0) {
            std::size_t n = std::min(at, sizeof block);
            ssize_t r = ::pread(fd_, block, n, static_cast<off_t>(at - n));
            if (r != static_cast<ssize_t>(n)) {
                std::string why = r < 0 ? std::strerror(errno) : "it changed while read";
                ::close(fd_);  // closed first: fail() would cut the file
                fd_ = -1;
                fail("cannot read: " + why);
                return;
            }
            if (const void* nl = memrchr(block, '\n', n)) {
                size_ = at - n + static_cast<std::size_t>(static_cast<const char*>(nl) - block) + 1;
                break;
            }
            at -= n;
        }
    }
    if (!reserve(first_step - stop_room)) return;  // the first step: 64 KiB, its last 512 bytes kept
    if (encoding == Encoding::journal) {
        std::string head = journal::header(static_cast<std::uint32_t>(getpid()));
        if (size_ == 0) {
            store(head.data(), head.size());
        } else {
            std::memcpy(map_ + 12, head.data() + 12, 4);  // this process writes it now
        }
    }
}

Writer::~Writer() {
    if (fd_ >= 0 && cut_short_->load()) lost();
    close_file();
}

void Writer::close_file() {
    if (guard_) {
        guard_->len.store(0, std::memory_order_release);
        guard_->base.store(nullptr, std::memory_order_release);
    }
    if (map_) munmap(map_, capacity_);
    map_ = nullptr;
    if (fd_ >= 0) {
        // The zeros ahead of the last line go; a file cut short from outside is left as it is.
        if (!cut_short_->load() && ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        }
        ::close(fd_);
    }
    fd_ = -1;
    give_back(guard_);
    guard_ = nullptr;
    cut_short_ = &never;
}

void Writer::fail(const std::string& why) {
    if (warn_) warn_("trace " + path_ + ": " + why + "; tracing stopped, the run goes on");
    close_file();
}

void Writer::stopped(const std::string& why) {
    // The last line, in the room kept for it (its blocks are the file's already): readers
    // then know the run went on past the trace's end, and why.
    // Built as every record or line is (the event being written when growing failed is
    // lost anyway), and written with pwrite: the mapping may be what failed.
    std::string_view reason = std::string_view(why).substr(0, 200);
    std::string record;
    if (encoding_ == Encoding::journal) {
        record = journal::stopped_record(now_us(), reason);
    } else {
        begin("trace_stopped").field("reason", reason);
        put('}');
        put('\n');
        record.assign(buf_.data(), static_cast<std::size_t>(at_ - buf_.data()));
    }
    std::size_t n = record.size();
    std::size_t empty = encoding_ == Encoding::journal ? journal::header_size : 0;
    if (size_ <= empty || n > stop_room || size_ + n > capacity_) return;  // no run to annotate, or no room
    if (::pwrite(fd_, record.data(), n, static_cast<off_t>(size_)) == static_cast<ssize_t>(n)) size_ += n;
}

void Writer::lost() {
    fail("the file was cut short by another program while this run wrote it (its last events are lost)");
}

bool Writer::reserve(std::size_t n) {
    if (fd_ < 0) return false;
    if (size_ + n + stop_room <= capacity_) return true;
    // Grown a step at a time, by writing zeros: the blocks are reserved (a full disk is
    // an error here, never a SIGBUS in the mapping) and the pages are in the page cache
    // before the mapping writes them. On ext4 that makes the mapping's faults cheap,
    // where a fallocated (unwritten) block costs a journalled conversion per page.
    static const char zeros[1 << 16] = {};
    std::size_t step = std::min(grow_step, std::max(first_step, capacity_));
    std::size_t want = (size_ + n + stop_room + step - 1) / step * step;
    for (std::size_t at = std::max(capacity_, size_); at < want;) {  // from size_: a torn line is cleared
        ssize_t k = ::pwrite(fd_, zeros, std::min(sizeof zeros, want - at), static_cast<off_t>(at));
        if (k <= 0) {
            std::string why = std::string("cannot grow the file: ") + std::strerror(k < 0 ? errno : ENOSPC);
            stopped(why);
            fail(why);
            return false;
        }
        at += static_cast<std::size_t>(k);
    }
    void* p = map_ ? mremap(map_, capacity_, want, MREMAP_MAYMOVE)
                   : mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {  // a failed mremap keeps the old mapping: fail() unmaps it
        std::string why = std::string("cannot map the file: ") + std::strerror(errno);
        stopped(why);
        fail(why);
        return false;
    }
    map_ = static_cast<char*>(p);
    capacity_ = want;
    if (guard_) {
        guard_->len.store(0, std::memory_order_release);
        guard_->base.store(map_, std::memory_order_release);
        guard_->len.store(capacity_, std::memory_order_release);
    }
    return true;
}

void Writer::grow(std::size_t n) {
    std::size_t used = static_cast<std::size_t>(at_ - buf_.data());
    buf_.resize(std::max(buf_.size() * 2, used + n + 64));
    at_ = buf_.data() + used;
    end_ = buf_.data() + buf_.size();
}

void Writer::put_string(std::string_view s) {
    room(s.size() * 6 + 2);
    at_ = put_json_string(at_, s);
}

void Writer::put_base64(std::string_view bytes) {
    room((bytes.size() + 2) / 3 * 4 + 2);
    *at_++ = '"';
    at_ = encode_base64(at_, bytes);
    *at_++ = '"';
}

Writer& Writer::begin(std::string_view event) {
    at_ = buf_.data();  // buf_ never shrinks below its first 4 KiB
    end_ = at_ + buf_.size();
    literal("{\"t\":");
    at_ = put_decimal(at_, static_cast<std::uint64_t>(now_us()));
    literal(",\"event\":\"");
    room(event.size() + 1);
    std::memcpy(at_, event.data(), event.size());
    at_ += event.size();
    *at_++ = '"';
    return *this;
}

}  // namespace flowy::detail::trace

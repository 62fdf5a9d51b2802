#pragma once
// The trace recorder: JSON Lines appended to a shared file mapping. An event costs a
// few string appends and a memcpy; the kernel owns the written pages, so a run killed
// with SIGKILL leaves every complete line behind. Blocks are reserved with
// posix_fallocate, so a full disk is an error we report (once) rather than SIGBUS,
// and tracing stops without touching the run.

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace flowy::detail::trace {

inline constexpr int format_version = 1;

/// Monotonic microseconds (CLOCK_MONOTONIC).
std::int64_t now_us();

bool unbase64(std::string_view text, std::string& out);
void append_json_string(std::string& out, std::string_view s);

class Writer {
public:
    /// Opens `path` for a new trace, or to append to one (resume) after its last complete line.
    Writer(const std::string& path, bool append, std::function<void(const std::string&)> warn);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    bool ok() const { return fd_ >= 0; }

    /// Starts an event line: {"t":...,"event":"name"
    Writer& begin(const char* event);
    Writer& field(std::string_view key, std::string_view value);
    Writer& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
    Writer& field(std::string_view key, std::int64_t value);
    Writer& field_bool(std::string_view key, bool value);
    Writer& field_bytes(std::string_view key, std::string_view bytes);  // base64
    Writer& field_list(std::string_view key, const std::vector<std::string>& values);
    /// 16 hex digits.
    Writer& field_hex(std::string_view key, std::uint64_t value);
    /// A task id, `<prefix><name>-<call>-<attempt>`, written in place.
    Writer& field_id(std::string_view key, std::string_view prefix, std::string_view name, std::uint32_t call,
                     std::uint32_t attempt);
    /// A list of task ids, written in place: list_begin, then list_id for each, then list_end.
    Writer& list_begin(std::string_view key);
    Writer& list_id(std::string_view prefix, std::string_view name, std::uint32_t call, std::uint32_t attempt);
    Writer& list_end();
    /// Ends the line and stores it.
    void end();

private:
    void fail(const std::string& why);
    bool reserve(std::size_t n);

    int fd_ = -1;
    char* map_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;
    void id(std::string_view prefix, std::string_view name, std::uint32_t call, std::uint32_t attempt);
    // The line being built: a raw buffer, checked once per field (the hot path of tracing).
    void room(std::size_t n) {
        if (static_cast<std::size_t>(end_ - at_) < n) grow(n);
    }
    void grow(std::size_t n);
    void put(std::string_view s) {
        room(s.size());
        std::memcpy(at_, s.data(), s.size());
        at_ += s.size();
    }
    void put(char c) {
        room(1);
        *at_++ = c;
    }
    void put_int(std::int64_t v);
    void put_key(std::string_view key);
    void put_string(std::string_view s);
    std::vector<char> buf_ = std::vector<char>(4096);
    char* at_ = nullptr;
    char* end_ = nullptr;
    bool first_item_ = true;
    std::string path_;
    std::function<void(const std::string&)> warn_;
};

}  // namespace flowy::detail::trace

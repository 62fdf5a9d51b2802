#pragma once
// Arguments and results travel as cereal portable binary. Each value is one
// self-contained archive (its own endianness byte), so the bytes of a finished
// result can be spliced unchanged into the arguments of the next task.

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

// cereal's serialisers for the other standard types, so that a std::map, a
// std::optional or a std::variant passes as an argument with nothing else to include.
// They are a quarter of what including flowy costs a translation unit; a program that
// passes none of them directly may define FLOWY_MINIMAL_SERIALIZERS before including
// flowy, and include cereal's header for any it does pass (<cereal/types/map.hpp>, ...).
#ifndef FLOWY_MINIMAL_SERIALIZERS
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#endif

#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cereal {
// Raw bytes travel as one binary block (cereal would write them one enum at a time).
template <class Archive, class A>
void CEREAL_SAVE_FUNCTION_NAME(Archive& ar, const std::vector<std::byte, A>& v) {
    ar(make_size_tag(static_cast<size_type>(v.size())));
    ar(binary_data(v.data(), v.size()));
}
template <class Archive, class A>
void CEREAL_LOAD_FUNCTION_NAME(Archive& ar, std::vector<std::byte, A>& v) {
    size_type n;
    ar(make_size_tag(n));
    v.resize(static_cast<std::size_t>(n));
    ar(binary_data(v.data(), static_cast<std::size_t>(n)));
}
}  // namespace cereal

namespace flowy::detail {

/// A streambuf that appends to a std::string.
class StringSink : public std::streambuf {
public:
    explicit StringSink(std::string& out) : out_(out) {}

protected:
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        out_.append(s, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) out_.push_back(traits_type::to_char_type(c));
        return traits_type::not_eof(c);
    }

private:
    std::string& out_;
};

/// A streambuf that reads a byte range in place.
class ViewSource : public std::streambuf {
public:
    explicit ViewSource(std::string_view in) {
        char* p = const_cast<char*>(in.data());
        setg(p, p, p + in.size());
    }
    /// Bytes not consumed yet.
    std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

template <class T>
inline constexpr bool serialisable_v =
    std::is_void_v<T> || (cereal::traits::is_output_serializable<T, cereal::PortableBinaryOutputArchive>::value &&
                          cereal::traits::is_input_serializable<T, cereal::PortableBinaryInputArchive>::value);

template <class T>
inline constexpr bool storable_v = std::is_void_v<T> || (std::is_object_v<T> && std::is_move_constructible_v<T>);

/// Where a task's encoded result goes: a stream that is told the size before the bytes
/// (a worker's reply ring), or a buffer that is not. Not used when the result is void.
class ResultOut {
public:
    /// Whether begin() must be given the exact size the result will take.
    virtual bool needs_size() const = 0;
    /// Where to write the `size` bytes of the result (0 if !needs_size()).
    virtual std::streambuf& begin(std::size_t size) = 0;

protected:
    ~ResultOut() = default;
};

/// A ResultOut that appends to a string.
class StringOut final : public ResultOut {
public:
    explicit StringOut(std::string& s) : sink_(s) {}
    bool needs_size() const override { return false; }
    std::streambuf& begin(std::size_t) override { return sink_; }

private:
    StringSink sink_;
};

/// A streambuf that only counts what is written to it.
class CountSink : public std::streambuf {
public:
    std::size_t size = 0;

protected:
    std::streamsize xsputn(const char*, std::streamsize n) override {
        size += static_cast<std::size_t>(n);
        return n;
    }
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) ++size;
        return traits_type::not_eof(c);
    }
};

/// Numbers are written without a stream or an archive, in the bytes cereal's portable
/// archive gives them: a 1 (little-endian) and the value as this machine stores it.
template <class T>
inline constexpr bool plain_number_v = (std::endian::native == std::endian::little) && std::is_arithmetic_v<T> &&
                                       !std::is_same_v<T, long double>;

/// A plain number's encoded bytes.
template <class T>
std::array<char, 1 + sizeof(T)> number_bytes(T v) {
    std::array<char, 1 + sizeof(T)> b{1};
    std::memcpy(b.data() + 1, &v, sizeof(T));
    return b;
}

/// Writes one value as a self-contained archive to `sb`.
template <class T>
void encode_to(std::streambuf& sb, const T& value) {
    if constexpr (plain_number_v<T>) {
        auto b = number_bytes(value);
        sb.sputn(b.data(), b.size());
    } else {
        std::ostream os(&sb);
        cereal::PortableBinaryOutputArchive ar(os);
        ar(value);
    }
}

/// Appends one value as a self-contained archive.
template <class T>
void encode(std::string& out, const T& value) {
    if constexpr (plain_number_v<T>) {
        auto b = number_bytes(value);
        out.append(b.data(), b.size());
    } else {
        StringSink sink(out);
        encode_to(sink, value);
    }
}

/// An encoded std::string: a 1, its size, its bytes.
inline constexpr std::size_t string_head = 1 + sizeof(cereal::size_type);

/// How many bytes encode() writes for `value`: known for numbers and strings, else
/// counted by a pass that writes nothing.
template <class T>
std::size_t encoded_size(const T& value) {
    if constexpr (plain_number_v<T>) {
        return 1 + sizeof(T);
    } else if constexpr (std::is_same_v<T, std::string>) {
        return string_head + value.size();
    } else {
        CountSink count;
        encode_to(count, value);
        return count.size;
    }
}

/// Reads one value written by encode() from the front of `src`.
template <class T>
T decode(std::istream& is) {
    cereal::PortableBinaryInputArchive ar(is);
    if constexpr (std::is_default_constructible_v<T>) {
        T value{};
        ar(value);
        return value;
    } else {
        static_assert(std::is_default_constructible_v<T>,
                      "flowy: activity argument and result types must be default-constructible to be decoded");
    }
}

/// Turns the encoded bytes of a std::string into the string itself, in place: the
/// header is dropped and the buffer kept, so a big string costs no second buffer.
/// False (and `bytes` unchanged) if they are not exactly one string as encode() lays
/// it out on this machine.
inline bool string_in_place(std::string& bytes) {
    if constexpr (std::endian::native != std::endian::little) return false;
    if (bytes.size() < string_head || bytes[0] != 1) return false;
    cereal::size_type n;
    std::memcpy(&n, bytes.data() + 1, sizeof n);
    if (n != bytes.size() - string_head) return false;
    bytes.erase(0, string_head);
    return true;
}

/// Reads one value written by encode() from `sb`, and not a byte more.
template <class T>
T decode_from(std::streambuf& sb) {
    if constexpr (plain_number_v<T> && !std::is_same_v<T, bool>) {
        char b[1 + sizeof(T)];
        if (sb.sgetn(b, sizeof b) != static_cast<std::streamsize>(sizeof b) || b[0] != 1)
            throw cereal::Exception("flowy: an encoded number is cut short or not little-endian");
        T v;
        std::memcpy(&v, b + 1, sizeof(T));
        return v;
    } else {
        std::istream is(&sb);
        return decode<T>(is);
    }
}

template <class T>
T decode(std::string_view bytes) {
    if constexpr (plain_number_v<T> && !std::is_same_v<T, bool>) {
        if (bytes.size() >= 1 + sizeof(T) && bytes[0] == 1) {
            T v;
            std::memcpy(&v, bytes.data() + 1, sizeof(T));
            return v;
        }
    }
    ViewSource src(bytes);
    std::istream is(&src);
    is.exceptions(std::ios::badbit);
    T value = decode<T>(is);
    return value;
}

/// A short form cut to `limit` bytes with "...", on a character boundary (UTF-8).
inline std::string clip_short(std::string s, std::size_t limit = 60) {
    if (s.size() <= limit) return s;
    std::size_t cut = limit - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    s.resize(cut);
    return s + "...";
}

/// The short form of a value, for traces, pictures and messages: numbers and strings
/// as they are, a type's `describe()` member or its `operator<<` where it has one, the
/// size of a container, or else `fallback()`.
template <class T, class Fallback>
std::string short_form(const T& v, Fallback&& fallback) {
    if constexpr (std::is_same_v<T, bool>) {
        return v ? "true" : "false";
    } else if constexpr (std::is_arithmetic_v<T>) {
        return std::to_string(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
        return "\"" + clip_short(v, 40) + "\"";
    } else if constexpr (requires { std::string(v.describe()); }) {
        return clip_short(std::string(v.describe()));
    } else if constexpr (requires(std::ostream & os) { os << v; }) {
        std::ostringstream os;
        os << v;
        return clip_short(std::move(os).str());
    } else if constexpr (requires { v.size(); }) {
        return "[" + std::to_string(v.size()) + " items]";
    } else {
        return fallback();
    }
}

/// The short form of an encoded value (see short_form), or its size in bytes.
template <class T>
std::string describe(std::string_view bytes) {
    if constexpr (std::is_void_v<T>) {
        return {};
    } else if constexpr (plain_number_v<T> && !std::is_same_v<T, bool>) {
        // the common case, on the trace's hot path: no stream, no archive
        if (bytes.size() == 1 + sizeof(T) && bytes[0] == 1) return std::to_string(decode<T>(bytes));
        return "<" + std::to_string(bytes.size()) + " bytes>";
    } else {
        auto size = [&] { return "<" + std::to_string(bytes.size()) + " bytes>"; };
        try {
            return short_form(decode<T>(bytes), size);
        } catch (...) {
            return size();
        }
    }
}

/// The short form of encoded arguments, "7, \"text\"" (for messages about a task).
template <class... A>
std::string describe_args(std::string_view bytes) {
    std::string out;
    try {
        ViewSource src(bytes);
        std::istream is(&src);
        is.exceptions(std::ios::badbit);
        auto one = [&](auto tag) {
            using T = typename decltype(tag)::type;
            if (!out.empty()) out += ", ";
            out += short_form(decode<T>(is), [] { return std::string("..."); });
        };
        (one(std::type_identity<A>{}), ...);
    } catch (...) {
        return "<" + std::to_string(bytes.size()) + " bytes>";
    }
    return clip_short(std::move(out), 60);
}

}  // namespace flowy::detail

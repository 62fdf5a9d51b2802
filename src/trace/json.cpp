#include "trace/json.hpp"

#include <charconv>
#include <cstdlib>

namespace flowy::detail::json {
namespace {

constexpr int max_depth = 64;

class Parser {
public:
    explicit Parser(std::string_view in) : in_(in) {}

    bool value(Value& out, int depth) {
        if (depth > max_depth) return fail("nested too deeply");
        // A value costs about 100 bytes parsed: a line may not hold more than one per 6
        // bytes read so far (a trace's densest lists, of task ids, take 8 per value), so
        // that a line costs a small multiple of its size however it is made.
        if (++values_ > pos_ / 6 + 64) return fail("too many values for its length (not a trace line)");
        space();
        if (at_end()) return fail("unexpected end");
        char c = in_[pos_];
        if (c == '{') return object(out, depth);
        if (c == '[') return array(out, depth);
        if (c == '"') {
            out.kind = Value::Kind::string;
            return string(out.text);
        }
        if (c == 't') return word("true", out, Value::Kind::boolean, true);
        if (c == 'f') return word("false", out, Value::Kind::boolean, false);
        if (c == 'n') return word("null", out, Value::Kind::null, false);
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        return fail(std::string("unexpected character '") + c + "'");
    }

    bool finish() {
        space();
        return at_end() || fail("unexpected text after the value");
    }

    std::string error;

private:
    bool at_end() const { return pos_ >= in_.size(); }
    bool fail(std::string why) {
        if (error.empty()) error = std::move(why) + " at column " + std::to_string(pos_ + 1);
        return false;
    }
    void space() {
        while (!at_end() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\r' || in_[pos_] == '\n')) ++pos_;
    }
    bool word(std::string_view w, Value& out, Value::Kind kind, bool b) {
        if (in_.substr(pos_, w.size()) != w) return fail("bad literal");
        pos_ += w.size();
        out.kind = kind;
        out.b = b;
        return true;
    }
    bool number(Value& out) {
        std::size_t start = pos_;
        if (in_[pos_] == '-') ++pos_;
        auto digits = [&] {
            std::size_t d = pos_;
            while (!at_end() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
            return pos_ > d;
        };
        if (!digits()) return fail("bad number");
        if (!at_end() && in_[pos_] == '.') {
            ++pos_;
            if (!digits()) return fail("bad number");
        }
        if (!at_end() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
            ++pos_;
            if (!at_end() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
            if (!digits()) return fail("bad number");
        }
        std::string text(in_.substr(start, pos_ - start));
        out.kind = Value::Kind::number;
        out.number = std::strtod(text.c_str(), nullptr);
        return true;
    }
    bool hex4(unsigned& v) {
        if (in_.size() - pos_ < 4) return fail("bad \\u escape");
        v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = in_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                return fail("bad \\u escape");
        }
        return true;
    }
    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }
    bool string(std::string& out) {
        ++pos_;  // the opening quote
        out.clear();
        while (!at_end()) {
            char c = in_[pos_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_end()) break;
            char e = in_[pos_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    unsigned cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xd800 && cp < 0xdc00) {
                        unsigned lo = 0;
                        if (in_.substr(pos_, 2) != "\\u") return fail("lone surrogate");
                        pos_ += 2;
                        if (!hex4(lo)) return false;
                        if (lo < 0xdc00 || lo >= 0xe000) return fail("bad surrogate pair");
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else if (cp >= 0xdc00 && cp < 0xe000) {
                        return fail("lone surrogate");
                    }
                    utf8(out, cp);
                    break;
                }
                default:
                    return fail("bad escape");
            }
        }
        return fail("unterminated string");
    }
    bool array(Value& out, int depth) {
        ++pos_;
        out.kind = Value::Kind::array;
        space();
        if (!at_end() && in_[pos_] == ']') {
            ++pos_;
            return true;
        }
        for (;;) {
            out.items.emplace_back();
            if (!value(out.items.back(), depth + 1)) return false;
            space();
            if (at_end()) return fail("unterminated array");
            char c = in_[pos_++];
            if (c == ']') return true;
            if (c != ',') return fail("expected ',' or ']'");
        }
    }
    bool object(Value& out, int depth) {
        ++pos_;
        out.kind = Value::Kind::object;
        space();
        if (!at_end() && in_[pos_] == '}') {
            ++pos_;
            return true;
        }
        for (;;) {
            space();
            if (at_end() || in_[pos_] != '"') return fail("expected a key");
            std::string key;
            if (!string(key)) return false;
            space();
            if (at_end() || in_[pos_++] != ':') return fail("expected ':'");
            out.keys.push_back(std::move(key));
            out.items.emplace_back();
            if (!value(out.items.back(), depth + 1)) return false;
            space();
            if (at_end()) return fail("unterminated object");
            char c = in_[pos_++];
            if (c == '}') return true;
            if (c != ',') return fail("expected ',' or '}'");
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::size_t values_ = 0;
};

}  // namespace

bool parse(std::string_view in, Value& out, std::string& error) {
    Parser p(in);
    out = Value{};
    bool ok = p.value(out, 0) && p.finish();
    error = p.error;
    return ok;
}

}  // namespace flowy::detail::json

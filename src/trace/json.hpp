#pragma once
// A small JSON reader for trace lines: strict, depth-limited, never crashes on bad input.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flowy::detail::json {

struct Value {
    /// `bytes`: raw bytes in `text`, which a journal's values decode to (never parsed from JSON).
    enum class Kind { null, boolean, number, string, array, object, bytes } kind = Kind::null;
    bool b = false;
    double number = 0;
    std::string text;
    std::vector<Value> items;       // array elements, or object member values
    std::vector<std::string> keys;  // object member names, parallel to items

    const Value* get(std::string_view key) const {
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }
};

/// Parses one JSON value filling all of `in`; on failure returns false with a reason.
bool parse(std::string_view in, Value& out, std::string& error);

}  // namespace flowy::detail::json

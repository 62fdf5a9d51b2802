#pragma once
// A small JSON reader for trace lines: strict, depth-limited, never crashes on bad input.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flowy::detail::json {

struct Value {
    enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
    bool b = false;
    double number = 0;
    std::string text;
    std::vector<Value> items;
    std::vector<std::pair<std::string, Value>> members;

    const Value* get(std::string_view key) const {
        for (const auto& [k, v] : members)
            if (k == key) return &v;
        return nullptr;
    }
};

/// Parses one JSON value filling all of `in`; on failure returns false with a reason.
bool parse(std::string_view in, Value& out, std::string& error);

}  // namespace flowy::detail::json

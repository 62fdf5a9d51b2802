// The model without an engine (direct mode), Result values, and configuration
// errors (SEMANTICS.md rows 18 and 24).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support.hpp"

#include <string>
#include <vector>

using flowy::Activity;
using flowy::Result;
using test::Shared;

namespace {
int sum_activity(int a, int b) {
    return a + b;
}
int square_activity(int n) {
    return n * n;
}

}  // namespace

TEST_CASE("activities built from callables run inline, with no engine") {
    test::Seed w;
    w.square = square_activity;
    w.sum = [](int a, int b) { return a + b; };
    CHECK(w(2, 10).get() == 104);

    Activity<int(int)> square = square_activity;
    CHECK(square(7).get() == 49);
    CHECK(square.name().empty());
}

TEST_CASE("direct mode keeps the failure rules: exceptions, failed inputs, the earliest error") {
    Activity<int(int)> bad = [](int) -> int { throw std::out_of_range("nope"); };
    Activity<int(int, int)> sum = sum_activity;
    Result<int> a = bad(1);
    try {
        a.get();
        FAIL("no throw");
    } catch (const flowy::TaskError& e) {
        CHECK(std::string(e.what()) == "nope");
        CHECK(e.type() == "std::out_of_range");
    }
    Activity<int(int)> worse = [](int) -> int { throw std::logic_error("worse"); };
    Result<int> b = worse(2);
    CHECK_THROWS_WITH_AS(sum(b, a).get(), "nope", flowy::TaskError);  // a failed first
    int calls = 0;
    Activity<int(int)> counted = [&](int x) { return ++calls, x; };
    CHECK_THROWS_AS(counted(a).get(), flowy::TaskError);
    CHECK(calls == 0);
}

TEST_CASE("Result: implicit from a value, void results, empty results") {
    Result<int> r = 5;
    CHECK(r.get() == 5);
    Result<std::string> s = std::string("x");
    Result<std::string> copy = s;
    CHECK(copy.get() == "x");
    Result<void> v;
    CHECK_NOTHROW(v.get());
    Activity<void(int)> effect = [](int) {};
    CHECK_NOTHROW(effect(1).get());
    Result<int> empty;
    CHECK_THROWS_AS(empty.get(), std::logic_error);
}

TEST_CASE("a named activity called outside a run says what to do") {
    Activity<int(int)> square{"square"};
    CHECK_THROWS_WITH_AS(square(1), doctest::Contains("called outside a workflow run"), std::logic_error);
}

namespace {
int counted_square(int n) {
    ++Shared::get().calls;
    return n * n;
}
template <class W>
std::string config_error(flowy::LocalWorkflow<W>& w) {
    try {
        w.run(1, 2);
    } catch (const flowy::ConfigError& e) {
        return e.what();
    }
    return "no ConfigError";
}
}  // namespace

TEST_CASE("misconfiguration throws ConfigError before any task runs, on every executor") {
    for (auto e : test::all_executors) {
        CAPTURE(test::name(e));
        test::NoLeaks no_leaks;
        Shared::reset();
        {
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square);
            std::string m = config_error(w);
            CHECK(m.find("'sum'") != std::string::npos);
            CHECK(m.find("int (int, int)") != std::string::npos);
            CHECK(m.find("not configured") != std::string::npos);
        }
        {
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square);
            w.conf_activity("sum", [](long a, long b) { return a + b; });
            std::string m = config_error(w);
            CHECK(m.find("'sum'") != std::string::npos);
            CHECK(m.find("declared as int (int, int)") != std::string::npos);
            CHECK(m.find("configured with long (long, long)") != std::string::npos);
        }
        {
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square);
            w.conf_activity("sum", sum_activity);
            w.conf_activity("sum", sum_activity);
            CHECK(config_error(w).find("'sum' is configured twice") != std::string::npos);
        }
        {
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square);
            w.conf_activity("sum", sum_activity);
            w.conf_activity("bad name!", sum_activity);
            CHECK(config_error(w).find("invalid dependency name 'bad name!'") != std::string::npos);
        }
        {  // a typo: the one it meant is not configured, and the one configured is not declared
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square);
            w.conf_activity("Sum", sum_activity);
            std::string m = config_error(w);
            CHECK(m.find("'sum'") != std::string::npos);
            CHECK(m.find("('Sum' is configured: a typo?)") != std::string::npos);
        }
        {  // something configured that the workflow does not declare at all
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square).conf_activity("sum", sum_activity);
            w.conf_activity("sqare", counted_square);
            std::string m = config_error(w);
            CHECK(m.find("has no dependency 'sqare'") != std::string::npos);
            CHECK(m.find("(did you mean 'square'?)") != std::string::npos);
            CHECK(m.find("it declares: square, sum") != std::string::npos);
        }
        {
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e).workers(0);
            w.conf_activity("square", counted_square);
            w.conf_activity("sum", sum_activity);
            CHECK(config_error(w).find("at least one worker") != std::string::npos);
        }
        {
            using namespace std::chrono_literals;
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square, {.timeout = -5ms});
            w.conf_activity("sum", sum_activity);
            CHECK(config_error(w).find("timeout must be positive") != std::string::npos);
        }
        {
            // A task keeps its attempt number in 16 bits.
            flowy::LocalWorkflow<test::Seed> w;
            w.executor(e);
            w.conf_activity("square", counted_square, {.retries = 65536});
            w.conf_activity("sum", sum_activity);
            CHECK(config_error(w).find("'square': retries must be at most 65535") != std::string::npos);
        }
        CHECK(Shared::get().calls == 0);
    }
}

namespace {
struct DeclaresTwice {
    Activity<int(int)> a{"same"};
    Activity<int(int, int)> b{"same"};
    Result<int> operator()(int x, int) { return a(x); }
};
}  // namespace

TEST_CASE("one name declared with two signatures is a ConfigError") {
    flowy::LocalWorkflow<DeclaresTwice> w;
    w.conf_activity("same", square_activity);
    std::string m = config_error(w);
    CHECK(m.find("declares dependency 'same' twice") != std::string::npos);
}

TEST_CASE("the same workflow class runs on the engine and inline") {
    flowy::LocalWorkflow<test::Seed> w;
    w.executor(flowy::Executor::synchronous);
    w.conf_activity("square", square_activity);
    w.conf_activity("sum", sum_activity);
    int engine = w.run(3, 4);
    test::Seed inline_w;
    inline_w.square = square_activity;
    inline_w.sum = sum_activity;
    CHECK(engine == inline_w(3, 4).get());
}

TEST_CASE("Bytes: up to 15 bytes inline, longer strings adopted without a copy, moves leave it empty") {
    using flowy::detail::Bytes;
    Bytes b;
    CHECK(b.empty());
    CHECK(b.view().empty());

    for (std::size_t n : {std::size_t(1), std::size_t(15), std::size_t(16), std::size_t(100000)}) {
        CAPTURE(n);
        std::string s(n, '\0');
        for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 1);  // NULs and high bytes too
        const std::string expect = s;
        const char* buffer = s.data();
        b = std::move(s);
        CHECK(b.size() == n);
        CHECK(b.view() == expect);
        if (n > 15) CHECK(b.view().data() == buffer);  // adopted: the same buffer

        Bytes moved(std::move(b));
        CHECK(b.empty());
        CHECK(moved.view() == expect);
        b = std::move(moved);
        CHECK(moved.empty());
        CHECK(b.view() == expect);

        std::string out = b.take();
        CHECK(out == expect);
        CHECK(b.empty());
        b = std::move(out);
    }
    b.clear();
    CHECK(b.empty());
    b = std::string("abc");  // a long value replaced by a short one
    CHECK(b.view() == "abc");
}

namespace {
std::string cereal_bytes(const auto& v, cereal::PortableBinaryOutputArchive::Options o =
                                            cereal::PortableBinaryOutputArchive::Options::Default()) {
    std::string out;
    flowy::detail::StringSink sink(out);
    std::ostream os(&sink);
    cereal::PortableBinaryOutputArchive ar(os, o);
    ar(v);
    return out;
}
template <class T>
void round_trip(T v) {
    CAPTURE(v);
    std::string ours;
    flowy::detail::encode(ours, v);
    CHECK(ours == cereal_bytes(v));  // the same bytes as cereal's archive, without it
    CHECK(flowy::detail::encoded_size(v) == ours.size());
    CHECK(flowy::detail::decode<T>(ours) == v);
    flowy::detail::ViewSource src(ours);
    CHECK(flowy::detail::decode_from<T>(src) == v);
    CHECK(src.remaining() == 0);
}
}  // namespace

TEST_CASE("numbers travel in cereal's bytes without its streams; other values through it") {
    round_trip(-5);
    round_trip(std::int64_t(INT64_MIN));
    round_trip(std::uint8_t(255));
    round_trip(3.25);
    round_trip(-0.5f);
    round_trip(true);
    round_trip('x');
    round_trip(std::string(100, 'q'));
    round_trip(std::vector<int>{1, 2, 3});

    // bytes a big-endian archive wrote are still read (through cereal)
    std::string big = cereal_bytes(std::int32_t(0x01020304), cereal::PortableBinaryOutputArchive::Options::BigEndian());
    CHECK(big[0] == 0);
    CHECK(flowy::detail::decode<std::int32_t>(big) == 0x01020304);

    // cut short: an error, never a read past the end
    std::string cut = "\x01\x02";
    flowy::detail::ViewSource src(cut);
    CHECK_THROWS_AS(flowy::detail::decode_from<int>(src), cereal::Exception);
    CHECK_THROWS_AS(flowy::detail::decode<int>(cut), cereal::Exception);
}

TEST_CASE("a big string's encoded bytes become the string in place, and only when laid out as expected") {
    std::string text(3000, '\0');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>(i * 13);
    std::string bytes;
    flowy::detail::encode(bytes, text);
    const char* buffer = bytes.data();
    std::string same = bytes;
    CHECK(flowy::detail::string_in_place(same));
    CHECK(same == text);
    CHECK(flowy::detail::string_in_place(bytes));
    CHECK(bytes.data() == buffer);  // the same buffer, not a copy

    std::string longer;
    flowy::detail::encode(longer, text);
    longer += "x";  // one byte more than its size says
    const std::string before = longer;
    CHECK_FALSE(flowy::detail::string_in_place(longer));
    CHECK(longer == before);

    std::string big_endian = cereal_bytes(text, cereal::PortableBinaryOutputArchive::Options::BigEndian());
    CHECK_FALSE(flowy::detail::string_in_place(big_endian));
    CHECK(flowy::detail::decode<std::string>(big_endian) == text);
    std::string empty;
    CHECK_FALSE(flowy::detail::string_in_place(empty));
}

namespace {
struct Point {
    int x = 0, y = 0;
    template <class A>
    void serialize(A& a) {
        a(x, y);
    }
};
std::ostream& operator<<(std::ostream& os, const Point& p) {
    return os << "(" << p.x << ", " << p.y << ")";
}
struct Named {
    std::string name;
    template <class A>
    void serialize(A& a) {
        a(name);
    }
    std::string describe() const { return "named " + name; }
};
struct Opaque {
    int a = 0, b = 0;
    template <class A>
    void serialize(A& ar) {
        ar(a, b);
    }
};
template <class T>
std::string short_form(const T& v) {
    std::string bytes;
    flowy::detail::encode(bytes, v);
    return flowy::detail::describe<T>(bytes);
}
}  // namespace

TEST_CASE("short forms of values: a user type's operator<< or describe(), strings cut between characters") {
    CHECK(short_form(Point{1, 2}) == "(1, 2)");
    CHECK(short_form(Named{"x"}) == "named x");
    CHECK(short_form(Opaque{1, 2}) == "<9 bytes>");
    CHECK(short_form(std::string("short")) == "\"short\"");
    std::string cyrillic;
    for (int i = 0; i < 30; ++i) cyrillic += "\xd1\x8f";  // я, two bytes each
    std::string s = short_form(cyrillic);
    REQUIRE(s.size() > 5);
    std::string cut = s.substr(1, s.size() - 5);  // between the quote and the "..."
    CHECK(s.substr(s.size() - 4) == "...\"");
    CHECK(cut.size() % 2 == 0);  // whole characters only
    CHECK(cut.size() <= 37);
    CHECK(short_form(Named{std::string(100, 'w')}).size() == 60);
}

#!/usr/bin/env python3
"""Row 19: types that cannot be serialised, and other misuse, fail to compile with
flowy's own message. Usage: compile_errors.py CXX INCLUDE_DIR"""
import subprocess
import sys
import tempfile

cxx, include = sys.argv[1], sys.argv[2]

PRELUDE = "#include <flowy/flowy.hpp>\n#include <string>\n"

CASES = [
    ("a parameter type without serialize()",
     "struct Opaque { int x; };\n"
     "struct W { flowy::Activity<int(Opaque)> t{\"t\"}; };\n"
     "int main() { W w; (void)w; }\n",
     "flowy: an activity parameter type cannot be serialised with cereal"),
    ("a result type without serialize()",
     "struct Opaque { int x; };\n"
     "struct W { flowy::Activity<Opaque(int)> t{\"t\"}; };\n"
     "int main() { W w; (void)w; }\n",
     "flowy: the activity's result type cannot be serialised with cereal"),
    ("a generic lambda in conf_activity",
     "struct W { flowy::Activity<int(int)> t{\"t\"}; flowy::Result<int> operator()() { return t(1); } };\n"
     "int main() { flowy::LocalWorkflow<W> w; w.conf_activity(\"t\", [](auto x) { return x; }); }\n",
     "flowy: conf_activity needs a function or a lambda with one signature"),
    ("an argument of the wrong type",
     "struct W { flowy::Activity<int(int)> t{\"t\"};\n"
     "  flowy::Result<int> operator()() { return t(std::string(\"x\")); } };\n"
     "int main() { W w; (void)w(); }\n",
     "flowy: an argument does not fit the activity's parameter"),
    ("the wrong number of arguments",
     "struct W { flowy::Activity<int(int)> t{\"t\"};\n"
     "  flowy::Result<int> operator()() { return t(1, 2); } };\n"
     "int main() { W w; (void)w(); }\n",
     "flowy: wrong number of arguments"),
    ("run() arguments that do not fit the body",
     "struct W { flowy::Activity<int(int)> t{\"t\"}; flowy::Result<int> operator()(int x) { return t(x); } };\n"
     "int main() { flowy::LocalWorkflow<W> w; w.run(std::string(\"x\")); }\n",
     "flowy: run() arguments do not match"),
]

# The control: a user type with serialize() compiles, so a failure above is the check, not the setup.
CONTROL = ("struct Point { int x, y; template <class A> void serialize(A& a) { a(x, y); } };\n"
           "struct W { flowy::Activity<Point(Point)> t{\"t\"};\n"
           "  flowy::Result<Point> operator()(Point p) { return t(p); } };\n"
           "int main() { flowy::LocalWorkflow<W> w; w.conf_activity(\"t\", [](Point p) { return p; }); }\n")


def compile_snippet(body):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp") as f:
        f.write(PRELUDE + body)
        f.flush()
        return subprocess.run([cxx, "-std=c++20", "-fsyntax-only", "-I", include, f.name],
                              capture_output=True, text=True)


failed = 0
r = compile_snippet(CONTROL)
if r.returncode != 0:
    print("FAIL control: a serialisable type does not compile:\n" + r.stderr[:3000])
    sys.exit(1)
print("ok   control compiles")
for name, body, expected in CASES:
    r = compile_snippet(body)
    if r.returncode == 0:
        print(f"FAIL {name}: compiled")
        failed += 1
    elif expected not in r.stderr:
        print(f"FAIL {name}: no '{expected}' in the errors:\n{r.stderr[:3000]}")
        failed += 1
    else:
        print(f"ok   {name}")
sys.exit(1 if failed else 0)

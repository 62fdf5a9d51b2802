// Conditional: the body reads a value and decides which task to run next. Only the
// branch taken runs; the body is plain C++, so any control flow works.
//
//   1.0 ----------7|              7 is odd:
//   0.5            -----70        the "odd" branch runs, the other is never called
//   duration: 1.5 units, result 70
#include "common.hpp"

struct Conditional {
    flowy::Activity<int(double, int)> a{"a"};
    flowy::Result<int> operator()(int x) {
        auto first = a(1.0, x);
        if (first.get() % 2 == 1) return a(0.5, first.get() * 10);  // odd
        return a(2.0, first.get() / 2);                             // even
    }
};

int main(int argc, char** argv) {
    return sample::main<Conditional>(argc, argv, 7);
}

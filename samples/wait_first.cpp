// WaitFirst: four calls at once; the value is the first to finish.
//
//   1.0 ----------1
//   0.5 -----2          <- the result, known at 0.5
//   1.5 ---------------3
//   2.0 --------------------4
//   duration: 2.0 units, result 2
//
// The original Flowy returned at 0.5; flowy lets the other tasks finish before run()
// returns (a task run for its effect is never cut off, and an ignored failure is still
// reported), so the run lasts 2.0 units while the value is known at 0.5. On the
// synchronous executor tasks run one at a time in call order: there x1 finishes first.
#include "common.hpp"

struct WaitFirst {
    flowy::Activity<int(double, int)> a{"a"};
    flowy::Result<int> operator()() {
        auto x1 = a(1.0, 1);
        auto x2 = a(0.5, 2);
        auto x3 = a(1.5, 3);
        auto x4 = a(2.0, 4);
        return flowy::first(x1, x2, x3, x4);
    }
};

int main(int argc, char** argv) {
    return sample::main<WaitFirst>(argc, argv);
}

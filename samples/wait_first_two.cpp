// WaitFirstTwo: four calls at once; the value is the sum of the first two to finish.
//
//   1.0 ----------1|
//   0.5 -----2-----|    <- 2 + 1, known at 1.0
//   1.5 ---------------3
//   2.0 --------------------4
//   duration: 2.0 units (the value is known at 1.0), result 3
#include "common.hpp"

#include <ranges>
#include <vector>

struct WaitFirstTwo {
    flowy::Activity<int(double, int)> a{"a"};
    int operator()() {
        std::vector<flowy::Result<int>> xs{a(1.0, 1), a(0.5, 2), a(1.5, 3), a(2.0, 4)};
        int sum = 0;
        for (flowy::Result<int> r : flowy::finish_order(xs) | std::views::take(2)) sum += r.get();
        return sum;
    }
};

int main(int argc, char** argv) {
    return sample::main<WaitFirstTwo>(argc, argv);
}

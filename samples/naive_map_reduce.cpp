// NaiveMapReduce: map x = 1..6 to x², then fold the results in call order. Works
// for reduce functions that are neither associative nor commutative; no two reduce
// steps overlap, and each waits for the next map in call order.
//
//   maps (units):  x=1 0-0.5   x=2 0-1.5   x=3 0-1.0   x=4 0-6.0   x=5 0-5.0   x=6 0-2.0
//   reduces:       1+4   1.5-3.0 -> 5
//                  5+9   3.0-4.5 -> 14
//                  14+16 6.0-7.5 -> 30     (waits for map 4)
//                  30+25 7.5-9.0 -> 55
//                  55+36 9.0-10.5 -> 91
//   duration: 10.5 units, result 91
#include "common.hpp"

#include <vector>

struct NaiveMapReduce {
    flowy::Activity<int(int, double)> square{"square"};
    flowy::Activity<int(int, int)> add{"add"};
    flowy::Result<int> operator()() {
        const double units[] = {0.5, 1.5, 1.0, 6.0, 5.0, 2.0};
        std::vector<flowy::Result<int>> mapped;
        for (int x = 1; x <= 6; ++x) mapped.push_back(square(x, units[x - 1]));
        flowy::Result<int> acc = mapped[0];
        for (std::size_t i = 1; i < mapped.size(); ++i) acc = add(acc, mapped[i]);
        return acc;
    }
};

int main(int argc, char** argv) {
    return sample::main<NaiveMapReduce>(argc, argv);
}

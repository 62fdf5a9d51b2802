// FinishOrderMapReduce: the same map, folded in the order the maps finish: the
// reduction starts as soon as two maps are done and goes on with each map as it
// finishes. Still one reduce at a time.
//
//   maps finish:   x=1 at 0.5, x=3 at 1.0, x=2 at 1.5, x=6 at 2.0, x=5 at 5.0, x=4 at 6.0
//   reduces:       1+9   1.0-2.5 -> 10
//                  10+4  2.5-4.0 -> 14
//                  14+36 4.0-5.5 -> 50
//                  50+25 5.5-7.0 -> 75
//                  75+16 7.0-8.5 -> 91
//   duration: 8.5 units, result 91
#include "common.hpp"

#include <vector>

struct FinishOrderMapReduce {
    flowy::Activity<int(int, double)> square{"square"};
    flowy::Activity<int(int, int)> add{"add"};
    flowy::Result<int> operator()() {
        const double units[] = {0.5, 1.5, 1.0, 6.0, 5.0, 2.0};
        std::vector<flowy::Result<int>> mapped;
        for (int x = 1; x <= 6; ++x) mapped.push_back(square(x, units[x - 1]));
        flowy::Result<int> acc;
        bool first = true;
        for (flowy::Result<int> r : flowy::finish_order(mapped)) {
            acc = first ? r : add(acc, r);
            first = false;
        }
        return acc;
    }
};

int main(int argc, char** argv) {
    return sample::main<FinishOrderMapReduce>(argc, argv);
}

// ParallelMapReduce: the same map, reduced with parallel_reduce: any two finished
// results (maps or earlier reduces) are paired at once, so reduces run in parallel.
//
//   maps finish:   x=1 at 0.5, x=3 at 1.0, x=2 at 1.5, x=6 at 2.0, x=5 at 5.0, x=4 at 6.0
//   reduces:       1+9   1.0-2.5 -> 10
//                  4+36  2.0-3.5 -> 40     (overlaps the one above)
//                  10+40 3.5-5.0 -> 50
//                  25+50 5.0-6.5 -> 75
//                  16+75 6.5-8.0 -> 91
//   duration: 8.0 units, result 91
#include "common.hpp"

#include <vector>

struct ParallelMapReduce {
    flowy::Activity<int(int, double)> square{"square"};
    flowy::Activity<int(int, int)> add{"add"};
    flowy::Result<int> operator()() {
        const double units[] = {0.5, 1.5, 1.0, 6.0, 5.0, 2.0};
        std::vector<flowy::Result<int>> mapped;
        for (int x = 1; x <= 6; ++x) mapped.push_back(square(x, units[x - 1]));
        return flowy::parallel_reduce(add, mapped);
    }
};

int main(int argc, char** argv) {
    return sample::main<ParallelMapReduce>(argc, argv);
}

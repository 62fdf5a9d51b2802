// ParallelSum: like ParallelWait, but the body sums the values; reading them is the wait.
//
//   1.0 ----------1----------|
//   0.5 -----2---------------|
//   1.5 ---------------3-----|
//   2.0 --------------------4|
//   duration: 2.0 units, result 10
#include "common.hpp"

#include <vector>

struct ParallelSum {
    flowy::Activity<int(double, int)> a{"a"};
    int operator()() {
        std::vector<flowy::Result<int>> results;
        int identity = 1;
        for (double units : {1.0, 0.5, 1.5, 2.0}) results.push_back(a(units, identity++));
        int sum = 0;
        for (auto& r : results) sum += r.get();
        return sum;
    }
};

int main(int argc, char** argv) {
    return sample::main<ParallelSum>(argc, argv);
}

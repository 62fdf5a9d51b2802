// ParallelWait: four independent calls run at once; the body waits for all of them.
//
//   1.0 ----------1----------|
//   0.5 -----2---------------|
//   1.5 ---------------3-----|
//   2.0 --------------------4|
//   duration: 2.0 units, no result
#include "common.hpp"

#include <vector>

struct ParallelWait {
    flowy::Activity<int(double, int)> a{"a"};
    void operator()() {
        std::vector<flowy::Result<int>> results;
        int identity = 1;
        for (double units : {1.0, 0.5, 1.5, 2.0}) results.push_back(a(units, identity++));
        for (auto& r : results) flowy::wait(r);
    }
};

int main(int argc, char** argv) {
    return sample::main<ParallelWait>(argc, argv);
}

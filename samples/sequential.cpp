// Sequential: each call takes the previous result, so the tasks run one after another.
//
//   1.0 ----------1|
//   0.5            -----2|
//   1.5                  ---------------3|
//   2.0                                  --------------------4
//   duration: 5.0 units, result 4
#include "common.hpp"

struct Sequential {
    flowy::Activity<int(double, int)> a{"a"};
    flowy::Result<int> operator()() {
        flowy::Result<int> r = 0;
        for (double units : {1.0, 0.5, 1.5, 2.0}) r = a(units, r.get() + 1);
        return r;
    }
};

int main(int argc, char** argv) {
    return sample::main<Sequential>(argc, argv);
}

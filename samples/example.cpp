// The seed example: two squares run concurrently, then their sum.
//
//   square(2) ──┐
//               ├──► sum ──► 104
//   square(10) ─┘
#include <flowy/flowy.hpp>
#include <iostream>

int sum_activity(int a, int b) {
    return a + b;
}
int square_activity(int n) {
    return n * n;
}

struct ExampleWorkflow {
    flowy::Activity<int(int)> square{"square"};
    flowy::Activity<int(int, int)> sum{"sum"};

    flowy::Result<int> operator()(int a, int b) {
        auto a_squared = square(a);
        auto b_squared = square(b);
        return sum(a_squared, b_squared);
    }
};

int main() {
    flowy::LocalWorkflow<ExampleWorkflow> w;
    w.conf_activity("square", square_activity);
    w.conf_activity("sum", sum_activity);
    std::cout << w.run(2, 10) << '\n';  // 104; the two squares ran concurrently
}

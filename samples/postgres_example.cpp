// The seed example on the PostgreSQL engine: the same workflow class, durable, its
// tasks run by every process that serves it.
//
//   postgres_example CONNINFO                 run(2, 10) here, print 104
//   postgres_example CONNINFO serve           run tasks and decide executions until Ctrl-C
//   postgres_example CONNINFO start A B       insert an execution, print its id
//   postgres_example CONNINFO result ID       wait for an execution's value
//
// Options before the command: --workers N (local worker processes; 0: none),
// --lease MS. The squares take 200 ms, so two serving processes visibly share them.
#include <flowy/flowy.hpp>
#include <flowy/postgres.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int sum_activity(int a, int b) {
    return a + b;
}
int square_activity(int n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
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

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: postgres_example CONNINFO [--workers N] [--lease MS] [serve | start A B | result ID]\n";
        return 2;
    }
    flowy::PostgresWorkflow<ExampleWorkflow> w{argv[1]};
    w.conf_activity("square", square_activity);
    w.conf_activity("sum", sum_activity);
    int i = 2;
    for (; i + 1 < argc && std::string(argv[i]).rfind("--", 0) == 0; i += 2) {
        std::string opt = argv[i];
        if (opt == "--workers")
            w.workers(std::atoi(argv[i + 1]));
        else if (opt == "--lease")
            w.lease(std::chrono::milliseconds(std::atoi(argv[i + 1])));
        else {
            std::cerr << "postgres_example: unknown option " << opt << '\n';
            return 2;
        }
    }
    std::string cmd = i < argc ? argv[i] : "run";
    if (cmd == "run") {
        std::cout << w.run(2, 10) << '\n';
    } else if (cmd == "serve") {
        w.serve();
    } else if (cmd == "start" && i + 2 < argc) {
        std::cout << w.start(std::atoi(argv[i + 1]), std::atoi(argv[i + 2])) << '\n';
    } else if (cmd == "result" && i + 1 < argc) {
        std::cout << w.result(flowy::ExecutionId::parse(argv[i + 1])) << '\n';
    } else {
        std::cerr << "postgres_example: unknown command " << cmd << '\n';
        return 2;
    }
} catch (const std::exception& e) {
    std::cerr << "postgres_example: " << e.what() << '\n';
    return 1;
}

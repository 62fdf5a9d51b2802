// A process standing for another host in the PostgreSQL engine's tests
// (test_postgres.cpp): it serves, runs, starts or waits for executions of `Stages`.
//
//   pg_node CONNINFO [--workers N] [--lease MS] [--retries R] [--heartbeat MS] [--list L]
//           [--version V] [--concurrency C] serve
//   pg_node CONNINFO [options] run N MS        prints the value
//   pg_node CONNINFO [options] start N MS      prints the execution id
//   pg_node CONNINFO [options] result ID       prints the value
//
// Every attempt of an activity appends "<activity> <i> <pid>" to $FLOWY_TEST_EFFECTS,
// so a test counts how often each task ran, and where.
#include "pg_workflows.hpp"

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
    if (argc < 3) return 2;
    flowy::PostgresWorkflow<pgtest::Stages> w{argv[1]};
    int retries = 0;
    int i = 2;
    int workers = 2, lease = 1000, heartbeat = 0, concurrency = 0;
    std::string list, version = "1";
    for (; i + 1 < argc && std::string(argv[i]).rfind("--", 0) == 0; i += 2) {
        std::string opt = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (opt == "--workers")
            workers = v;
        else if (opt == "--lease")
            lease = v;
        else if (opt == "--retries")
            retries = v;
        else if (opt == "--heartbeat")  // `work` beats (pgtest::beating_work), with this heartbeat timeout
            heartbeat = v;
        else if (opt == "--list")  // `again` goes on this task list
            list = argv[i + 1];
        else if (opt == "--version")
            version = argv[i + 1];
        else if (opt == "--concurrency")  // at most this many `work` tasks run at once, across hosts
            concurrency = v;
        else
            return 2;
    }
    pgtest::configure(w, retries, std::chrono::milliseconds(heartbeat), list, concurrency);
    w.workers(workers).lease(std::chrono::milliseconds(lease)).version(version);
    std::string cmd = argv[i];
    if (cmd == "serve") {
        w.serve();
    } else if (cmd == "run" && i + 2 < argc) {
        std::cout << w.run(std::atoi(argv[i + 1]), std::atoi(argv[i + 2])) << std::endl;
    } else if (cmd == "start" && i + 2 < argc) {
        std::cout << w.start(std::atoi(argv[i + 1]), std::atoi(argv[i + 2])) << std::endl;
    } else if (cmd == "result" && i + 1 < argc) {
        std::cout << w.result(flowy::ExecutionId::parse(argv[i + 1])) << std::endl;
    } else {
        return 2;
    }
} catch (const std::exception& e) {
    std::cerr << "pg_node: " << e.what() << std::endl;
    return 1;
}

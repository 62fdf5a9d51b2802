#pragma once
// A throwaway PostgreSQL 15 cluster on loopback for tests and benchmarks: initdb into a
// temporary directory (as the postgres user when run as root: initdb refuses root),
// the socket in that directory, a free port; stopped and removed by the destructor,
// and, if the process dies first (a crash, SIGKILL), by a guard process that waits for
// its death. Each test takes a fresh database.

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pgtest {

inline const char* pg_bin = "/usr/lib/postgresql/15/bin";

class Cluster {
public:
    /// `extra_hba`: lines put before the trust line of pg_hba.conf.
    explicit Cluster(const std::string& extra_hba = {}) {
        char tmpl[] = "/tmp/flowy-pg-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        as_postgres_ = getuid() == 0;
        if (as_postgres_) sh("chown postgres " + dir);
        port = free_port();
        sh(run_as() + pg_bin + "/initdb -D " + dir + "/data -A trust -U postgres > " + dir + "/initdb.log 2>&1");
        if (!extra_hba.empty()) {
            std::string hba = dir + "/data/pg_hba.conf";
            sh("printf '%s\\n' '" + extra_hba + "' | cat - " + hba + " > " + hba + ".new && mv " + hba + ".new " + hba +
               (as_postgres_ ? " && chown postgres " + hba : ""));
        }
        start();
        guard();
        conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres";
    }
    ~Cluster() {
        stop();
        std::system(("rm -rf " + dir).c_str());
        if (guard_fd_ >= 0) ::close(guard_fd_);  // the guard finds nothing left to do
    }
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    void start() {
        sh(run_as() + pg_bin + "/pg_ctl -D " + dir + "/data -w -l " + dir +
           "/log -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port) + " -k " + dir +
           "\" start > /dev/null");
        running_ = true;
    }
    void stop() noexcept {
        if (!running_) return;
        running_ = false;
        std::system((run_as() + pg_bin + "/pg_ctl -D " + dir + "/data -m fast stop > /dev/null 2>&1").c_str());
    }
    void restart() {
        sh(run_as() + pg_bin + "/pg_ctl -D " + dir + "/data -w -m fast restart -l " + dir + "/log -o \"-c " +
           "listen_addresses=127.0.0.1 -p " + std::to_string(port) + " -k " + dir + "\" > /dev/null");
    }
    /// psql with `sql` on database `db`; returns its output (unaligned, tuples only).
    std::string psql(const std::string& sql, const std::string& db = "postgres") const {
        std::string cmd = std::string(pg_bin) + "/psql -X -q -A -t -h 127.0.0.1 -p " + std::to_string(port) +
                          " -U postgres -d " + db + " -v ON_ERROR_STOP=1 -c \"" + sql + "\" 2>&1";
        std::string out;
        FILE* f = popen(cmd.c_str(), "r");
        char buf[4096];
        for (std::size_t n; f && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
        if (f) pclose(f);
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return out;
    }
    /// A new empty database; returns its connection string.
    std::string database(const std::string& name) {
        psql("CREATE DATABASE " + name);
        return "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=" + name;
    }

    std::string dir, conninfo;
    int port = 0;

private:
    static void sh(const std::string& cmd) {
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    }
    std::string run_as() const { return as_postgres_ ? "runuser -u postgres -- " : ""; }
    static int free_port() {
        int s = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
        ::close(s);
        return ntohs(a.sin_port);
    }
    /// A process that outlives this one if it crashes: it reads a pipe whose write end
    /// only we hold (close-on-exec, so the programs we start do not), and when it reads
    /// the end of it, stops the cluster and removes its directory.
    void guard() {
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) return;
        std::string stop =
            run_as() + pg_bin + "/pg_ctl -D " + dir + "/data -m fast stop > /dev/null 2>&1; rm -rf " + dir;
        pid_t pid = fork();
        if (pid == 0) {
            ::close(ends[1]);
            setsid();  // not in the test's process group: a Ctrl-C or a timeout's kill leaves it to clean up
            char c;
            while (::read(ends[0], &c, 1) > 0) {
            }
            execl("/bin/sh", "sh", "-c", stop.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        ::close(ends[0]);
        guard_fd_ = pid > 0 ? ends[1] : -1;
        if (pid < 0) ::close(ends[1]);
    }

    bool as_postgres_ = false;
    bool running_ = false;
    int guard_fd_ = -1;
};

}  // namespace pgtest

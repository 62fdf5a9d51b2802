#pragma once
// A throwaway PostgreSQL 15 cluster on loopback for tests and benchmarks: initdb into a
// temporary directory (as the postgres user when run as root: initdb refuses root),
// the socket in that directory, a free port; stopped and removed by the destructor,
// and by the signal handlers a test installs. Each test takes a fresh database.

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
        conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres";
    }
    ~Cluster() {
        stop();
        std::system(("rm -rf " + dir).c_str());
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
    bool as_postgres_ = false;
    bool running_ = false;
};

}  // namespace pgtest

// A TCP proxy on loopback between the processes of a test and PostgreSQL, so that a test
// can cut one process off from the database the way a network does
// (test_postgres.cpp). It listens on a free port of 127.0.0.1, prints that port on a
// line of its own, and forwards every connection to 127.0.0.1:TARGET_PORT.
//
//   pg_proxy TARGET_PORT
//
// The test steers it with signals:
//   SIGSTOP, SIGCONT  nothing moves while it is stopped and new connections wait in the
//                     backlog: a network partition, then healed.
//   SIGUSR1           the connections open now go silent for good: nothing more is
//                     forwarded on them either way and nothing is closed; new
//                     connections are forwarded. A NAT or firewall that dropped its state.
//   SIGUSR2           the connections open now are closed at both ends.
// It exits on SIGTERM, and when its parent dies.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

struct Pair {
    int client, server;
    bool silent = false;
};

int connect_to(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<unsigned short>(port));
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(s);
        return -1;
    }
    return s;
}

/// Moves what `from` has to `to`; false when either end is gone.
bool pass(int from, int to) {
    char buf[65536];
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n <= 0) return false;
    for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(to, buf + done, static_cast<size_t>(n - done));
        if (w <= 0) return false;
        done += w;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: pg_proxy TARGET_PORT\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int target = std::atoi(argv[1]);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    int signals = signalfd(-1, &mask, SFD_CLOEXEC);

    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 64) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        std::perror("pg_proxy");
        return 1;
    }
    std::printf("%d\n", ntohs(a.sin_port));
    std::fflush(stdout);

    std::vector<Pair> pairs;
    for (;;) {
        std::vector<pollfd> fds{{signals, POLLIN, 0}, {listener, POLLIN, 0}};
        std::vector<std::size_t> owner;  // fds[2 + k] belongs to pairs[owner[k]]
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            if (pairs[i].silent) continue;
            fds.push_back({pairs[i].client, POLLIN, 0});
            fds.push_back({pairs[i].server, POLLIN, 0});
            owner.push_back(i);
            owner.push_back(i);
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR: a SIGCONT
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo si;
            if (::read(signals, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGTERM) return 0;
                for (Pair& p : pairs) {
                    if (si.ssi_signo == SIGUSR1) p.silent = true;
                    if (si.ssi_signo == SIGUSR2) {
                        ::close(p.client);
                        ::close(p.server);
                        p.client = p.server = -1;
                    }
                }
                std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
                continue;  // the descriptors polled may be gone
            }
        }
        if (fds[1].revents & POLLIN) {
            int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                int s = connect_to(target);
                if (s < 0)
                    ::close(c);
                else
                    pairs.push_back({c, s});
            }
        }
        std::vector<bool> gone(pairs.size(), false);
        for (std::size_t k = 0; k < owner.size(); ++k) {
            if (!fds[2 + k].revents) continue;
            Pair& p = pairs[owner[k]];
            if (gone[owner[k]]) continue;
            bool from_client = fds[2 + k].fd == p.client;
            if (!pass(from_client ? p.client : p.server, from_client ? p.server : p.client)) gone[owner[k]] = true;
        }
        for (std::size_t i = pairs.size(); i-- > 0;) {
            if (!gone[i]) continue;
            ::close(pairs[i].client);
            ::close(pairs[i].server);
            pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
}

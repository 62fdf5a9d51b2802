#!/bin/bash
# The PostgreSQL engine's benchmark legs on a throwaway cluster on loopback:
# W1 fan-out of N empty tasks and W2 a chain of M, decided by a process with workers(0)
# while 2 serving processes (2 local workers each) run the tasks; with PostgreSQL's
# durable defaults and again with fsync=off. Medians of REPS runs, interleaved; the
# database's transactions per task (each engine statement is one) from pg_stat_database.
#   bench/postgres.sh BUILD_DIR [N=10000] [M=1000] [REPS=5]
set -euo pipefail
build=${1:-build}; n=${2:-10000}; m=${3:-1000}; reps=${4:-5}
bin=/usr/lib/postgresql/15/bin
exe="$build/bench/pg_bench"
d=$(mktemp -d /tmp/flowy-bench-XXXXXX)
as=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$d"; as=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$d/data" -A trust -U postgres >/dev/null
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "${as[@]}" "$bin/pg_ctl" -D "$d/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$d"
}
trap cleanup EXIT
db="host=127.0.0.1 port=$port user=postgres dbname=postgres"
commits() { "$bin/psql" -X -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres -c \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for fsync in on off; do
    "${as[@]}" "$bin/pg_ctl" -D "$d/data" -w -l "$d/log" -o "-c listen_addresses=127.0.0.1 -p $port -k $d -c fsync=$fsync" start >/dev/null
    "$exe" "$db" serve & pids+=($!)
    "$exe" "$db" serve & pids+=($!)
    sleep 0.5
    : >"$d/fan"; : >"$d/chain"
    before=$(commits)
    for ((i = 0; i < reps; i++)); do
        "$exe" "$db" fanout "$n" >>"$d/fan"
        "$exe" "$db" chain "$m" >>"$d/chain"
    done
    after=$(commits)
    sleep 0.2
    fan=$(median <"$d/fan"); chain=$(median <"$d/chain")
    python3 - "$fsync" "$n" "$m" "$fan" "$chain" "$before" "$after" "$reps" <<'PY'
import sys
fsync, n, m, fan, chain, before, after, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
tasks = reps * ((n + 1) + m)
print(f"fsync={fsync}: W1 fan-out {n}: {n / fan:,.0f} tasks/s (median {fan:.3f} s); "
      f"W2 chain {m}: {1000 * chain / m:.2f} ms per step (median {chain:.3f} s); "
      f"{(after - before) / tasks:.2f} transactions per task (all processes)")
PY
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    "${as[@]}" "$bin/pg_ctl" -D "$d/data" -m fast stop >/dev/null
done

#!/bin/bash
# The PostgreSQL engine's benchmark legs on a throwaway cluster on loopback:
# W1 fan-out of N empty tasks and W2 a chain of M, decided by a process with workers(0)
# while 2 serving processes (2 local workers each) run the tasks; with PostgreSQL's
# durable defaults and again with fsync=off. Medians of REPS runs, interleaved; the
# database's transactions per task (each engine statement is one) from pg_stat_database.
#   bench/postgres.sh BUILD_DIR [N=10000] [M=1000] [REPS=5]
set -euo pipefail
build=${1:-build}; n=${2:-10000}; m=${3:-1000}; reps=${4:-5}
exe="$build/bench/pg_bench"
# shellcheck source=tools/pg_cluster.sh
. "$(dirname "$0")/../tools/pg_cluster.sh"
pg_init
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pg_remove
}
trap cleanup EXIT
db=$PG_CONNINFO
commits() { "$PG_BIN/psql" -X -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for fsync in on off; do
    pg_start -c fsync=$fsync
    "$exe" "$db" serve & pids+=($!)
    "$exe" "$db" serve & pids+=($!)
    sleep 0.5
    : >"$PG_DIR/fan"; : >"$PG_DIR/chain"
    before=$(commits)
    for ((i = 0; i < reps; i++)); do
        "$exe" "$db" fanout "$n" >>"$PG_DIR/fan"
        "$exe" "$db" chain "$m" >>"$PG_DIR/chain"
    done
    after=$(commits)
    sleep 0.2
    fan=$(median <"$PG_DIR/fan"); chain=$(median <"$PG_DIR/chain")
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
    pg_stop
done

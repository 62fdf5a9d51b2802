#!/bin/bash
# The PostgreSQL engine's benchmark legs on a throwaway cluster on loopback:
# W1 fan-out of N empty tasks and W2 a chain of M, decided by a process with workers(0)
# while 2 serving processes (2 local workers each) run the tasks; with PostgreSQL's
# durable defaults and again with fsync=off. Medians of REPS runs, interleaved; the
# database's transactions per task (each engine statement is one) from pg_stat_database.
# The peer, run between them in the first round: Dask's distributed scheduler
# (python3-distributed, a LocalCluster of 2 worker processes; skipped with a message
# when the package is missing). Then, with the durable defaults, how long a takeover
# takes after the decider is SIGKILLed (takeover(), below).
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
sql() { "$PG_BIN/psql" -X -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }
# Takeover: a W2 chain's decider (the default lease, 5 s) is SIGKILLed 1 s into the run;
# one of the serving processes takes the execution over once the lease lapses and goes
# on. Measured on the database's clock: from the kill to the first task the new decider
# queues. REPS rounds.
takeover() {
    local on=() dec id kill_us q_us status
    for ((i = 0; i < reps; i++)); do
        "$exe" "$db" chain "$m" >/dev/null 2>&1 & dec=$!
        sleep 1
        kill -KILL "$dec"
        kill_us=$(sql "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint")
        wait "$dec" 2>/dev/null || true
        id=$(sql "SELECT max(id) FROM flowy.executions")
        for ((k = 0; k < 300; k++)); do  # at most 30 s
            status=$(sql "SELECT status FROM flowy.executions WHERE id = $id")
            [ "$status" = succeeded ] && break
            sleep 0.1
        done
        [ "$status" = succeeded ] || { echo "bench: the execution was not finished after its decider was killed" >&2; return 1; }
        q_us=$(sql "SELECT (extract(epoch FROM min(queued_at)) * 1e6)::bigint FROM flowy.tasks
                    WHERE execution = $id AND queued_at > to_timestamp($kill_us / 1e6)")
        on+=("$(((q_us - kill_us) / 1000))")
    done
    echo "takeover after SIGKILL of the decider (lease 5 s): the execution went on (its first new task" \
        "queued) after $(printf '%s\n' "${on[@]}" | median) ms (median of $reps; each: ${on[*]} ms)"
}
here=$(dirname "$0")
dask=1
/usr/bin/python3 -c 'import distributed' 2>/dev/null || {
    dask=0
    echo "bench: Dask's distributed scheduler is not installed (apt-get install python3-distributed): skipping its leg" >&2
}
peer() { /usr/bin/python3 "$here/peer.py" distributed "$1" "$2" 2>/dev/null |
    python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["wall_s"])'; }
: >"$PG_DIR/commits"
for fsync in on off; do
    pg_start -c fsync=$fsync
    "$exe" "$db" serve & pids+=($!)
    "$exe" "$db" serve & pids+=($!)
    sleep 0.5
    : >"$PG_DIR/fan"; : >"$PG_DIR/chain"; : >"$PG_DIR/dfan"; : >"$PG_DIR/dchain"
    for ((i = 0; i < reps; i++)); do
        before=$(commits)
        "$exe" "$db" fanout "$n" >>"$PG_DIR/fan"
        "$exe" "$db" chain "$m" >>"$PG_DIR/chain"
        after=$(commits)
        echo $((after - before)) >>"$PG_DIR/commits"
        if ((dask)) && [ "$fsync" = on ]; then
            peer fanout "$n" >>"$PG_DIR/dfan"
            peer chain "$m" >>"$PG_DIR/dchain"
        fi
    done
    sleep 0.2
    fan=$(median <"$PG_DIR/fan"); chain=$(median <"$PG_DIR/chain"); commits=$(median <"$PG_DIR/commits")
    dfan=$(median <"$PG_DIR/dfan"); dchain=$(median <"$PG_DIR/dchain")
    : >"$PG_DIR/commits"
    python3 - "$fsync" "$n" "$m" "$fan" "$chain" "$commits" "${dfan:-0}" "${dchain:-0}" <<'PY'
import sys
fsync, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fan, chain, commits, dfan, dchain = (float(x) for x in sys.argv[4:9])
print(f"fsync={fsync}: W1 fan-out {n}: {n / fan:,.0f} tasks/s (median {fan:.3f} s); "
      f"W2 chain {m}: {1000 * chain / m:.2f} ms per step (median {chain:.3f} s); "
      f"{commits / (n + 1 + m):.2f} transactions per task (all processes, median)")
if dfan > 0:
    print(f"  Dask distributed (LocalCluster, 2 worker processes), same runs interleaved: "
          f"W1 {n / dfan:,.0f} tasks/s (flowy {dfan / fan:.2f}x); W2 {1000 * dchain / m:.2f} ms per step "
          f"(flowy {dchain / chain:.2f}x)")
PY
    if [ "$fsync" = on ]; then takeover; fi
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    pg_stop
done

#!/usr/bin/env python3
"""Runs flowy and its peers on the same workloads, interleaved (flowy, peer, flowy,
peer, ...), after a warm-up, and prints medians and ratios.

    tools/dev bench [--reps 5] [--only W1,W2] [--systems flowy,traced,memcpy,memcpy-reused,ppe,pool,dask]
                    [--baseline OTHER_BUILD]

`traced` is flowy writing a trace (FLOWY_TRACE), measured on W1 and W2 only: its ratio
to flowy is what tracing costs. `memcpy` and `memcpy-reused` are W5's reference, the
payload copied twice in one process (into new buffers, or into buffers touched before):
their column is flowy's time over theirs. `--baseline DIR` adds the legs `baseline` and
`baseline-traced`: flowy (untraced and traced) from another build tree, such as one of
the commit before a change, interleaved with this one; their ratio is baseline / flowy.

W6 is the map/reduce samples against their ideal. W7 is tasks of mixed lengths on 2
workers against the ideal (the larger of the longest chain and the total work over the
workers), interleaved with flowy's threads executor, ProcessPoolExecutor and
multiprocessing.Pool (one task per request): `mixed` is 1,000 independent tasks
sleeping log-normal durations (median 1 ms, 10 µs to 100 ms, seeded), `long-and-short`
a 1 s task beside a 50 ms one that is read, 200 tiny tasks reduced and a chain of 30
steps of 20 ms. Every system's tasks sleep with a timer slack of 1 ns.

Writes JSON lines (one per measurement) and a Markdown summary to bench/results/.
The header records nproc, CPU model and kernel: never mix figures from two machines.
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# (id, workload, N, what the per-task figure means)
WORKLOADS = [
    ("W1", "fanout", 1000), ("W1", "fanout", 10000), ("W1", "fanout", 100000),
    ("W2", "chain", 100), ("W2", "chain", 1000), ("W2", "chain", 10000),
    ("W3", "batches", 50),
    ("W4", "startup", 20),
    ("W5", "payload", 1024), ("W5", "payload", 1 << 20), ("W5", "payload", 64 << 20),
]
# W6: the map/reduce samples, their ideal duration in time units (see samples/*.cpp).
MAP_REDUCE = [("naive_map_reduce", 10.5), ("finish_order_map_reduce", 8.5), ("parallel_map_reduce", 8.0)]
UNIT_MS = 20
# W7: (workload, N); the systems it runs on.
MIXED = [("mixed", 1000), ("long-and-short", 200)]
MIXED_SYSTEMS = ["flowy", "threads", "ppe", "pool"]
DURATIONS_PATH = os.path.join("/tmp", f"flowy-bench-durations-{os.getpid()}.txt")

PEERS = {"traced": "flowy traced", "memcpy": "memcpy x2 (new buffers)", "memcpy-reused": "memcpy x2 (reused)",
         "ppe": "ProcessPoolExecutor", "pool": "multiprocessing.Pool", "dask": "dask processes",
         "baseline": "flowy baseline", "threads": "flowy threads", "baseline-traced": "flowy baseline traced"}
TRACED_WORKLOADS = ("W1", "W2")
BASELINE = None  # --baseline: another build tree
# The references, not peers: W5's payload copied twice in one process, and nothing else.
REFERENCES = ("memcpy", "memcpy-reused")
TRACE_PATH = os.path.join("/tmp", f"flowy-bench-{os.getpid()}.trace")


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}


def run_one(system, build, workload, n):
    env = dict(os.environ)
    env.pop("FLOWY_TRACE", None)
    if system in REFERENCES:
        cmd = [os.path.join(build, "bench", "flowy_bench"), system, str(n)]
    elif system == "greedy":
        cmd = [os.path.join(build, "bench", "flowy_bench"), workload, str(n)]
    elif system in ("flowy", "threads", "traced", "baseline", "baseline-traced"):
        tree = BASELINE if system.startswith("baseline") else build
        cmd = [os.path.join(tree, "bench", "flowy_bench"), workload, str(n)]
        if system == "threads":
            cmd += ["--executor", "threads"]
        if system.endswith("traced"):
            env["FLOWY_TRACE"] = TRACE_PATH
    else:
        cmd = [PY, os.path.join(HERE, "peer.py"), system, workload, str(n)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratio(s, med):
    """A peer's time over flowy's; flowy's over a reference's (how far it is from a plain copy)."""
    if s in REFERENCES:
        return f"{med['flowy'] / med[s]:.1f}"
    precise = s == "traced" or s.startswith("baseline")
    return f"{med[s] / med['flowy']:.2f}" if precise else f"{med[s] / med['flowy']:.1f}"


def run_map_reduce(build, reps):
    """W6: each sample's duration against its ideal; no peer (the ideal is the reference)."""
    rows = []
    for name, ideal in MAP_REDUCE:
        exe = os.path.join(build, "samples", name)
        subprocess.run([exe, "--unit-ms", str(UNIT_MS)], capture_output=True, check=True)  # warm-up
        units = []
        for _ in range(reps):
            out = subprocess.run([exe, "--unit-ms", str(UNIT_MS)], capture_output=True, text=True, check=True)
            lines = out.stdout.strip().splitlines()
            assert lines[-1] == "91", f"{name} printed {lines[-1]}"
            units.append(float(lines[0].split()[1]))
        med = statistics.median(units)
        rows.append((name, ideal, med, 100 * (med - ideal) / ideal))
        print(f"W6 {name:24} ideal {ideal:4.1f} units, median {med:.3f} ({rows[-1][3]:+.1f}%)", flush=True)
    return rows


def durations():
    """W7 mixed's task lengths in µs: log-normal, median 1 ms, cut to 10 µs .. 100 ms, seeded."""
    r = random.Random(7)
    return [min(100000, max(10, int(r.lognormvariate(math.log(1000), 1.5)))) for _ in range(1000)]


def run_mixed(build, reps, jsonl):
    """W7: each system's wall time against the ideal, interleaved."""
    ds = durations()
    with open(DURATIONS_PATH, "w") as f:
        f.write("\n".join(map(str, ds)) + "\n")
    os.environ["FLOWY_BENCH_DURATIONS"] = DURATIONS_PATH
    ideals = {"mixed": max(max(ds), sum(ds) / 2) / 1e3, "long-and-short": 1000.0}  # ms
    rows = []
    try:
        for workload, n in MIXED:
            systems = MIXED_SYSTEMS + (["greedy"] if workload == "mixed" else [])
            walls = {s: [] for s in systems}
            for s in systems:
                run_one(s, build, workload, n)  # warm-up
            for rep in range(reps):
                for s in systems:
                    r = run_one(s, build, workload, n) if s != "greedy" else run_one(s, build, "mixed-greedy", n)
                    walls[s].append(r["wall_s"] * 1e3)
                    jsonl.write(json.dumps({"system": s, "workload": "W7", "name": workload, "n": n, "rep": rep,
                                            "wall_ms": walls[s][-1], "ideal_ms": ideals[workload]}) + "\n")
            med = {s: statistics.median(walls[s]) for s in systems}
            rows.append((workload, n, ideals[workload], med))
            print(f"W7 {workload:15} N={n:<5} ideal {ideals[workload]:7.1f} ms" +
                  "".join(f" {s}={med[s]:7.1f} ms ({med[s] / ideals[workload]:.3f}x)" for s in systems), flush=True)
    finally:
        os.remove(DURATIONS_PATH)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated workload ids (W1..W7) or name:N")
    ap.add_argument("--systems", default="flowy,traced,memcpy,memcpy-reused,ppe,pool,dask")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--baseline", default="", help="another build tree to compare with (legs baseline, baseline-traced)")
    args = ap.parse_args()
    global BASELINE
    if args.baseline:
        BASELINE = args.baseline
        if "--systems" not in sys.argv:
            args.systems += ",baseline,baseline-traced"

    systems = args.systems.split(",")
    if "dask" in systems and subprocess.run([PY, "-c", "import dask"], capture_output=True).returncode != 0:
        print("bench: dask is not installed (apt-get install python3-dask): skipping that leg", file=sys.stderr)
        systems.remove("dask")
    wanted = [w for w in WORKLOADS
              if not args.only or w[0] in args.only.split(",") or f"{w[1]}:{w[2]}" in args.only.split(",")]

    info = machine()
    os.makedirs(args.out, exist_ok=True)
    jsonl = open(os.path.join(args.out, "latest.jsonl"), "w")
    head = f"nproc={info['nproc']} cpu={info['cpu']} kernel={info['kernel']} date={info['date']}"
    print(head)
    jsonl.write(json.dumps({"machine": info}) + "\n")

    rows = []
    for wid, workload, n in wanted:
        here = [s for s in systems
                if (not s.endswith("traced") or wid in TRACED_WORKLOADS) and (s not in REFERENCES or wid == "W5")]
        samples = {s: [] for s in here}
        for s in here:  # warm-up, not recorded
            run_one(s, args.build, workload, n)
        for rep in range(args.reps):
            for s in here:  # interleaved
                r = run_one(s, args.build, workload, n)
                samples[s].append(r)
                jsonl.write(json.dumps({"system": s, "workload": wid, "name": workload, "n": n, "rep": rep,
                                        "wall_s": r["wall_s"], "per_task_us": r["per_task_us"],
                                        "peak_rss_kib": r["peak_rss_kib"]}) + "\n")
                jsonl.flush()
        med = {s: statistics.median(x["per_task_us"] for x in samples[s]) for s in here}
        wall = {s: statistics.median(x["wall_s"] for x in samples[s]) for s in here}
        rss = {s: statistics.median(x["peak_rss_kib"] for x in samples[s]) for s in here}
        rows.append((wid, workload, n, med, wall, rss))
        line = f"{wid} {workload:8} N={n:<9}" + "".join(
            f" {s}={med[s]:10.2f}µs" + (f" (x{ratio(s, med)})" if s != "flowy" and "flowy" in med else "")
            for s in here)
        print(line, flush=True)

    md = [f"# Benchmarks, {info['date']}", "", f"Machine: {info['nproc']} cores, {info['cpu']}, "
          f"kernel {info['kernel']}. Medians of {args.reps} interleaved repetitions after a warm-up; "
          "per-task µs (for W4: per start-up; W5: per round trip); ratio = peer / flowy, and flowy / reference "
          "for the memcpy references.", "",
          "| workload | N | " + " | ".join(f"{s} µs/task" for s in systems) + " | " +
          " | ".join(f"flowy / {PEERS[s]}" if s in REFERENCES else f"{PEERS[s]} / flowy"
                     for s in systems if s != "flowy") + " | flowy peak RSS |",
          "|---|---:|" + "---:|" * (2 * len(systems) - (1 if "flowy" in systems else 0)) + "---:|"]
    if not rows:
        md = md[:2] + [f"Machine: {info['nproc']} cores, {info['cpu']}, kernel {info['kernel']}."]
    for wid, workload, n, med, wall, rss in rows:
        ratios = [f"{ratio(s, med)}x" if s in med and "flowy" in med else "–" for s in systems if s != "flowy"]
        md.append(f"| {wid} {workload} | {n} | " +
                  " | ".join(f"{med[s]:.2f}" if s in med else "–" for s in systems) + " | " +
                  " | ".join(ratios) + f" | {rss.get('flowy', 0) / 1024:.1f} MiB |")
    if not args.only or "W6" in args.only.split(","):
        mr = run_map_reduce(args.build, args.reps)
        md += ["", f"W6, the map/reduce samples with a {UNIT_MS} ms time unit (median of {args.reps} runs):", "",
               "| sample | ideal (units) | measured (units) | over ideal |", "|---|---:|---:|---:|"]
        md += [f"| {n} | {i:.1f} | {m:.3f} | {p:+.1f}% |" for n, i, m, p in mr]
        for n, i, m, p in mr:
            jsonl.write(json.dumps({"system": "flowy", "workload": "W6", "name": n, "ideal_units": i,
                                    "median_units": m, "unit_ms": UNIT_MS}) + "\n")
    if not args.only or "W7" in args.only.split(","):
        mixed = run_mixed(args.build, args.reps, jsonl)
        md += ["", f"W7, tasks of mixed lengths on 2 workers (median wall time of {args.reps} interleaved runs; "
               "in brackets, over the ideal):", "",
               "| workload | N | ideal ms | " + " | ".join(f"{PEERS.get(s, 'flowy processes')} ms" for s in MIXED_SYSTEMS)
               + " | 2 threads, greedy (reference) ms | processes / threads | processes / reference |",
               "|---|---:|---:|" + "---:|" * (len(MIXED_SYSTEMS) + 3)]
        md += [f"| {w} | {n} | {ideal:.1f} | " +
               " | ".join(f"{med[s]:.1f} ({med[s] / ideal:.3f}x)" for s in MIXED_SYSTEMS + ["greedy"] if s in med) +
               (" | –" if "greedy" not in med else "") + f" | {med['flowy'] / med['threads']:.3f} | " +
               (f"{med['flowy'] / med['greedy']:.3f} |" if "greedy" in med else "– |") for w, n, ideal, med in mixed]
        md += ["", "The reference runs the same sleeps on 2 threads taking the next task from a shared counter: "
               "what this machine's sleeps cost with no scheduler in between."]
    if os.path.exists(TRACE_PATH):
        os.remove(TRACE_PATH)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"\nwrote {args.out}/latest.jsonl and latest.md")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""W8: build steps that are programs. flowy's command activities against the build
tools people use, on the same work: 200 independent `true` commands on 2 slots, and a
chain of 50 (each after the one before). Legs, interleaved, after a warm-up:

  flowy         flowy_bench commands|command-chain (run_command on 2 worker processes)
  make -j2      a Makefile of phony targets whose recipe is `true` (make execs it itself)
  ninja -j2     a build.ninja of edges whose command is `true` (ninja runs /bin/sh -c)
  posix_spawn   flowy_bench spawn|spawn-chain: posix_spawnp and wait, 2 at a time, no engine

Each leg is timed from outside, start to exit, so every tool's own start is in its
figure. Prints medians per command and ratios to flowy; writes bench/results/commands.md.

    bench/commands.py [--build build] [--reps 11]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [("independent", 200), ("chain", 50)]


def makefile(shape, n):
    names = [f"s{i}" for i in range(n)]
    lines = [".PHONY: all " + " ".join(names), "all: " + " ".join(names)]
    for i, name in enumerate(names):
        dep = names[i - 1] if shape == "chain" and i > 0 else ""
        lines += [f"{name}: {dep}", "\ttrue"]
    return "\n".join(lines) + "\n"


def ninjafile(shape, n):
    lines = ["rule t", "  command = true", ""]
    for i in range(n):
        dep = f" || s{i - 1}" if shape == "chain" and i > 0 else ""
        lines.append(f"build s{i}: t{dep}")  # the output is never made: the edge always runs
    lines.append("default " + " ".join(f"s{i}" for i in range(n)))
    return "\n".join(lines) + "\n"


def timed(cmd, cwd=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.decode()[-300:]}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    bench = os.path.join(args.build, "bench", "flowy_bench")
    tmp = tempfile.mkdtemp(prefix="flowy-w8-")
    rows = []
    try:
        for shape, n in SHAPES:
            d = os.path.join(tmp, shape)
            os.makedirs(d)
            open(os.path.join(d, "Makefile"), "w").write(makefile(shape, n))
            open(os.path.join(d, "build.ninja"), "w").write(ninjafile(shape, n))
            legs = {
                "flowy": [bench, "commands" if shape == "independent" else "command-chain", str(n)],
                "make -j2": ["make", "-s", "-j2", "-C", d],
                "ninja -j2": ["ninja", "-j2", "-C", d, "--quiet"] if shutil.which("ninja") else None,
                "posix_spawn": [bench, "spawn" if shape == "independent" else "spawn-chain", str(n)],
            }
            legs = {k: v for k, v in legs.items() if v and shutil.which(v[0]) or (v and os.path.exists(v[0]))}
            times = {k: [] for k in legs}
            for k, cmd in legs.items():  # warm-up
                timed(cmd)
            for _ in range(args.reps):
                for k, cmd in legs.items():  # interleaved
                    times[k].append(timed(cmd))
            med = {k: statistics.median(v) * 1e3 / n for k, v in times.items()}
            rows.append((shape, n, med))
            print(f"W8 {shape:11} N={n:<4}" + "".join(
                f"  {k}={m:.2f} ms" + (f" (x{m / med['flowy']:.2f})" if k != "flowy" else "") for k, m in med.items()),
                flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = list(rows[0][2])
    md = ["# W8: commands as build steps", "",
          f"Median per command (wall time of the whole tool, start to exit, over N) of {args.reps} interleaved "
          "repetitions after a warm-up; ratio = peer / flowy (below 1: the peer is faster).", "",
          "| shape | N | " + " | ".join(f"{k} ms" for k in names) + " | " +
          " | ".join(f"{k} / flowy" for k in names if k != "flowy") + " |",
          "|---|---:|" + "---:|" * (2 * len(names) - 1)]
    for shape, n, med in rows:
        md.append(f"| {shape} | {n} | " + " | ".join(f"{med[k]:.2f}" for k in names) + " | " +
                  " | ".join(f"{med[k] / med['flowy']:.2f}" for k in names if k != "flowy") + " |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "commands.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {args.out}/commands.md")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The peers' side of the benchmarks: the same workloads as flowy_bench, one per
invocation, one JSON line out.
    peer.py SYSTEM WORKLOAD N      SYSTEM: ppe (ProcessPoolExecutor), pool (multiprocessing.Pool), dask,
                                   distributed (Dask's distributed scheduler, LocalCluster)
"""
import ctypes
import json
import os
import multiprocessing as mp
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

WORKERS = 2


def empty(x):
    return x


def join(xs):
    return sum(xs)


def echo(s):
    return s


SLACK = []


def precise_sleep(seconds):
    """As flowy_bench's tasks sleep: with a timer slack of 1 ns, not the default 50 µs."""
    if not SLACK:
        SLACK.append(ctypes.CDLL(None).prctl(29, 1, 0, 0, 0))  # PR_SET_TIMERSLACK
    time.sleep(seconds)


def nap_us(us):
    precise_sleep(us / 1e6)
    return us


def nap_ms(ms):
    precise_sleep(ms / 1e3)
    return ms


def add(a, b):
    return a + b


def step(acc):
    precise_sleep(0.02)
    return acc + 1


def durations():
    with open(os.environ["FLOWY_BENCH_DURATIONS"]) as f:
        return [int(x) for x in f.read().split()]


def w7(workload, n, submit):
    """W7 on a pool whose submit(fn, *args) returns something with .result(): the same tasks
    as flowy_bench's, the reduce pairwise as results finish, the chain one step at a time."""
    if workload == "mixed":
        ds = durations()
        assert len(ds) == n
        fs = [submit(nap_us, d) for d in ds]
        assert sum(f.result() for f in fs) == sum(ds)
        return n + 1
    big = submit(nap_ms, 1000)
    submit(nap_ms, 50).result()
    level = [submit(empty, i) for i in range(n)]
    while len(level) > 1:  # a tree of adds, each level submitted as the one below finishes
        vals = [f.result() for f in level]
        level = [submit(add, vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)] + (
            [submit(empty, vals[-1])] if len(vals) % 2 else [])
    acc = level[0].result()
    for _ in range(30):
        acc = submit(step, acc).result()
    assert submit(add, acc, big.result()).result() == n * (n - 1) // 2 + 1030
    return n + 62


def run_ppe(workload, n):
    ctx = mp.get_context("fork")
    if workload == "startup":
        for _ in range(n):
            with ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
                assert ex.submit(empty, 7).result() == 7
        return n
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
        if workload in ("mixed", "long-and-short"):
            return w7(workload, n, ex.submit)
        if workload == "fanout":
            fs = [ex.submit(empty, i) for i in range(n)]
            assert ex.submit(join, [f.result() for f in fs]).result() == n * (n - 1) // 2
            return n + 1
        if workload == "chain":
            acc = ex.submit(empty, 0).result()
            for _ in range(1, n):
                acc = ex.submit(empty, acc).result()
            return n
        if workload == "batches":
            total = 0
            for _ in range(n):
                fs = [ex.submit(empty, i) for i in range(20)]
                total += ex.submit(join, [f.result() for f in fs]).result()
            assert total == n * 190
            return n * 21
        if workload == "payload":
            assert len(ex.submit(echo, "x" * n).result()) == n
            return 1
    raise SystemExit(f"unknown workload {workload}")


def run_pool(workload, n):
    ctx = mp.get_context("fork")
    if workload == "startup":
        for _ in range(n):
            with ctx.Pool(WORKERS) as p:
                assert p.apply_async(empty, (7,)).get() == 7
        return n
    with ctx.Pool(WORKERS) as p:
        if workload in ("mixed", "long-and-short"):  # apply_async: one task per request (chunksize 1)
            class Async:
                def __init__(self, r):
                    self.r = r

                def result(self):
                    return self.r.get()
            return w7(workload, n, lambda fn, *a: Async(p.apply_async(fn, a)))
        if workload == "fanout":
            rs = [p.apply_async(empty, (i,)) for i in range(n)]
            assert p.apply_async(join, ([r.get() for r in rs],)).get() == n * (n - 1) // 2
            return n + 1
        if workload == "chain":
            acc = p.apply_async(empty, (0,)).get()
            for _ in range(1, n):
                acc = p.apply_async(empty, (acc,)).get()
            return n
        if workload == "batches":
            total = 0
            for _ in range(n):
                rs = [p.apply_async(empty, (i,)) for i in range(20)]
                total += p.apply_async(join, ([r.get() for r in rs],)).get()
            assert total == n * 190
            return n * 21
        if workload == "payload":
            assert len(p.apply_async(echo, ("x" * n,)).get()) == n
            return 1
    raise SystemExit(f"unknown workload {workload}")


def run_dask(workload, n):
    import dask
    from dask import delayed

    def compute(x):
        return dask.compute(x, scheduler="processes", num_workers=WORKERS)[0]

    if workload == "startup":
        for _ in range(n):
            assert compute(delayed(empty)(7)) == 7
        return n
    if workload == "fanout":
        assert compute(delayed(join)([delayed(empty)(i) for i in range(n)])) == n * (n - 1) // 2
        return n + 1
    if workload == "chain":
        acc = delayed(empty)(0)
        for _ in range(1, n):
            acc = delayed(empty)(acc)
        assert compute(acc) == 0
        return n
    if workload == "batches":
        total = 0
        for _ in range(n):
            total += compute(delayed(join)([delayed(empty)(i) for i in range(20)]))
        assert total == n * 190
        return n * 21
    if workload == "payload":
        assert len(compute(delayed(echo)("x" * n))) == n
        return 1
    raise SystemExit(f"unknown workload {workload}")


def run_distributed(workload, n):
    """Dask's distributed scheduler: a LocalCluster of WORKERS worker processes (one
    thread each), as a Python user would run it. Returns (tasks, seconds): the
    cluster's start and stop are not timed."""
    from dask import delayed
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        t0 = time.perf_counter()
        if workload == "fanout":
            assert client.compute(delayed(join)([delayed(empty)(i) for i in range(n)])).result() == n * (n - 1) // 2
            return n + 1, time.perf_counter() - t0
        if workload == "chain":
            acc = delayed(empty)(0)
            for _ in range(1, n):
                acc = delayed(empty)(acc)
            assert client.compute(acc).result() == 0
            return n, time.perf_counter() - t0
    raise SystemExit(f"unknown workload {workload}")


def main():
    system, workload, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.setrecursionlimit(max(10000, 4 * n))
    t0 = time.perf_counter()
    tasks = {"ppe": run_ppe, "pool": run_pool, "dask": run_dask, "distributed": run_distributed}[system](workload, n)
    wall = time.perf_counter() - t0
    if isinstance(tasks, tuple):  # the peer timed itself (without its cluster's start)
        tasks, wall = tasks
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall_s": wall, "tasks": tasks, "per_task_us": wall * 1e6 / tasks, "peak_rss_kib": rss}))


if __name__ == "__main__":
    main()

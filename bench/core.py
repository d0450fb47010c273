"""Core benchmark: memory:// and sqlite:// with no-op tasks, one worker, in one process.

Reproduce:  .venv/bin/python bench/core.py            (3 rounds, 20,000 jobs; about a minute)
            .venv/bin/python bench/core.py --quick    (1 round, 5,000 jobs)

Rows, each the median of the rounds:
- enqueue one: jobs/s of sequential `await task.aenqueue(...)` calls (one broker write each);
- enqueue bulk: jobs/s of `aenqueue_many` in batches of 1,000;
- drain: jobs/s for one worker (concurrency 64) to run 20,000 queued async no-op jobs, clock from the
  worker's start to its burst exit (so its start-up and the final idle check are included);
- CPU s / 10k: the process's CPU seconds during the drain, per 10,000 jobs;
- round trip p50 / p99: enqueue one job and await its result, with a worker running, 1,000 times.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qaio import App, Worker


def build(url: str) -> tuple[App, object]:
    app = App(url, result_ttl=600)

    @app.task(name="noop")
    async def noop(i: int) -> None:
        return None

    return app, noop


async def one_round(url: str, jobs: int) -> dict[str, float]:
    app, noop = build(url)
    n_one = min(jobs, 5_000)
    start = time.perf_counter()
    for i in range(n_one):
        await noop.aenqueue(i=i)  # type: ignore[attr-defined]
    enqueue_one = n_one / (time.perf_counter() - start)
    await Worker(app, burst=True, concurrency=64).run()  # empty the queue again

    start = time.perf_counter()
    for offset in range(0, jobs, 1000):
        await noop.aenqueue_many([{"i": i} for i in range(offset, min(offset + 1000, jobs))])  # type: ignore[attr-defined]
    enqueue_bulk = jobs / (time.perf_counter() - start)

    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    stats = await Worker(app, burst=True, concurrency=64).run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert stats.succeeded == jobs, stats

    worker = Worker(app, concurrency=64)
    running = asyncio.create_task(worker.run())
    latencies = []
    for i in range(1000):
        start = time.perf_counter()
        job = await noop.aenqueue(i=i)  # type: ignore[attr-defined]
        await job.aresult(timeout=10)
        latencies.append(time.perf_counter() - start)
    worker.stop()
    await running
    await app.aclose()
    latencies.sort()
    return {
        "enqueue one (jobs/s)": enqueue_one,
        "enqueue bulk (jobs/s)": enqueue_bulk,
        "drain (jobs/s)": jobs / wall,
        "CPU s / 10k jobs": cpu / jobs * 10_000,
        "round trip p50 (ms)": latencies[len(latencies) // 2] * 1000,
        "round trip p99 (ms)": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def measure(jobs: int, rounds: int, folder: Path | None = None) -> dict[str, dict[str, float]]:
    """{"memory"|"sqlite": {metric: median over the rounds}}; the SQLite files go into folder (a new
    temporary directory by default). Also what bench/core_peers.py calls."""
    folder = folder or Path(tempfile.mkdtemp(prefix="qaio-bench-"))
    results: dict[str, dict[str, float]] = {}
    for name in ("memory", "sqlite"):
        samples = []
        for number in range(rounds):
            url = "memory://" if name == "memory" else f"sqlite:///{folder / f'bench{number}.db'}"
            samples.append(asyncio.run(one_round(url, jobs)))
        results[name] = {key: statistics.median(r[key] for r in samples) for key in samples[0]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds = 5_000, 1
    results = measure(args.jobs, args.rounds)
    python = sys.version.split()[0]
    print(f"qaio core benchmark: {args.jobs:,} no-op jobs, median of {args.rounds} round(s), Python {python}")
    print("| metric | memory:// | sqlite:// |\n|---|---:|---:|")
    for key in results["memory"]:
        cells = [results[name][key] for name in ("memory", "sqlite")]
        fmt = "{:,.0f}" if "jobs/s" in key else "{:.2f}"
        print(f"| {key} | " + " | ".join(fmt.format(c) for c in cells) + " |")


if __name__ == "__main__":
    main()

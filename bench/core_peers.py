"""Core benchmark with peers: qaio's memory:// and sqlite:// rows next to task queues with an embedded
(no-server) broker, no-op tasks, one worker process each, in one run.

Reproduce (stdlib only, plain ``python3`` from the repo root; qaio's rows use ``.venv``)::

    python3 bench/core_peers.py             # 20,000 jobs, 3 rounds (about 6 minutes on 2 cores)
    python3 bench/core_peers.py --quick     # 5,000 jobs, 1 round, to iterate
    python3 bench/core_peers.py --systems huey-sqlitehuey,funboost-sqlite-queue --rounds 1

The first run creates ``.bench/venvs/core-<peer>`` per peer and pip-installs its pinned requirements
(reused while ``core-peers-marker.json`` in it matches the pins; the ``core-`` prefix keeps them apart
from bench/redis_peers.py's venvs, which pin other extras). The table goes to stdout and to
``.bench/results/core_peers.md`` (raw rounds in ``core_peers.json``; every run, --quick too, overwrites
them); worker logs to
``.bench/logs/core_peers``; broker files live in ``.bench/run/core_peers`` and are removed after each
round. Rounds are interleaved (round 1 of every system, then round 2, ...) so that load from other
work on the machine spreads over all systems; each cell is the median over rounds.

Rows:

* ``qaio memory://`` and ``qaio sqlite://``: bench/core.py's ``measure()`` for one round per round,
  unchanged: worker in the producer's process, drain clocked from the worker's start to its burst exit
  (start-up and final idle check included), CPU = that process's CPU.
* ``qaio sqlite:// (worker process)`` and every peer: the producer (``bench/core_peers/drive.py``)
  and ONE worker process started with the system's own CLI or API, in its venv. Each job appends one
  byte to a file (opened once per process, ``os.write`` of 1 byte, no fsync); this script polls the
  file's size every 2 ms. The drain clock starts when the first byte lands (start-up and imports
  excluded) and stops when byte N does: drain = (N - 1) / (t_N - t_1). Worker CPU is utime+stime of
  the worker's whole process tree (live descendants plus reaped children) from /proc, between the same
  two instants.
* MemoryHuey has no cross-process broker, so its real Consumer runs inside the producer's process
  (like qaio memory://) and that process's CPU is counted; its drain is clocked by the file all the same.

Columns: enqueue one = sequential one-job enqueue calls (5,000 at most, like core.py); enqueue bulk =
the peer's bulk API in batches of 1,000 (n/a without one; the drain's backlog is then filled one call
at a time); drain and CPU as above; round trip = sequential "enqueue one job, block on the system's
own result API" with the worker idle, 1,000 at most and at most 8 s of them, p50/p99 by nearest rank
(after one warm-up). "vs qaio sqlite" = drain / qaio sqlite://'s drain in the same run.

Not here: persist-queue alone (a queue, not a task queue); Dramatiq, RQ, arq, SAQ, taskiq (no embedded
broker: Redis/RabbitMQ servers, or Dramatiq's in-process StubBroker); Procrastinate (PostgreSQL);
Django-Q2's ORM broker (needs a Django project; not attempted).

Bounded: each subprocess has a timeout and its whole process group is killed after it (and a worker
is always killed at the end of its phase); a system whose phase fails shows n/a with the reason under
the table. ``--budget`` (seconds) stops starting new rounds once spent, so the run ends in ~10 min.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from _procs import cpu_seconds, file_size, tree

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = ROOT / "bench" / "core_peers"
WORK = ROOT / ".bench"
VENVS = WORK / "venvs"
RESULTS = WORK / "results"
LOGS = WORK / "logs" / "core_peers"
RUN = WORK / "run" / "core_peers"
QAIO_VENV = ROOT / ".venv"

INSTALL_TIMEOUT_S = 600
QAIO_CORE_TIMEOUT_S = 300
PRODUCER_TIMEOUT_S = 240
FIRST_BYTE_TIMEOUT_S = 60
STALL_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 300
RT_MAX, RT_SECONDS = 1000, 8.0
ONE_MAX = 5000
POLL_S = 0.002

ONE, BULK, DRAIN, CPU, P50, P99 = (
    "enqueue one (jobs/s)",
    "enqueue bulk (jobs/s)",
    "drain (jobs/s)",
    "CPU s / 10k jobs",
    "round trip p50 (ms)",
    "round trip p99 (ms)",
)
METRICS = (ONE, BULK, DRAIN, CPU, P50, P99)  # the same rows, in the same order, as bench/core.py


@dataclass(frozen=True)
class System:
    """One row of the table: how to install, drive and run the worker of one system."""

    name: str
    settings: str
    driver: str = ""  # module in bench/core_peers; "" for bench/core.py's own rows
    venv: str | None = None  # directory under .bench/venvs; None = the project's .venv (qaio)
    requirements: tuple[str, ...] = ()
    worker: tuple[str, ...] | None = None  # argv (program from the venv's bin); None = drive.py worker
    variant: str = ""
    inproc: bool = False  # consumer inside the producer's process (MemoryHuey)
    max_jobs: int | None = None  # cap on the drain's N for a system too slow for the run's budget
    env: dict[str, str] = field(default_factory=dict)
    na: dict[str, str] = field(default_factory=dict)  # metric -> why the system has no such number


_HUEY_PINS = ("huey==3.5.4",)
_HUEY_FLAGS = ("-w", "1", "-k", "thread", "-d", "0.001", "-b", "2", "-m", "0.05", "-n", "-q")
_HUEY_SETTINGS = (
    "1 worker thread (-w 2 threads was slower; -k process -w 2 about equal on 2 cores), idle poll 1 ms doubling "
    "to 50 ms (-d 0.001 -b 2 -m 0.05, as qaio's sqlite), no periodic scheduler, store_none=True so that None "
    "results are stored (as qaio does) and Result.get can see them"
)
_NO_BULK = "no bulk enqueue API"
_CELERY_WORKER = ("celery", "-A", "celery_driver", "worker", "-P", "solo", "-Q", "bench", "-l", "WARNING")
_CELERY_WORKER += ("--without-gossip", "--without-mingle", "--without-heartbeat")

SYSTEMS: tuple[System, ...] = (
    System(name="qaio memory://", settings="bench/core.py: in-process worker, concurrency 64"),
    System(name="qaio sqlite://", settings="bench/core.py: in-process worker, concurrency 64, WAL, synchronous=NORMAL"),
    System(
        name="qaio sqlite:// (worker process)",
        driver="qaio_driver",
        worker=("qaio", "worker", "qaio_driver:app", "-c", "64", "--log-level", "WARNING"),
        settings="`qaio worker -c 64` in its own process, measured exactly like the peers",
    ),
    System(
        name="Huey SqliteHuey",
        driver="huey_driver",
        venv="core-huey",
        requirements=_HUEY_PINS,
        worker=("huey_consumer", "huey_driver.huey", *_HUEY_FLAGS),
        variant="sqlite",
        settings=f"huey_consumer, SqliteHuey defaults (WAL, synchronous=OFF); {_HUEY_SETTINGS}",
        na={BULK: _NO_BULK},
    ),
    System(
        name="Huey FileHuey",
        driver="huey_driver",
        venv="core-huey",
        requirements=_HUEY_PINS,
        worker=("huey_consumer", "huey_driver.huey", *_HUEY_FLAGS),
        variant="file",
        max_jobs=5000,
        settings=f"huey_consumer, FileStorage (a file per task under a lock file); {_HUEY_SETTINGS}; drain of "
        "5,000 jobs, as it runs ~600 jobs/s",
        na={BULK: _NO_BULK},
    ),
    System(
        name="Huey MemoryHuey (in-process)",
        driver="huey_driver",
        venv="core-huey",
        requirements=_HUEY_PINS,
        variant="memory",
        inproc=True,
        settings="huey's real Consumer (worker + scheduler threads) started inside the producer's process with "
        "Consumer.start(), as no other process can reach MemoryHuey's storage; otherwise as SqliteHuey",
        na={BULK: _NO_BULK},
    ),
    System(
        name="funboost SQLITE_QUEUE",
        driver="funboost_driver",
        venv="core-funboost",
        requirements=("funboost==55.0",),
        env={"LOG_PATH": str(RUN / "funboost-logs")},  # nb_log's log files, by default in ~/pythonlogs
        settings="BrokerEnum.SQLITE_QUEUE (persist-queue SQLiteAckQueue, WAL), ConcurrentModeEnum.SINGLE_THREAD "
        "(faster here than 8 threads), worker through Booster.consume(); Redis pointed at a closed port to prove "
        "no hidden dependency",
        na={BULK: _NO_BULK, P50: "result API (rpc mode) needs Redis", P99: "result API (rpc mode) needs Redis"},
    ),
    System(
        name="Celery sqla+sqlite",
        driver="celery_driver",
        venv="core-celery",
        requirements=("celery==5.7.0", "sqlalchemy==2.1.9"),
        worker=_CELERY_WORKER,
        max_jobs=5000,
        settings="kombu SQLAlchemy transport + db+sqlite result backend (files set to WAL), solo pool (threads "
        "-c 4 was slower), prefetch 4, idle poll 10 ms (transport class attribute; the default is 1 s), "
        "AsyncResult.get(interval=1 ms); drain of 5,000 jobs, as it runs ~150 jobs/s",
        na={BULK: "no bulk publish API (a group publishes one message per task)"},
    ),
)


class BenchError(Exception):
    """A phase of one system failed; the message goes under the table."""


# --------------------------------------------------------------------------- venvs


def _bin(system: System) -> Path:
    return (QAIO_VENV if system.venv is None else VENVS / system.venv) / "bin"


def ensure_venv(system: System) -> None:
    """Create the system's venv, or reuse it while its marker matches the pins; BenchError if pip fails."""
    if system.venv is None:
        if not (QAIO_VENV / "bin" / "python").exists():
            raise BenchError(f"no {QAIO_VENV} (the project's venv with qaio installed)")
        return
    venv = VENVS / system.venv
    marker = venv / "core-peers-marker.json"
    wanted = {"requirements": list(system.requirements), "python": sys.version.split()[0][:4]}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    shutil.rmtree(venv, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"install-{system.venv}.log"
    steps = (
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *system.requirements],
    )
    with log.open("w") as out:
        for step in steps:
            code = _run(step, out=out, timeout=INSTALL_TIMEOUT_S).returncode
            if code != 0:
                errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
                raise BenchError(f"install failed: {errors[-1] if errors else f'exit {code}, see {log}'}")
    marker.write_text(json.dumps(wanted))


# --------------------------------------------------------------------------- processes


def _kill(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group and every descendant, SIGKILL whatever is left after 3 s."""
    pids = tree(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None and not any(Path(f"/proc/{pid}").exists() for pid in pids[1:]):
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=3)


def _run(argv: list[str], out: IO[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run argv in its own session with output to out; killed (whole group) after timeout."""
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, text=True, **kwargs)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return subprocess.CompletedProcess(argv, -1)
    return subprocess.CompletedProcess(argv, proc.returncode)


def slug(system: System) -> str:
    """The system's name as a file name: "Huey SqliteHuey" -> "huey-sqlitehuey"."""
    words = "".join(c if c.isalnum() else " " for c in system.name.lower()).split()
    return "-".join(words)


class Round:
    """One round of one out-of-process system: its data folder, environment, log and the phases."""

    def __init__(self, system: System, number: int) -> None:
        self.system = system
        self.slug = slug(system)
        self.data = RUN / self.slug / f"r{number}"
        self.scratch = RUN / self.slug / "pythonpath"
        self.scratch.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = (LOGS / f"{self.slug}.log").open("a")
        self.log.write(f"\n===== round {number} {time.strftime('%H:%M:%S')}\n")

    def env(self, phase: str) -> dict[str, str]:
        """The subprocess environment: PYTHONPATH starts with a scratch folder, because some peers write
        files into sys.path[1], their idea of the project root (funboost's nb_log_config.py)."""
        env = dict(os.environ)
        for key in ("PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(key, None)
        env.update(
            BENCH_DATA_DIR=str(self.data / phase),
            BENCH_DONE_FILE=str(self.data / phase / "done"),
            BENCH_VARIANT=self.system.variant,
            BENCH_RT_SECONDS=str(RT_SECONDS),
            PYTHONPATH=f"{self.scratch}:{DRIVERS}",
            PYTHONDONTWRITEBYTECODE="1",
            PATH=f"{_bin(self.system)}:{env.get('PATH', '')}",
        )
        env.update(self.system.env)
        (self.data / phase).mkdir(exist_ok=True)
        return env

    def driver_argv(self, *args: object) -> list[str]:
        return [str(_bin(self.system) / "python"), str(DRIVERS / "drive.py"), self.system.driver, *map(str, args)]

    def producer(self, phase: str, *args: object) -> dict[str, Any]:
        """Run one producer subcommand and return its JSON payload."""
        out = self.data / phase / f"{args[0]}.out"
        (self.data / phase).mkdir(exist_ok=True)
        with out.open("w") as handle:
            done = _run(self.driver_argv(*args), handle, PRODUCER_TIMEOUT_S, env=self.env(phase), cwd=self.data / phase)
        text = out.read_text()
        self.log.write(f"--- {args}\n{text[-3000:]}\n")
        for line in reversed(text.splitlines()):
            if line.startswith('{"bench":'):
                payload: dict[str, Any] = json.loads(line)["bench"]
                return payload
        if done.returncode == -1:
            raise BenchError(f"{args[0]} timed out after {PRODUCER_TIMEOUT_S}s")
        lines = [line for line in text.splitlines() if line.strip()]
        raise BenchError(f"{args[0]} failed (exit {done.returncode}): {lines[-1][:200] if lines else 'no output'}")

    def start_worker(self, phase: str) -> subprocess.Popen[str]:
        if self.system.worker is None:
            argv = self.driver_argv("worker")
        else:
            program, *args = self.system.worker
            argv = [str(_bin(self.system) / program), *args]
        self.log.write(f"--- worker {' '.join(argv)}\n")
        self.log.flush()
        return subprocess.Popen(
            argv,
            env=self.env(phase),
            cwd=self.data / phase,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )

    def close(self) -> None:
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def watch_drain(done_file: Path, jobs: int, pid: int, proc: subprocess.Popen[Any] | None) -> tuple[float, float]:
    """Poll done_file until it holds `jobs` bytes; (drain jobs/s, CPU s of pid's tree per 10k jobs)."""
    start = time.perf_counter()
    while file_size(done_file) == 0:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"worker exited ({proc.returncode}) before the first job, see its log")
        if time.perf_counter() - start > FIRST_BYTE_TIMEOUT_S:
            raise BenchError(f"no job done {FIRST_BYTE_TIMEOUT_S}s after the worker started")
        time.sleep(POLL_S)
    t_first, cpu_first = time.perf_counter(), cpu_seconds(tree(pid))
    seen, seen_at = 0, t_first
    while True:
        size = file_size(done_file)
        now = time.perf_counter()
        if size >= jobs:
            break
        if size > seen:
            seen, seen_at = size, now
        elif now - seen_at > STALL_TIMEOUT_S or now - t_first > DRAIN_TIMEOUT_S:
            raise BenchError(f"drain stalled at {size:,} of {jobs:,} jobs")
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"worker exited ({proc.returncode}) at {size:,} of {jobs:,} jobs")
        time.sleep(POLL_S)
    t_last, cpu_last = time.perf_counter(), cpu_seconds(tree(pid))
    return (jobs - 1) / (t_last - t_first), (cpu_last - cpu_first) / (jobs - 1) * 10_000


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if not samples:
        raise BenchError("no round trip completed")
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, math.ceil(len(ordered) * 0.99) - 1)]


def peer_round(system: System, number: int, jobs: int, one_jobs: int) -> dict[str, float | None]:
    """One round of an out-of-process system (or MemoryHuey): every metric, None where n/a."""
    jobs = min(jobs, system.max_jobs or jobs)
    result: dict[str, float | None] = dict.fromkeys(METRICS)
    bench = Round(system, number)
    try:
        if system.inproc:
            inproc_round(bench, jobs, one_jobs, result)
            return result
        one = bench.producer("one", "enqueue-one", one_jobs)
        result[ONE] = one["jobs"] / one["seconds"]
        filled = bench.producer("drain", "fill", jobs)
        if filled["bulk"]:
            result[BULK] = filled["jobs"] / filled["seconds"]
        worker = bench.start_worker("drain")
        try:
            result[DRAIN], result[CPU] = watch_drain(bench.data / "drain" / "done", jobs, worker.pid, worker)
            if P50 not in system.na:
                samples = bench.producer("drain", "roundtrip", RT_MAX)["samples_ms"]
                result[P50], result[P99] = _percentiles(samples)
        finally:
            _kill(worker)
        return result
    finally:
        bench.close()


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def inproc_round(bench: Round, jobs: int, one_jobs: int, result: dict[str, float | None]) -> None:
    """MemoryHuey: one process enqueues, then runs the consumer threads; the drain is read off the file."""
    proc = subprocess.Popen(
        bench.driver_argv("inproc", one_jobs, jobs, RT_MAX),
        env=bench.env("drain"),
        cwd=bench.data / "drain",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=bench.log,
        start_new_session=True,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()

    def payload(timeout: float) -> dict[str, Any]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=0.2)
                if line.startswith('{"bench":'):
                    data: dict[str, Any] = json.loads(line)["bench"]
                    return data
                bench.log.write(line)
            if proc.poll() is not None and lines.empty():
                raise BenchError(f"in-process driver exited ({proc.returncode}), see its log")
        raise BenchError(f"in-process driver gave no result within {timeout:.0f}s")

    try:
        one = payload(PRODUCER_TIMEOUT_S)
        result[ONE] = one["jobs"] / one["seconds"]
        payload(PRODUCER_TIMEOUT_S)  # the fill, one call at a time
        result[DRAIN], result[CPU] = watch_drain(bench.data / "drain" / "done", jobs, proc.pid, proc)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result[P50], result[P99] = _percentiles(payload(RT_SECONDS + 30)["samples_ms"])
    finally:
        _kill(proc)


def qaio_core_round(jobs: int, number: int) -> dict[str, dict[str, float]]:
    """One round of bench/core.py's measure() in the project's venv: {"memory"|"sqlite": {metric: value}}."""
    folder = RUN / "qaio-core" / f"r{number}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out = folder / "core.out"
    try:
        argv = [str(QAIO_VENV / "bin" / "python"), str(DRIVERS / "qaio_core.py"), str(jobs), str(folder)]
        with out.open("w") as handle:
            done = _run(argv, handle, QAIO_CORE_TIMEOUT_S, cwd=ROOT)
        text = out.read_text()
        for line in reversed(text.splitlines()):
            if line.startswith('{"bench":'):
                payload: dict[str, dict[str, float]] = json.loads(line)["bench"]
                return payload
        lines = [line for line in text.splitlines() if line.strip()]
        raise BenchError(f"bench/core.py failed (exit {done.returncode}): {lines[-1][:200] if lines else 'no output'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- report


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if "jobs/s" in metric else f"{value:.2f}"


def render(
    systems: list[System],
    rounds: dict[str, list[dict[str, float | None]]],
    errors: dict[str, list[str]],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    """The Markdown report: header, table of medians, settings and the reasons for every n/a."""

    def median(name: str, metric: str) -> float | None:
        values = [r[metric] for r in rounds.get(name, []) if r.get(metric) is not None]
        return statistics.median(values) if values else None  # type: ignore[type-var]

    base = median("qaio sqlite://", DRAIN)
    out = [
        f"## qaio core benchmark with embedded-broker peers\n\n{args.jobs:,} no-op jobs per drain (fewer where noted), "
        f"median of up to {args.rounds} round(s), Python {sys.version.split()[0]}, {os.cpu_count()} cores (shared), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, run took {elapsed:.0f} s. Reproduce: `python3 bench/core_peers.py"
        f"{' --quick' if args.quick else ''}` (method in its docstring).\n",
        "| system | rounds | drain N | " + " | ".join(METRICS) + " | drain vs qaio sqlite |",
        "|---|---:|---:|" + "---:|" * (len(METRICS) + 1),
    ]
    notes: list[str] = []
    for system in systems:
        done = len(rounds.get(system.name, []))
        cells = [_cell(metric, median(system.name, metric)) for metric in METRICS]
        drain = median(system.name, DRAIN)
        ratio = f"{drain / base:.2f}x" if drain is not None and base else "n/a"
        n = min(args.jobs, system.max_jobs or args.jobs)
        out.append(f"| {system.name} | {done} | {n:,} | " + " | ".join(cells) + f" | {ratio} |")
        for metric, reason in system.na.items():
            if metric != P99:
                notes.append(f"- {system.name}: {metric.split(' (')[0].removesuffix(' p50')} n/a: {reason}.")
        notes.extend(f"- {system.name}: FAILED: {error}" for error in dict.fromkeys(errors.get(system.name, [])))
    out.append("\nSettings:\n")
    out.extend(f"- **{system.name}**: {system.settings}." for system in systems)
    if notes:
        out.append("\nNot available, failures:\n")
        out.extend(notes)
    out.append(
        "\nDrain clocks differ: qaio memory:// and sqlite:// rows are bench/core.py's (worker in the producer's "
        "process, from the worker's start to its burst exit, start-up included; round trips wake in-process); every "
        "other row is clocked from the first to the N-th byte the out-of-process worker writes, and its round trips "
        "cross processes. `qaio sqlite:// (worker process)` is qaio measured that second way."
    )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 jobs, 1 round")
    parser.add_argument("--systems", default="", help="comma-separated row names or slugs (default: all)")
    parser.add_argument("--budget", type=float, default=600, help="no new round starts after this many seconds")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds = 5_000, 1
    wanted = {name.strip().lower() for name in args.systems.split(",") if name.strip()}
    systems = [s for s in SYSTEMS if not wanted or s.name.lower() in wanted or slug(s) in wanted]
    one_jobs = min(args.jobs, ONE_MAX)
    started = time.perf_counter()
    rounds: dict[str, list[dict[str, float | None]]] = {}
    errors: dict[str, list[str]] = {}
    broken: set[str] = set()
    for system in systems:
        try:
            ensure_venv(system)
        except BenchError as exc:
            errors.setdefault(system.name, []).append(str(exc))
            broken.add(system.name)
    setup_s = time.perf_counter() - started
    for number in range(args.rounds):
        if number and time.perf_counter() - started - setup_s > args.budget:
            print(f"budget of {args.budget:.0f}s spent: stopping after {number} round(s)", file=sys.stderr)
            break
        core_names = [s.name for s in systems if not s.driver and s.name not in broken]
        if core_names:
            print(f"round {number + 1}: qaio (bench/core.py)", file=sys.stderr, flush=True)
            try:
                core = qaio_core_round(args.jobs, number)
                for name in core_names:
                    rounds.setdefault(name, []).append(dict(core["memory" if "memory" in name else "sqlite"]))
            except BenchError as exc:
                for name in core_names:
                    errors.setdefault(name, []).append(str(exc))
        for system in systems:
            if not system.driver or system.name in broken:
                continue
            print(f"round {number + 1}: {system.name}", file=sys.stderr, flush=True)
            try:
                rounds.setdefault(system.name, []).append(peer_round(system, number, args.jobs, one_jobs))
            except BenchError as exc:
                errors.setdefault(system.name, []).append(str(exc))
                print(f"  failed: {exc}", file=sys.stderr, flush=True)
    report = render(systems, rounds, errors, args, time.perf_counter() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "core_peers.md").write_text(report)
    (RESULTS / "core_peers.json").write_text(json.dumps({"args": vars(args), "rounds": rounds, "errors": errors}))
    print(report)


if __name__ == "__main__":
    main()

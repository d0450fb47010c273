"""Side-by-side Redis task-queue benchmark: qaio's peers, each in its own venv, on one Redis.

Reproduce (stdlib only, plain ``python3``, Redis at 127.0.0.1:6379, redis-benchmark on PATH)::

    python3 bench/redis_peers.py                      # all peers, 20,000 jobs, 3 rounds (~25 min)
    python3 bench/redis_peers.py --quick              # 2,000 jobs, 1 round, to iterate
    python3 bench/redis_peers.py --peers rq,arq --rounds 1

The first run creates ``.bench/venvs/<venv>`` per peer and pip-installs its pinned requirements
(reused while ``bench-marker.json`` in it matches the pins); ardiq needs Python 3.12 (python3.12 on
PATH or a pyenv build), as no ardiq release installs on 3.11. Results go to stdout and to
``.bench/results/redis_peers.{json,md}``; worker logs to ``.bench/logs``. Everything lives in
Redis db 9, which is flushed (FLUSHDB, db 9 only) before and after each phase.

What is measured, per round and per peer (each driver in ``bench/peers``, see ``_common.py``):

* enqueue one-call: ``--one-jobs`` sequential one-job enqueue calls through the public API.
* enqueue bulk: ``--jobs`` jobs through the peer's bulk API, in batches of 1,000 (n/a without one).
  This is also how the drain's backlog is filled; peers without a bulk API fill one call at a time.
* drain: the backlog of ``--jobs`` jobs is queued with no worker running; then ONE worker process is
  started with the peer's own CLI or API. Every job appends one byte to a file (O_APPEND, no fsync)
  and this script polls its size every 2 ms. The clock starts when the first byte lands (so
  interpreter start-up and imports are excluded) and stops when the last one does:
  drain = (jobs - 1) / (t_last - t_first).
* worker CPU s per 10,000 jobs: utime+stime of the worker's whole process tree (live descendants,
  plus reaped children through cutime/cstime) from /proc, between the same two instants.
* worker peak RSS: the largest sum of RSS over the worker's process tree, sampled every ~20 ms
  during the drain, or the worker's own VmHWM if larger.
* round trip: with that worker idle, up to ``--rt-jobs`` sequential "enqueue one job, wait for its
  result through the peer's result API" (at most 8 s of them); p50/p99 by nearest rank.

Each table cell is the median over rounds, with ``value / best peer's value`` beside it; rows of kind
``subject`` (qaio, once it has a driver) are compared with the best *peer*. redis-benchmark's figures
from the same run are printed above the table as the ceiling: one client's sequential round trips
(the ceiling of a one-call enqueue, which waits for Redis's reply), and 50 clients unpipelined and with
-P 16. A peer that cannot be installed or whose
phase fails or hangs (every process has a timeout) shows n/a, with the reason under the table.

Adding a system (qaio): write ``bench/peers/qaio_peer.py`` with the hooks ``_common.py`` documents and
append ``Peer(name="qaio", driver="qaio_peer", venv="qaio", requirements=("-e", f"{ROOT}[redis,uvloop]"),
worker="qaio ..." or None, kind="subject", settings="...")`` to REGISTRY.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _procs import cpu_seconds, file_size, tree

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / "bench" / "peers"
WORK = ROOT / ".bench"
VENVS = WORK / "venvs"
RESULTS = WORK / "results"
LOGS = WORK / "logs"
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 9
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
PAGE = os.sysconf("SC_PAGE_SIZE")

INSTALL_TIMEOUT_S = 900
PRODUCER_TIMEOUT_S = 300
FIRST_BYTE_TIMEOUT_S = 90
STALL_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 400
RT_SECONDS = 8


def _patch_aioredis(venv: Path) -> None:
    """aioredis 2.0.1 (fastapi-queue's client) declares TimeoutError with asyncio.TimeoutError and
    builtins.TimeoutError as bases; on Python 3.11 they are the same class, so the import fails with
    'duplicate base class'. Drop the duplicate, as the unreleased aioredis fix does."""
    (target,) = venv.glob("lib/python*/site-packages/aioredis/exceptions.py")
    text = target.read_text()
    bad = "class TimeoutError(asyncio.TimeoutError, builtins.TimeoutError, RedisError):"
    if bad in text:
        target.write_text(text.replace(bad, "class TimeoutError(asyncio.TimeoutError, RedisError):"))


@dataclass(frozen=True)
class Peer:
    """One table row: how to install a system and how to drive it.

    ``worker`` is the worker's command line, its first word a script in the venv's bin/; None means the
    driver starts the worker through the peer's API (``python drive.py <driver> worker``). Worker and
    producers run with cwd ``.bench/run/<name>`` and PYTHONPATH ``.bench/run/<name>:bench/peers``.
    """

    name: str
    driver: str
    venv: str
    requirements: tuple[str, ...]
    worker: str | None = None
    python: str = "3.11"
    variant: str = ""
    patch: Callable[[Path], None] | None = None
    patch_id: str = ""
    env: tuple[tuple[str, str], ...] = ()
    kind: str = "peer"
    settings: str = ""


_TASKIQ_WORKER = "taskiq worker taskiq_peer:broker --workers 1 --max-async-tasks 100 --log-level WARNING"
_TASKIQ_REQUIREMENTS = ("taskiq==0.13.0", "taskiq-redis==1.2.4", "hiredis==3.5.0", "uvloop==0.23.0")

REGISTRY: tuple[Peer, ...] = (
    Peer(
        name="celery",
        driver="celery_peer",
        venv="celery",
        requirements=("celery[redis]==5.7.0", "hiredis==3.5.0"),
        worker="celery -A celery_peer worker --pool=solo --loglevel=WARNING --without-gossip --without-mingle "
        "--without-heartbeat",
        settings="solo pool (one process, no prefork child), redis result backend",
    ),
    Peer(
        name="rq",
        driver="rq_peer",
        venv="rq",
        requirements=("rq==3.0.0", "hiredis==3.5.0"),
        worker=f"rq worker --url {REDIS_URL} --worker-class rq.worker.SimpleWorker --logging_level WARNING bench",
        settings="SimpleWorker: the default Worker forks per job and drains ~80 jobs/s",
    ),
    Peer(
        name="dramatiq",
        driver="dramatiq_peer",
        venv="dramatiq",
        requirements=("dramatiq[redis]==2.2.1", "hiredis==3.5.0"),
        worker="dramatiq dramatiq_peer --processes 1 --threads 8",
        env=(("dramatiq_queue_prefetch", "100"),),
        settings="1 process, 8 threads, prefetch 100 (default 16 halves the drain), Results middleware",
    ),
    Peer(
        name="arq",
        driver="arq_peer",
        venv="arq",
        requirements=("arq==0.28.0", "hiredis==3.5.0"),
        worker="arq arq_peer.WorkerSettings --custom-log-dict arq_peer.LOG_CONFIG",
        settings="max_jobs 100, poll_delay 10 ms (default 0.5 s), Job.result polls every 1 ms, logging at WARNING",
    ),
    Peer(
        name="taskiq-list",
        driver="taskiq_peer",
        venv="taskiq",
        requirements=_TASKIQ_REQUIREMENTS,
        worker=_TASKIQ_WORKER,
        variant="list",
        settings="ListQueueBroker, --workers 1 (one child process, counted), 100 async tasks, on uvloop (taskiq "
        "takes it when installed)",
    ),
    Peer(
        name="taskiq-stream",
        driver="taskiq_peer",
        venv="taskiq",
        requirements=_TASKIQ_REQUIREMENTS,
        worker=_TASKIQ_WORKER,
        variant="stream",
        settings="RedisStreamBroker, --workers 1 (one child process, counted), 100 async tasks, on uvloop",
    ),
    Peer(
        name="huey",
        driver="huey_peer",
        venv="huey",
        requirements=("huey==3.5.4", "redis==8.1.0", "hiredis==3.5.0"),
        worker="huey_consumer huey_peer.huey --workers 2 --quiet",
        settings="RedisHuey (blocking, notify_result), 2 worker threads",
    ),
    Peer(
        name="saq",
        driver="saq_peer",
        venv="saq",
        requirements=("saq[hiredis]==0.26.4", "typing_extensions==4.16.0"),
        worker="saq saq_peer.settings --workers 1 --quiet",
        settings="concurrency 10 (the default; 100 exhausts its connection pool); typing_extensions added, "
        "which saq 0.26.4 imports without requiring",
    ),
    Peer(
        name="streaq",
        driver="streaq_peer",
        venv="streaq",
        requirements=("streaq==7.2.0",),
        settings="concurrency 100; worker through Worker.run_sync, as `streaq run` forces two INFO log lines per "
        "task; Task.result takes ~100 ms even when the result is already stored (coredis waits out its 0.1 s "
        "pub/sub unsubscription timeout)",
    ),
    Peer(
        name="bullmq",
        driver="bullmq_peer",
        venv="bullmq",
        requirements=("bullmq==3.4.4", "hiredis==3.5.0"),
        settings="Worker (API, the port has no CLI) with concurrency 100; results through QueueEvents",
    ),
    Peer(
        name="ardiq",
        driver="ardiq_peer",
        venv="ardiq",
        requirements=("ardiq==1.2.0",),
        worker="ardiq run ardiq_peer:app --quiet",
        python="3.12",
        settings="defaults (concurrency 16); on Python 3.12, as no ardiq release installs on 3.11",
    ),
    Peer(
        name="funboost",
        driver="funboost_peer",
        venv="funboost",
        requirements=("funboost==55.0", "hiredis==3.5.0"),
        settings="REDIS_ACK_ABLE broker, SINGLE_THREAD mode (against the default 50 threads: 1.2x the drain, a "
        "third of the CPU, ~1 ms not ~11 ms round trips), rpc mode for results; worker through Booster.consume",
    ),
    Peer(
        name="fastapi-queue",
        driver="fastapi_queue_peer",
        venv="fastapi-queue",
        requirements=("fastapi-queue==0.1.1", "aioredis==2.0.1"),
        patch=_patch_aioredis,
        patch_id="aioredis-timeouterror-1",
        settings="QueueWorker, 1 process, 16 coroutines; aioredis patched for 3.11; enqueue rows use the "
        "queueing step of rclt(), as its API has no enqueue-only call (see its driver)",
    ),
    Peer(
        name="qaio",
        driver="qaio_peer",
        venv="qaio",
        requirements=("-e", f"{ROOT}[redis,uvloop]"),
        worker="qaio worker qaio_peer:app --concurrency 64 --log-level WARNING",
        kind="subject",
        settings="async no-op task, 1 worker process on uvloop (qaio's default when installed), concurrency 64; "
        "one-call enqueue through the blocking Task.enqueue, bulk through aenqueue_many",
    ),
)

# (key, header, unit, higher_is_better)
METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("enqueue_one", "enqueue one-call", "jobs/s", True),
    ("enqueue_bulk", "enqueue bulk", "jobs/s", True),
    ("drain", "drain, 1 worker", "jobs/s", True),
    ("cpu_per_10k", "worker CPU / 10k jobs", "s", False),
    ("rss_mib", "worker peak RSS", "MiB", False),
    ("rt_p50", "round trip p50", "ms", False),
    ("rt_p99", "round trip p99", "ms", False),
)


class BenchError(Exception):
    """A phase of one peer failed; the message goes into the table's notes."""


# --------------------------------------------------------------------------- venvs


def _find_python(version: str) -> str | None:
    """The interpreter for a venv: this one if it matches, else a pyenv build or python<version> on
    PATH that actually runs (a pyenv shim for an inactive version is on PATH but fails)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidates = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{version}.*/bin/python{version}")))
    candidates.reverse()
    candidates.append(shutil.which(f"python{version}") or "")
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True, timeout=30).returncode == 0:
            return candidate
    return None


def _marker(peer: Peer) -> dict[str, Any]:
    return {"requirements": list(peer.requirements), "python": peer.python, "patch": peer.patch_id}


def ensure_venv(peer: Peer) -> None:
    """Create or reuse the peer's venv; raises BenchError with pip's last words if it can't."""
    venv = VENVS / peer.venv
    marker = venv / "bench-marker.json"
    if marker.exists() and json.loads(marker.read_text()) == _marker(peer):
        return
    python = _find_python(peer.python)
    if python is None:
        raise BenchError(f"needs Python {peer.python}, not found on this machine")
    shutil.rmtree(venv, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"install-{peer.venv}.log"
    with log.open("w") as out:
        steps = (
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *peer.requirements],
        )
        for step in steps:
            try:
                code = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                code = -1
            if code != 0:
                tail = [line for line in log.read_text().splitlines() if "ERROR" in line][-1:]
                raise BenchError(f"install failed: {' '.join(tail) or f'exit {code}, see {log}'}")
    if peer.patch is not None:
        peer.patch(venv)
    marker.write_text(json.dumps(_marker(peer)))


# --------------------------------------------------------------------------- processes


def flush_db() -> None:
    """Empty db 9, the benchmark's own database; nothing else on the shared Redis is touched."""
    subprocess.run(
        ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "-n", str(REDIS_DB), "flushdb"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _env(peer: Peer, done_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BENCH_REDIS_URL=REDIS_URL,
        BENCH_DONE_FILE=str(done_file),
        BENCH_VARIANT=peer.variant,
        BENCH_RT_SECONDS=str(RT_SECONDS),
        PYTHONPATH=f"{_scratch(peer)}:{PEERS_DIR}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(peer.env)
    return env


def _scratch(peer: Peer) -> Path:
    """Working directory for the peer's processes, and the first PYTHONPATH entry, where peers that
    write config or log files into the "project root" (funboost's nb_log) put them."""
    path = WORK / "run" / peer.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_driver(peer: Peer, done_file: Path, command: str, n: int) -> dict[str, Any]:
    """Run one producer subcommand in the peer's venv and return its JSON payload."""
    argv = [str(VENVS / peer.venv / "bin" / "python"), str(PEERS_DIR / "drive.py"), peer.driver, command, str(n)]
    try:
        proc = subprocess.run(
            argv,
            env=_env(peer, done_file),
            cwd=_scratch(peer),
            capture_output=True,
            text=True,
            timeout=PRODUCER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{command} timed out after {PRODUCER_TIMEOUT_S}s") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{"bench":'):
            return json.loads(line)["bench"]
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    raise BenchError(f"{command} failed (exit {proc.returncode}): {errors[-1][:200] if errors else 'no output'}")


def _rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total


def _hwm_bytes(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Worker:
    """The peer's single worker process (its own session, so the whole tree can be killed)."""

    def __init__(self, peer: Peer, done_file: Path, log: Path) -> None:
        venv_bin = VENVS / peer.venv / "bin"
        if peer.worker is None:
            argv = [str(venv_bin / "python"), str(PEERS_DIR / "drive.py"), peer.driver, "worker"]
        else:
            program, *args = shlex.split(peer.worker)
            argv = [str(venv_bin / program), *args]
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            argv,
            env=_env(peer, done_file),
            cwd=_scratch(peer),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"worker exited with code {self.proc.returncode}, see {self.log.name}")

    def stop(self) -> None:
        """SIGKILL the worker's process group: measurements are over and Redis is flushed next."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


def drain(worker: Worker, done_file: Path, jobs: int) -> dict[str, float]:
    """Time the worker through the backlog; see the module docstring for the exact definitions."""
    deadline = time.monotonic() + FIRST_BYTE_TIMEOUT_S
    while file_size(done_file) == 0:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"no job finished within {FIRST_BYTE_TIMEOUT_S}s of worker start")
        time.sleep(0.002)
    t_first = time.perf_counter()
    pids = tree(worker.proc.pid)
    cpu_first = cpu_seconds(pids)
    peak = _rss_bytes(pids)
    last_size, last_progress, tick = 0, time.monotonic(), 0
    stop_at = time.monotonic() + DRAIN_TIMEOUT_S
    while (size := file_size(done_file)) < jobs:
        now = time.monotonic()
        if size != last_size:
            last_size, last_progress = size, now
        elif now - last_progress > STALL_TIMEOUT_S or now > stop_at:
            raise BenchError(f"drain stalled at {size}/{jobs} jobs")
        tick += 1
        if tick % 10 == 0:
            worker.check_alive()
            pids = tree(worker.proc.pid)
            peak = max(peak, _rss_bytes(pids))
        time.sleep(0.002)
    t_last = time.perf_counter()
    pids = tree(worker.proc.pid)
    cpu = cpu_seconds(pids) - cpu_first
    peak = max(peak, _rss_bytes(pids), _hwm_bytes(worker.proc.pid))
    return {
        "drain": (jobs - 1) / (t_last - t_first),
        "cpu_per_10k": cpu / (jobs - 1) * 10_000,
        "rss_mib": peak / 2**20,
        "drain_seconds": t_last - t_first,
    }


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class RoundResult:
    """One peer's figures for one round; a failed phase leaves its metrics out and says why."""

    values: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def bench_round(peer: Peer, jobs: int, one_jobs: int, rt_jobs: int, round_no: int) -> RoundResult:
    """All phases for one peer in one round, each phase failing on its own."""
    result = RoundResult()
    done_file = WORK / "run" / f"{peer.name}.done"
    try:
        flush_db()
        one = run_driver(peer, done_file, "enqueue-one", one_jobs)
        result.values["enqueue_one"] = one["jobs"] / one["seconds"]
    except BenchError as exc:
        result.errors.append(str(exc))
    worker = None
    try:
        flush_db()
        fill = run_driver(peer, done_file, "fill", jobs)
        if fill["bulk"]:
            result.values["enqueue_bulk"] = fill["jobs"] / fill["seconds"]
        done_file.unlink(missing_ok=True)
        worker = Worker(peer, done_file, LOGS / f"{peer.name}-r{round_no}-worker.log")
        stats = drain(worker, done_file, jobs)
        result.extra["drain_seconds"] = stats.pop("drain_seconds")
        result.values.update(stats)
        rt = run_driver(peer, done_file, "roundtrip", rt_jobs)
        samples = rt["samples_ms"]
        result.extra.update(rt_samples=len(samples), rt_via=rt["via"])
        if not samples:
            raise BenchError("no round trip finished")
        result.values["rt_p50"] = percentile(samples, 50)
        result.values["rt_p99"] = percentile(samples, 99)
    except BenchError as exc:
        result.errors.append(str(exc))
    finally:
        if worker is not None:
            worker.stop()
        flush_db()
    return result


# --------------------------------------------------------------------------- redis-benchmark


#: redis-benchmark's settings (clients, pipeline): one client's sequential round trips, the ceiling of
#: a one-call enqueue; redis-benchmark's default 50 clients, unpipelined and -P 16.
CEILINGS = ((1, 1), (50, 1), (50, 16))


def redis_ceiling(requests: int) -> list[dict[str, Any]]:
    """redis-benchmark's SET/LPUSH/RPOP rates against the same server, for each of CEILINGS."""
    rows = []
    for clients, pipeline in CEILINGS:
        argv = [
            "redis-benchmark",
            "-h",
            REDIS_HOST,
            "-p",
            str(REDIS_PORT),
            "--dbnum",
            str(REDIS_DB),
            "-c",
            str(clients),
            "-n",
            str(requests if clients > 1 else requests // 5),
            "-P",
            str(pipeline),
            "-t",
            "set,lpush,rpop",
            "--csv",
        ]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout
        header, *lines = [line.replace('"', "").split(",") for line in out.strip().splitlines()]
        for line in lines:
            row = dict(zip(header, line, strict=True))
            rows.append(
                {
                    "test": row["test"],
                    "clients": clients,
                    "pipeline": pipeline,
                    "rps": float(row["rps"]),
                    "p50_ms": float(row["p50_latency_ms"]),
                    "p99_ms": float(row["p99_latency_ms"]),
                }
            )
    flush_db()
    return rows


# --------------------------------------------------------------------------- report


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summarize(peers: list[Peer], rounds: dict[str, list[RoundResult]]) -> dict[str, dict[str, float]]:
    """Median of each metric over the rounds in which it was measured."""
    medians: dict[str, dict[str, float]] = {}
    for peer in peers:
        medians[peer.name] = {}
        for key, *_ in METRICS:
            values = [r.values[key] for r in rounds.get(peer.name, []) if key in r.values]
            if values:
                medians[peer.name][key] = statistics.median(values)
    return medians


def markdown(
    peers: list[Peer],
    medians: dict[str, dict[str, float]],
    notes: dict[str, str],
    ceiling: list[dict[str, Any]],
    meta: dict[str, Any],
) -> str:
    """The report: ceiling, then one row per system, each cell 'median (value / best peer)'."""
    lines = [
        f"# Redis task queues side by side ({meta['jobs']:,} jobs, {meta['rounds']} round(s), medians; {meta['date']})",
        "",
        "Ceiling, redis-benchmark on the same server in the same run (requests/s, p50 ms):",
        "",
        "| test | 1 client | 50 clients | 50 clients, -P 16 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for test in dict.fromkeys(row["test"] for row in ceiling):
        cells = [
            next(
                (
                    f"{r['rps']:,.0f} ({r['p50_ms']:.3f})"
                    for r in ceiling
                    if (r["test"], r["clients"], r["pipeline"]) == (test, clients, pipeline)
                ),
                "n/a",
            )
            for clients, pipeline in CEILINGS
        ]
        lines.append(f"| {test} | {' | '.join(cells)} |")
    best: dict[str, float] = {}
    for key, _, _, higher in METRICS:
        values = [medians[p.name][key] for p in peers if p.kind == "peer" and key in medians[p.name]]
        if values:
            best[key] = max(values) if higher else min(values)
    header = [f"{title} ({unit}, {'higher' if higher else 'lower'} is better)" for _, title, unit, higher in METRICS]
    lines += ["", "| system | " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(METRICS)]
    for peer in peers:
        cells = []
        for key, *_ in METRICS:
            value = medians[peer.name].get(key)
            if value is None:
                cells.append("n/a")
            else:
                ratio = f" ({value / best[key]:.2f}x)" if best.get(key) else ""
                cells.append(_fmt(value) + ratio)
        lines.append(f"| {peer.name} | " + " | ".join(cells) + " |")
    lines += ["", "(Nx) = this value / the best peer's value. Settings and failures:", ""]
    for peer in peers:
        text = peer.settings + (f". **{notes[peer.name]}**" if notes.get(peer.name) else "")
        lines.append(f"- {peer.name}: {text}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", help="comma-separated row names (default: all)")
    parser.add_argument("--jobs", type=int, default=20_000, help="drain backlog and bulk-enqueue size")
    parser.add_argument("--one-jobs", type=int, default=5_000, help="one-call enqueues per round")
    parser.add_argument("--rt-jobs", type=int, default=300, help="round trips per round (8 s at most)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 500 one-call, 100 round trips, 1 round")
    args = parser.parse_args()
    # Turn SIGTERM into SystemExit, so bench_round's finally still kills the worker being measured.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.jobs, args.one_jobs, args.rt_jobs, args.rounds = 2_000, 500, 100, 1
    peers = list(REGISTRY)
    if args.peers:
        wanted = args.peers.split(",")
        unknown = set(wanted) - {p.name for p in peers}
        if unknown:
            parser.error(f"unknown peers {sorted(unknown)}; known: {[p.name for p in peers]}")
        peers = [p for p in peers if p.name in wanted]
    for path in (VENVS, RESULTS, LOGS):
        path.mkdir(parents=True, exist_ok=True)

    started = time.time()
    notes: dict[str, str] = {}
    by_venv = {p.venv: p for p in peers}
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = dict(zip(by_venv, pool.map(_install_outcome, by_venv.values()), strict=True))
    runnable = []
    for peer in peers:
        if outcomes[peer.venv]:
            notes[peer.name] = outcomes[peer.venv]
            print(f"[{peer.name}] n/a: {outcomes[peer.venv]}", flush=True)
        else:
            runnable.append(peer)
    print(f"venvs ready in {time.time() - started:.0f}s", flush=True)

    flush_db()
    ceiling = redis_ceiling(100_000)
    for row in ceiling:
        setting = f"-c {row['clients']:>2} -P {row['pipeline']:>2}"
        print(f"redis-benchmark {row['test']:>5} {setting}: {row['rps']:>10,.0f} req/s", flush=True)

    rounds: dict[str, list[RoundResult]] = {p.name: [] for p in runnable}
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % max(1, len(runnable))
        for peer in runnable[shift:] + runnable[:shift]:
            t0 = time.time()
            result = bench_round(peer, args.jobs, args.one_jobs, args.rt_jobs, round_no)
            rounds[peer.name].append(result)
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in result.values.items())
            print(
                f"round {round_no} [{peer.name}] {time.time() - t0:.0f}s: {shown}"
                + (f" ERRORS: {result.errors}" if result.errors else ""),
                flush=True,
            )
    for peer in runnable:
        errors = list(dict.fromkeys(e for r in rounds[peer.name] for e in r.errors))
        if errors:
            notes[peer.name] = "; ".join(errors)

    medians = summarize(peers, rounds)
    meta = {
        "jobs": args.jobs,
        "one_jobs": args.one_jobs,
        "rt_jobs": args.rt_jobs,
        "rounds": args.rounds,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "seconds": round(time.time() - started),
        "cpus": os.cpu_count(),
        "redis": REDIS_URL,
    }
    report = markdown(peers, medians, notes, ceiling, meta)
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redis_peers.md").write_text(report)
    (RESULTS / "redis_peers.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "ceiling": ceiling,
                "medians": medians,
                "notes": notes,
                "peers": {
                    p.name: {
                        "requirements": p.requirements,
                        "worker": p.worker,
                        "python": p.python,
                        "settings": p.settings,
                        "kind": p.kind,
                    }
                    for p in peers
                },
                "rounds": {name: [dataclasses.asdict(r) for r in results] for name, results in rounds.items()},
            },
            indent=2,
        )
    )
    print(f"written {RESULTS / 'redis_peers.md'} and .json in {meta['seconds']}s")


def _install_outcome(peer: Peer) -> str:
    """'' when the venv is ready, else why not (the row becomes n/a with that reason)."""
    try:
        ensure_venv(peer)
    except BenchError as exc:
        return str(exc)
    return ""


if __name__ == "__main__":
    main()

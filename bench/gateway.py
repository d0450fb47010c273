"""Gateway load test: qaio's examples/gateway against fastapi-queue 0.1.1's own example, side by side.

Reproduce (stdlib only, plain ``python3``; Redis at 127.0.0.1:6379; ``wrk`` on PATH: ``apt-get install wrk``)::

    python3 bench/gateway.py                       # 3 rounds, 10 s per wrk run (~7 min)
    python3 bench/gateway.py --quick               # 1 round, 3 s per run, to iterate
    python3 bench/gateway.py --systems qaio --rounds 1 --duration 5

The first run creates ``.bench/venvs/qaio-gateway`` (qaio editable with its redis and fastapi extras) and,
unless it exists already with what is needed, ``.bench/venvs/fastapi-queue`` (fastapi-queue 0.1.1 with
aioredis 2.0.1, patched to import on Python 3.11 as ``bench/redis_peers.py`` does). Both get the same
pinned fastapi, uvicorn, uvloop and httptools. Results: stdout and ``.bench/results/gateway.{md,json}``;
server logs: ``.bench/logs/gateway-*.log``.

What runs, per system: ONE gateway process (uvicorn, uvloop, httptools, no access log, on loopback) and
ONE worker process, on the same Redis:

* qaio: ``uvicorn examples.gateway.gateway:api`` with ``QAIO_URL=redis://127.0.0.1:6379/11?prefix=...&
  max_connections=1024`` and ``QAIO_FLOOD=off``; worker ``bench/gateway_peer/qaio_worker.py`` = ``qaio worker
  examples.gateway.tasks:app --concurrency 64`` on uvloop plus a count of prime_check calls running at once.
* fastapi-queue: its README's gateway and worker (``bench/gateway_peer/fq_*.py``), one worker process
  with 64 consumer coroutines (its example forks four), Redis db 12 (its key names are fixed).

Scenarios (wrk, one thread, ``--timeout 10s``; a Lua script counts answers by status):

* ``/``, a trivial request-reply route (task ``hello`` returns a string): 1 connection (p50, p99), then 50,
  200 and 1,000 connections (requests/s, p50, p99).
* overload: ``/sync-test?x=7919`` (a sync task that sleeps ``--work`` s, 0.05) with its cap at ``--cap``
  (20) and 40 connections (twice the cap: the gateway has CPU to spare) and 200 (ten times: it has none).
  Reported: the share answered 503, the latency of a rejection (from a probe that sends one request at a
  time on its own connection during the run), and the most prime checks that ever ran at once, counted
  inside the worker process.

Each number is the median over rounds; within a round the systems take turns per scenario, so drift on
this shared 2-core machine hits both alike. Nothing is flushed: qaio's keys live under their own prefix
and fastapi-queue's fixed keys in db 12; both are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _procs import free_port

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench" / "venvs"
RESULTS = ROOT / ".bench" / "results"
LOGS = ROOT / ".bench" / "logs"
PEER_DIR = ROOT / "bench" / "gateway_peer"
REDIS = ("127.0.0.1", 6379)
QAIO_DB, FQ_DB = 11, 12
QAIO_PREFIX = "qaio-bench-gw"
#: The web stack, the same for both systems.
STACK = ("fastapi==0.165.0", "uvicorn==0.54.0", "uvloop==0.23.0", "httptools==0.9.0")
CONNECTIONS = (1, 50, 200, 1000)
OVERLOAD_CONNECTIONS = (40, 200)

WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; busy = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 503 then busy = busy + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("ok"); b = b + t:get("busy"); c = c + t:get("other") end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), a, b, c,
    e.connect + e.read + e.write, e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class System:
    name: str
    venv: str
    port: int
    gateway: list[str]
    worker: list[str]
    env: dict[str, str]
    cwd: Path
    peak_file: Path
    settings: str


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    ok: int
    busy: int
    other: int
    socket_errors: int
    timeouts: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass
class Overload:
    run: Run
    rejection_ms: list[float] = field(default_factory=list)
    probe_ok: int = 0


# -- environments --


def run_checked(command: list[str], **kwargs: Any) -> None:
    print("  $", shlex.join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def ensure_venv(name: str, requirements: list[str], probe: str, patch: bool = False) -> Path:
    """A venv under .bench/venvs with `requirements`; reused while `probe` imports and the marker matches."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / "gateway-bench-marker.json"
    wanted = {"requirements": requirements}
    if python.exists():
        ok = subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
        same = marker.exists() and json.loads(marker.read_text()) == wanted
        if ok and (same or name == "fastapi-queue"):  # another bench's fastapi-queue venv will do if it imports
            return python
    print(f"setting up {venv}", flush=True)
    if not python.exists():
        run_checked(["python3.11", "-m", "venv", str(venv)])
    run_checked([str(python), "-m", "pip", "install", "-q", *requirements])
    if patch:
        sys.path.insert(0, str(ROOT / "bench"))
        from redis_peers import _patch_aioredis  # the same fix, so both benches share one venv

        _patch_aioredis(venv)
    subprocess.run([str(python), "-c", probe], check=True)
    marker.write_text(json.dumps(wanted))
    return python


def systems(cap: int, work: float) -> dict[str, System]:
    qaio_python = ensure_venv(
        "qaio-gateway",
        ["-e", f"{ROOT}[redis,fastapi]", *STACK],
        "import qaio.gateway, uvloop, httptools, redis",
    )
    fq_python = ensure_venv(
        "fastapi-queue",
        ["fastapi-queue==0.1.1", "aioredis==2.0.1", *STACK],
        "import fastapi_queue, uvicorn, uvloop, httptools",
        patch=True,
    )
    uvicorn = ["--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    uvicorn += ["--log-level", "warning"]
    # The core's client pool holds 64 connections by default and hands them out unfairly under contention
    # (redis-py's BlockingConnectionPool): with hundreds of requests in flight some wait seconds. A pool as
    # large as the connections offered avoids it, as fastapi-queue's unbounded aioredis pool does.
    qaio_url = f"redis://{REDIS[0]}:{REDIS[1]}/{QAIO_DB}?prefix={QAIO_PREFIX}&max_connections=1024"
    common = {"QAIO_EXAMPLE_WORK": str(work), "PYTHONUNBUFFERED": "1"}
    return {
        "qaio": System(
            name="qaio",
            venv="qaio-gateway",
            port=free_port(),
            gateway=[str(qaio_python), "-m", "uvicorn", "examples.gateway.gateway:api", *uvicorn],
            worker=[str(qaio_python), str(PEER_DIR / "qaio_worker.py"), "--concurrency", "64"],
            env={
                **common,
                "QAIO_URL": qaio_url,
                "QAIO_FLOOD": "off",
                "QAIO_PRIME_CAP": str(cap),
                "QAIO_RESULT_TTL": "60",
                "QAIO_PEAK_FILE": str(LOGS / "gateway-qaio-peak.txt"),
            },
            cwd=ROOT,
            peak_file=LOGS / "gateway-qaio-peak.txt",
            settings="examples/gateway on Redis (client pool max_connections=1024, see docs/gateway.md); "
            "worker concurrency 64 on uvloop",
        ),
        "fastapi-queue": System(
            name="fastapi-queue",
            venv="fastapi-queue",
            port=free_port(),
            gateway=[str(fq_python), "-m", "uvicorn", "fq_gateway:app", *uvicorn],
            worker=[str(fq_python), "fq_worker.py", "--threads", "64"],
            env={
                **common,
                "FQ_REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{FQ_DB}",
                "FQ_PRIME_CAP": str(cap),
                "FQ_PEAK_FILE": str(LOGS / "gateway-fastapi-queue-peak.txt"),
            },
            cwd=PEER_DIR,
            peak_file=LOGS / "gateway-fastapi-queue-peak.txt",
            settings="its README example; 1 worker process, 64 coroutines (threads=64)",
        ),
    }


def redis_cli(db: int, *args: str) -> str:
    out = subprocess.run(["redis-cli", "-h", REDIS[0], "-p", str(REDIS[1]), "-n", str(db), *args], capture_output=True)
    return out.stdout.decode()


def delete_keys(db: int, pattern: str) -> None:
    keys = redis_cli(db, "--scan", "--pattern", pattern).split()
    for start in range(0, len(keys), 500):
        redis_cli(db, "DEL", *keys[start : start + 500])


def clean_redis() -> None:
    delete_keys(QAIO_DB, f"{QAIO_PREFIX}*")
    for pattern in ("routelimit:*", "occupied:*", "queue:web"):
        delete_keys(FQ_DB, pattern)


# -- processes --


class Servers:
    """One gateway and one worker process per system, started once, stopped with SIGTERM at the end."""

    def __init__(self, chosen: list[System]) -> None:
        self.chosen = chosen
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        for system in self.chosen:
            system.peak_file.unlink(missing_ok=True)
            env = {**os.environ, **system.env}
            for role, command in (
                ("worker", system.worker),
                ("gateway", [*system.gateway, "--port", str(system.port)]),
            ):
                log = open(LOGS / f"gateway-{system.name}-{role}.log", "wb")  # noqa: SIM115 - lives with the process
                proc = subprocess.Popen(command, cwd=system.cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
                self.procs.append((f"{system.name} {role}", proc))
            wait_ready(system)

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {LOGS}")

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in self.procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(system: System) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{system.port}/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{system.name} did not answer within 60 s; see {LOGS}")
        time.sleep(0.2)


# -- load --


def wrk(port: int, path: str, connections: int, seconds: float) -> Run:
    script = LOGS / "gateway-wrk.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(round(seconds), 1)}s", "--timeout", "10s", "-s", str(script)]
    out = subprocess.run([*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50, p99, ok, busy, other, sockets, timeouts, _ = (int(x) for x in line.split()[1:])
    return Run(requests, duration_us / 1e6, p50 / 1000, p99 / 1000, ok, busy, other, sockets, timeouts)


async def probe(port: int, path: str, seconds: float, gap: float = 0.002) -> tuple[list[float], int]:
    """One keep-alive connection, one request at a time: the latency of each 503 and the number of 200s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    rejected: list[float] = []
    accepted = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            elapsed = (time.perf_counter() - started) * 1000
            if status == 503:
                rejected.append(elapsed)
            elif status == 200:
                accepted += 1
            await asyncio.sleep(gap)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return rejected, accepted


def overload(system: System, connections: int, seconds: float) -> Overload:
    path = "/sync-test?x=7919"

    async def both() -> Overload:
        load = asyncio.create_task(asyncio.to_thread(wrk, system.port, path, connections, seconds))
        await asyncio.sleep(min(1.0, seconds / 4))
        rejected, accepted = await probe(system.port, path, seconds * 0.6)
        return Overload(await load, rejected, accepted)

    return asyncio.run(both())


# -- report --


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def report(
    chosen: list[System],
    normal: dict[str, dict[int, list[Run]]],
    loads: dict[str, dict[int, list[Overload]]],
    args: Any,
) -> tuple[str, dict[str, Any]]:
    names = [s.name for s in chosen]
    lines = [
        f"# Gateway load test: {' vs '.join(names)} ({args.rounds} round(s) of {args.duration:g} s per wrk run, "
        f"medians; {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        "Trivial request-reply route `/` (the task returns a string); one gateway and one worker process each, "
        "Redis on loopback, wrk -t1.",
        "",
        "| connections | metric | " + " | ".join(names) + (" | qaio / fastapi-queue |" if len(names) == 2 else ""),
        "| --- | --- | " + " | ".join("---:" for _ in names) + (" | ---: |" if len(names) == 2 else ""),
    ]
    data: dict[str, Any] = {"normal": {}, "overload": {}, "settings": {s.name: s.settings for s in chosen}}
    metrics: tuple[tuple[str, str, Callable[[Run], float]], ...] = (
        ("requests/s", "", lambda r: r.rps),
        ("p50", " ms", lambda r: r.p50_ms),
        ("p99", " ms", lambda r: r.p99_ms),
    )
    for connections in CONNECTIONS:
        for metric, unit, pick in metrics:
            values = [median([pick(r) for r in normal[name][connections]]) for name in names]
            for name, value in zip(names, values, strict=True):
                data["normal"].setdefault(name, {}).setdefault(str(connections), {})[metric] = value
            ratio = f" | {values[0] / values[1]:.2f}x" if len(values) == 2 and values[1] else ""
            cells = " | ".join(fmt(v) + unit for v in values)
            lines.append(f"| {connections:,} | {metric} | {cells}{ratio} |")
    errors = {
        name: sum(r.other + r.busy + r.socket_errors + r.timeouts for runs in normal[name].values() for r in runs)
        for name in names
    }
    lines += ["", "Answers other than 200 (all runs above): " + ", ".join(f"{n} {errors[n]}" for n in names), ""]
    lines += [
        f"Overload: `/sync-test?x=7919` (a sync task sleeping {args.work:g} s), cap {args.cap}; the probe's "
        "rejections give the latency of a 503.",
        "",
        "| system | connections | answers/s | 200/s | share 503 | rejection p50 (ms) | rejection p99 (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system in chosen:
        for connections in OVERLOAD_CONNECTIONS:
            runs = loads[system.name][connections]
            rejections = [ms for run in runs for ms in run.rejection_ms]
            share = median([r.run.busy / max(r.run.requests, 1) for r in runs])
            row = {
                "answers_per_s": median([r.run.rps for r in runs]),
                "ok_per_s": median([r.run.ok / r.run.seconds for r in runs]),
                "share_503": share,
                "rejection_p50_ms": percentile(rejections, 0.5),
                "rejection_p99_ms": percentile(rejections, 0.99),
                "other_answers": sum(r.run.other + r.run.socket_errors + r.run.timeouts for r in runs),
            }
            data["overload"].setdefault(system.name, {})[str(connections)] = row
            lines.append(
                f"| {system.name} | {connections} | {fmt(row['answers_per_s'])} | {fmt(row['ok_per_s'])} | "
                f"{share:.1%} | {fmt(row['rejection_p50_ms'])} | {fmt(row['rejection_p99_ms'])} |"
            )
    lines += ["", "Worker side: the most prime checks that ever ran at once, over every overload run:", ""]
    for system in chosen:
        peak, calls = read_peak(system)
        data["overload"].setdefault(system.name, {})["peak_running"] = peak
        verdict = "within the cap" if 0 < peak <= args.cap else ("not recorded" if peak < 0 else "OVER THE CAP")
        lines.append(f"- {system.name}: {peak} of cap {args.cap} ({verdict}; {calls:,} calls)")
    lines += ["", "Settings:"] + [f"- {s.name}: {s.settings}" for s in chosen]
    return "\n".join(lines) + "\n", data


def read_peak(system: System) -> tuple[int, int]:
    try:
        peak, calls = system.peak_file.read_text().split()
        return int(peak), int(calls)
    except (OSError, ValueError):
        return -1, -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--systems", default="qaio,fastapi-queue")
    parser.add_argument("--cap", type=int, default=20, help="the overload route's cap")
    parser.add_argument("--work", type=float, default=0.05, help="seconds the overload task sleeps")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    for tool in ("wrk", "redis-cli"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            sys.exit(f"{tool} is not on PATH (apt-get install wrk redis-tools)")
    all_systems = systems(args.cap, args.work)
    chosen = [all_systems[name] for name in args.systems.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (other work on this machine skews the figures)")
    clean_redis()
    servers = Servers(chosen)
    normal: dict[str, dict[int, list[Run]]] = {s.name: {c: [] for c in CONNECTIONS} for s in chosen}
    loads: dict[str, dict[int, list[Overload]]] = {s.name: {c: [] for c in OVERLOAD_CONNECTIONS} for s in chosen}
    try:
        servers.start()
        for system in chosen:  # warm up: connection pools, scripts, code paths
            wrk(system.port, "/", 50, min(3.0, args.duration))
        for round_no in range(1, args.rounds + 1):
            for connections in CONNECTIONS:
                for system in chosen:
                    servers.check()
                    run = wrk(system.port, "/", connections, args.duration)
                    normal[system.name][connections].append(run)
                    print(
                        f"round {round_no} {system.name:14} c={connections:<5} {run.rps:8,.0f} req/s  "
                        f"p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  503 {run.busy}  other {run.other}  "
                        f"socket errors {run.socket_errors + run.timeouts}",
                        flush=True,
                    )
            for connections in OVERLOAD_CONNECTIONS:
                for system in chosen:
                    servers.check()
                    result = overload(system, connections, args.duration)
                    loads[system.name][connections].append(result)
                    run = result.run
                    print(
                        f"round {round_no} {system.name:14} overload c={connections:<4} {run.rps:8,.0f} answers/s, "
                        f"{run.ok / run.seconds:,.0f} ok/s, {run.busy / max(run.requests, 1):.1%} 503, rejection "
                        f"p50 {percentile(result.rejection_ms, 0.5):.2f} ms",
                        flush=True,
                    )
    finally:
        servers.stop()
        clean_redis()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    text, data = report(chosen, normal, loads, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway.md").write_text(text)
    (RESULTS / "gateway.json").write_text(json.dumps(data, indent=2))
    print()
    print(text)


if __name__ == "__main__":
    main()

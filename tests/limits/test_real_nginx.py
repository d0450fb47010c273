"""The emulator against a real nginx: same arrivals, same accepts and rejects, same delays.

The test starts its own nginx (a generated config, a free loopback port, a temporary prefix), sends
requests at planned times over connections opened beforehand, and records when each request really
left and when its status line came back. Replaying the measured send times through `RequestLimiter`
must give nginx's 200/503 answers, and delays within `TOLERANCE`. The schedules keep every decision
far enough from a boundary (checked below without nginx) that scheduling jitter cannot flip it.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qaio.limits import RequestLimiter

from .servers import in_ci, unavailable
from .test_emulator import SEED_TIMES

#: Absorbs nginx's timer and event-loop latency and the client's, on top of the emulated delay.
TOLERANCE = 0.025
#: Planned arrivals may move this much (each, at random) without changing any decision.
JITTER = 0.008


@dataclass(frozen=True)
class Schedule:
    zones: dict[str, dict[str, Any]]  #: emulator zones; nginx gets the same rate
    limits: list[dict[str, Any]]  #: emulator limits, in nginx's order
    times: list[float]  #: planned arrivals, seconds
    keys: Sequence[str] = ()  #: per request; "k" when empty


SCHEDULES = {
    # seed 001's example: rate 5 r/s, burst 12, delay 8; no rejections, the delays differ from its table
    "seed_001": Schedule(
        {"seed": {"rate": "5r/s"}},
        [{"zone": "seed", "burst": 12, "delay": 8}],
        SEED_TIMES,
    ),
    # burst with delay: requests arrive while earlier ones are still delayed, then get rejected
    "burst_delay": Schedule(
        {"bd": {"rate": "10r/s"}},
        [{"zone": "bd", "burst": 6, "delay": 2}],
        [0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.18, 0.21, 0.24, 0.27, 0.4, 0.42, 0.44, 0.47, 1.0, 1.02, 1.04, 1.06],
    ),
    "nodelay": Schedule(
        {"nd": {"rate": "10r/s"}},
        [{"zone": "nd", "burst": 3, "nodelay": True}],
        [0.0, 0.1, 0.125, 0.155, 0.215, 0.295, 0.325, 0.345, 0.37, 0.43, 0.46, 0.52, 0.545, 0.625],
    ),
    # no burst; one request without a key, which nginx does not limit
    "plain": Schedule(
        {"pl": {"rate": "10r/s"}},
        [{"zone": "pl"}],
        [0.0, 0.13, 0.18, 0.25, 0.29, 0.41, 0.45, 0.6, 0.62, 0.66, 0.75],
        ["k", "k", "k", "k", "k", "k", "k", "k", "", "k", "k"],
    ),
    # two limit_req directives on one location: the largest delay wins, the first rejection ends it
    "two_limits": Schedule(
        {"t1": {"rate": "10r/s"}, "t2": {"rate": "4r/s"}},
        [{"zone": "t1", "burst": 4, "nodelay": True}, {"zone": "t2", "burst": 3, "delay": 1}],
        [0.0, 0.15, 0.17, 0.25, 0.29, 0.37, 0.39, 0.54, 0.58, 0.68, 0.78, 0.93, 0.97, 1.03],
    ),
}


def request_keys(schedule: Schedule) -> list[str]:
    return list(schedule.keys) or ["k"] * len(schedule.times)


def emulate(schedule: Schedule, times: Sequence[float]) -> list[Any]:
    limiter = RequestLimiter(schedule.zones, {"/": schedule.limits})
    return limiter.replay([(t, k, "/") for t, k in zip(times, request_keys(schedule), strict=True)])


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_leave_room_for_jitter(name: str) -> None:
    """A design check, without nginx: no decision flips when every arrival moves by up to JITTER."""
    schedule = SCHEDULES[name]
    planned = [d.accepted for d in emulate(schedule, schedule.times)]
    assert not all(planned) or name == "seed_001", "a schedule should exercise rejections"
    rng = random.Random(name)
    for _ in range(200):
        moved = sorted(t + rng.uniform(-JITTER, JITTER) for t in schedule.times)
        assert [d.accepted for d in emulate(schedule, moved)] == planned


# --- nginx --------------------------------------------------------------------------------------


def locate_nginx() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


def find_nginx() -> str | None:
    """nginx's path; under CI=true on a fresh Debian machine (as root), install the package first."""
    found = locate_nginx()
    if found is None and in_ci() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "nginx"]):
            subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        found = locate_nginx()
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_rate(rate: str) -> str:
    return rate if rate.endswith(("r/s", "r/m")) else f"{rate}r/s"


def nginx_config(prefix: Path, port: int) -> str:
    zones, locations = [], []
    for name, schedule in SCHEDULES.items():
        directives = []
        for limit in schedule.limits:
            zone = limit["zone"]
            words = [f"zone={zone}"]
            if limit.get("burst"):
                words.append(f"burst={limit['burst']}")
            if limit.get("delay"):
                words.append(f"delay={limit['delay']}")
            if limit.get("nodelay"):
                words.append("nodelay")
            directives.append(f"limit_req {' '.join(words)};")
            zones.append(f"limit_req_zone $arg_k zone={zone}:1m rate={nginx_rate(schedule.zones[zone]['rate'])};")
        # `return` would answer before limit_req's phase; a static file is served after it
        locations.append(f"location = /{name} {{ {' '.join(directives)} alias {prefix}/ok.txt; }}")
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in kinds)
    return f"""
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type text/plain;
    {temp}
    limit_req_status 503;
    {" ".join(zones)}
    server {{
        listen 127.0.0.1:{port};
        {" ".join(locations)}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private nginx on a free loopback port, stopped after the module; yields the port."""
    binary = find_nginx()
    if binary is None:
        unavailable("nginx is not installed (apt-get install nginx)")
        return
    prefix = tmp_path_factory.mktemp("nginx")
    (prefix / "ok.txt").write_text("ok\n")
    port = free_port()
    (prefix / "nginx.conf").write_text(nginx_config(prefix, port))
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
                pytest.fail(f"nginx exited with {process.returncode}: {output}\n{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not start listening within 10 s")
                time.sleep(0.02)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@dataclass(frozen=True)
class Sample:
    sent: float
    answered: float
    status: int


async def send_schedule(port: int, path: str, times: Sequence[float], keys: Sequence[str]) -> list[Sample]:
    """Send one request per planned time over pre-opened connections; record real send/answer times."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in times]
    sent: list[float] = [0.0] * len(times)

    async def answer(reader: asyncio.StreamReader) -> tuple[float, int]:
        status_line = await reader.readline()
        answered = time.monotonic()
        await reader.read()
        return answered, int(status_line.split()[1])

    readers = [asyncio.create_task(answer(reader)) for reader, _ in connections]
    start = time.monotonic() + 0.05
    for i, ((_, writer), at, key) in enumerate(zip(connections, times, keys, strict=True)):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        writer.write(f"GET {path}?k={key} HTTP/1.0\r\nHost: qaio\r\n\r\n".encode())
        sent[i] = time.monotonic()
    answers = await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    for _, writer in connections:
        writer.close()
    return [Sample(s, answered, status) for s, (answered, status) in zip(sent, answers, strict=True)]


def disagreement(schedule: Schedule, keys: Sequence[str], samples: Sequence[Sample]) -> str | None:
    """None when the emulator, replaying the measured send times, agrees with nginx; else a table."""
    measured = [schedule.times[0] + s.sent - samples[0].sent for s in samples]
    emulated = emulate(schedule, measured)
    agree = all(
        (s.status == 200) == d.accepted and (not d.accepted or abs(s.answered - s.sent - d.delay) <= TOLERANCE)
        for s, d in zip(samples, emulated, strict=True)
    )
    if agree:
        return None
    return "\n".join(
        f"{t:7.3f} {k or '-':>3} nginx={s.status} waited={s.answered - s.sent:6.3f}  "
        f"emulator={'200' if d.accepted else '503'} delay={d.delay:6.3f} excess={d.excess:6.3f}"
        for t, k, s, d in zip(measured, keys, samples, emulated, strict=True)
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", SCHEDULES)
async def test_emulator_decides_like_real_nginx(nginx: int, name: str) -> None:
    schedule = SCHEDULES[name]
    # the schedules include delays where they can, so comparing delays is not vacuous
    if name not in ("plain", "nodelay"):
        assert any(d.delay > 0.1 for d in emulate(schedule, schedule.times))
    tables = []
    # A second try, on fresh keys, only absorbs a machine too loaded to send on time: a real difference
    # between nginx and the emulator shows up on both tries.
    for attempt in range(2):
        keys = [f"{key}{attempt}" if key else "" for key in request_keys(schedule)]
        samples = await send_schedule(nginx, f"/{name}", schedule.times, keys)
        assert {s.status for s in samples} <= {200, 503}
        table = disagreement(schedule, keys, samples)
        if table is None:
            return
        tables.append(table)
    pytest.fail("nginx and the emulator disagree:\n" + "\n\n".join(tables))


def test_nginx_config_mirrors_the_schedules(tmp_path: Path) -> None:
    config = nginx_config(tmp_path, 8080)
    assert "limit_req zone=seed burst=12 delay=8;" in config
    assert "limit_req zone=t1 burst=4 nodelay; limit_req zone=t2 burst=3 delay=1;" in config
    assert "limit_req_zone $arg_k zone=t2:1m rate=4r/s;" in config


def test_each_schedule_has_its_own_zones() -> None:
    zones = [zone for schedule in SCHEDULES.values() for zone in schedule.zones]
    assert len(zones) == len(set(zones))

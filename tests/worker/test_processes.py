"""Failure paths with real worker processes: kill -9 mid-job, SIGTERM with jobs in flight, a forced
shutdown, and the process pool's kill-on-timeout. Each runs on SQLite and on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qaio import App, JobStatus
from tests.conftest import broker_url

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
def env_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = broker_url(request.param, tmp_path)
    monkeypatch.setenv("QAIO_TEST_URL", url)
    yield url


@pytest.fixture
def crashapp(env_url: str) -> Iterator[App]:
    import importlib

    from tests.apps import crashapp

    module = importlib.reload(crashapp)  # picks up this test's QAIO_TEST_URL
    yield module.app
    module.app.close()


def start_worker(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "qaio", "worker", "tests.apps.crashapp:app", "--log-level", "WARNING", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def starts(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.exists() else []


def test_kill_9_mid_job_loses_nothing(crashapp: App, tmp_path: Path) -> None:
    from tests.apps.crashapp import sleepy

    marker = tmp_path / "starts"
    sleepy.enqueue(seconds=0, marker=str(tmp_path / "first"))  # so that, on Redis, the job below goes
    job = sleepy.enqueue(seconds=30, marker=str(marker))  # through the intake, leased as it is taken in
    first = start_worker()
    try:
        wait_for(lambda: starts(marker))
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        assert job.status() is JobStatus.STARTED, "the job stays leased to the dead worker until its lease runs out"
        second = start_worker("--burst")
        assert job.result(timeout=20) == second.pid
        second.wait(20)
    finally:
        first.kill()
    assert starts(marker) == [str(first.pid), str(second.pid)]


def test_sigterm_lets_in_flight_jobs_finish(crashapp: App, tmp_path: Path) -> None:
    from tests.apps.crashapp import sleepy

    markers = [tmp_path / f"m{i}" for i in range(4)]
    jobs = [sleepy.enqueue(seconds=1.0, marker=str(m)) for m in markers]
    worker = start_worker("--concurrency", "4")
    try:
        wait_for(lambda: all(starts(m) for m in markers))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        worker.kill()
    assert [job.status() for job in jobs] == [JobStatus.SUCCEEDED] * 4
    assert all(len(starts(m)) == 1 for m in markers), "each ran once: finished, not released"


@pytest.mark.parametrize("task", ["sleepy", "stuck"])
def test_shutdown_past_grace_releases_the_job_to_another_worker(crashapp: App, tmp_path: Path, task: str) -> None:
    """Past the grace the job is released and the worker exits, also when it is a sync task's whose
    thread still blocks (the exit does not wait for that thread); another worker then runs it."""
    from tests.apps import crashapp as tasks

    marker = tmp_path / "starts"
    job = getattr(tasks, task).enqueue(seconds=60, marker=str(marker))
    first = start_worker("--grace", "0.5")
    try:
        wait_for(lambda: starts(marker))
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 0
        assert job.status() is JobStatus.QUEUED, "released at once, not left to its lease"
        second = start_worker("--burst")
        assert job.result(timeout=20) == second.pid
        second.wait(20)
    finally:
        first.kill()


def test_a_second_signal_forces_the_shutdown(crashapp: App, tmp_path: Path) -> None:
    from tests.apps.crashapp import sleepy

    marker = tmp_path / "starts"
    job = sleepy.enqueue(seconds=30, marker=str(marker))
    worker = start_worker("--grace", "60")
    try:
        wait_for(lambda: starts(marker))
        worker.send_signal(signal.SIGINT)
        time.sleep(0.3)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(10) == 0
    finally:
        worker.kill()
    assert job.status() is JobStatus.QUEUED


def test_process_pool_kills_a_task_past_its_timeout(crashapp: App) -> None:
    from tests.apps.crashapp import spin

    quick, endless = spin.enqueue(seconds=0.05), spin.enqueue(seconds=60)
    worker = start_worker("--processes", "2", "--burst")
    try:
        child_pid = quick.result(timeout=30)
        assert child_pid != worker.pid, "ran in a child process"
        state = quick.state()
        assert state is not None and state.progress == 1.0 and state.progress_message == "spun"
        with pytest.raises(Exception, match="failed"):
            endless.result(timeout=30)
        endless_state = endless.state()
        assert endless_state is not None and "process killed" in (endless_state.error or "")
        assert worker.wait(30) == 0
    finally:
        worker.kill()

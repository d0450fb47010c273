"""The `qaio` command line against a real SQLite file: enqueue, worker, info, jobs, purge, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaio.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("QAIO_URL", sqlite_url)
    monkeypatch.setenv("QAIO_TEST_URL", sqlite_url)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_enqueue_run_and_inspect(runner: CliRunner, tmp_path: Path, sqlite_url: str) -> None:
    marker = tmp_path / "m"
    args = json.dumps({"seconds": 0.01, "marker": str(marker)})
    out = invoke(runner, "enqueue", "tests.apps.crashapp.sleepy", args, "-n", "3")
    assert len(out.split()) == 3
    info = json.loads(invoke(runner, "info", "--json"))
    assert info["queues"] == [{"queue": "default", "queued": 3, "scheduled": 0, "running": 0, "dead": 0}]
    worker = subprocess.run(
        [sys.executable, "-m", "qaio", "worker", "tests.apps.crashapp:app", "--burst", "--log-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert worker.returncode == 0
    assert json.loads(invoke(runner, "info", "--json"))["statuses"] == {"succeeded": 3}
    listing = invoke(runner, "jobs", "list", "--status", "succeeded", "--json").splitlines()
    assert [json.loads(line)["status"] for line in listing] == ["succeeded"] * 3
    job_id = out.split()[0]
    shown = json.loads(invoke(runner, "jobs", "show", job_id))
    assert shown["status"] == "succeeded" and isinstance(shown["result"], int)


@pytest.mark.parametrize(("choice", "module"), [("asyncio", "asyncio.unix_events"), ("uvloop", "uvloop")])
def test_worker_runs_on_the_loop_asked_for(runner: CliRunner, choice: str, module: str) -> None:
    job_id = invoke(runner, "enqueue", "tests.apps.crashapp.loop_module", "{}").split()[0]
    worker = subprocess.run(
        [sys.executable, "-m", "qaio", "worker", "tests.apps.crashapp:app", "--burst", "--loop", choice],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert worker.returncode == 0
    shown = json.loads(invoke(runner, "jobs", "show", job_id))
    assert (shown["status"], shown["result"]) == ("succeeded", module)


def test_unknown_task_is_dead_lettered_and_retry_requeues_it(runner: CliRunner) -> None:
    job_id = invoke(runner, "enqueue", "no.such.task", "{}").split()[0]
    subprocess.run(
        [sys.executable, "-m", "qaio", "worker", "tests.apps.crashapp:app", "--burst", "--log-level", "CRITICAL"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    [dead] = [json.loads(line) for line in invoke(runner, "jobs", "list", "--status", "dead", "--json").splitlines()]
    assert dead["id"] == job_id and "unknown task 'no.such.task'" in dead["error"]
    assert "requeued" in invoke(runner, "jobs", "retry", job_id)
    assert json.loads(invoke(runner, "jobs", "show", job_id))["status"] == "queued"


def test_cancel_and_purge(runner: CliRunner) -> None:
    ids = invoke(runner, "enqueue", "x.y", "{}", "-n", "4").split()
    assert "cancelled" in invoke(runner, "jobs", "cancel", ids[0])
    assert "dropped 3 job(s)" in invoke(runner, "purge", "default", "--yes")
    result = runner.invoke(cli, ["jobs", "cancel", ids[0]])
    assert result.exit_code == 1 and "finished already" in result.output


def test_friendly_errors(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["enqueue", "t", "not json"])
    assert result.exit_code != 0 and "KWARGS must be a JSON object" in result.output
    for delay in ("nan", "inf", "-1"):
        result = runner.invoke(cli, ["enqueue", "t", "{}", "--delay", delay])
        assert result.exit_code != 0 and "--delay must be finite seconds >= 0" in result.output
    result = runner.invoke(
        cli,
        [
            "enqueue",
            "tests.apps.crashapp.sleepy",
            '{"seconds": 1, "marker": "m", "bogus": 1}',
            "-A",
            "tests.apps.crashapp",
        ],
    )
    assert result.exit_code != 0 and "unexpected keyword argument 'bogus'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli, ["info", "--url", "nosuch://x"])
    assert result.exit_code != 0 and "unknown broker URL" in result.output
    result = runner.invoke(cli, ["worker", "no_such_module:app"])
    assert result.exit_code != 0 and "cannot import 'no_such_module'" in result.output


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in (
        ["--help"],
        ["worker", "--help"],
        ["enqueue", "--help"],
        ["info", "--help"],
        ["jobs", "list", "--help"],
        ["purge", "--help"],
        ["demo", "--help"],
    ):
        assert "Usage:" in invoke(runner, *command)


def test_demo_runs_and_checks_itself(tmp_path: Path) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "qaio", "demo", "--jobs", "60"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "flaky_upload: succeeded" in demo.stdout and "doomed: dead" in demo.stdout
    assert "expired" in demo.stdout

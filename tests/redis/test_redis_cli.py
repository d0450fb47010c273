"""A producer with nothing but redis-cli: the command in docs/redis.md enqueues a job that a qaio
worker runs. The test runs the documented block itself, so the docs cannot drift from the scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from redis_servers import unavailable

from qaio import App, JobState, JobStatus, Worker

ROOT = Path(__file__).resolve().parents[2]


def documented_command(block: str, url: str, shared_port: int) -> str:
    """The docs' block, aimed at the tests' server and database and at this checkout's scripts."""
    if shutil.which("redis-cli") is None:
        unavailable("redis-cli is not installed")
    text = (ROOT / "docs" / "redis.md").read_text()
    match = re.search(rf"<!-- {block} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"docs/redis.md lost its {block} block"
    db = url.rsplit("/", 1)[1]
    command = match.group(1).replace("-p 6379 -n 0", f"-p {shared_port} -n {db}")
    return command.replace("LUA=qaio/brokers/redis/lua", f"LUA={ROOT / 'qaio/brokers/redis/lua'}")


def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)


async def greet_in_a_worker(url: str, job_id: str) -> tuple[int, list[str], JobState | None]:
    """Run a burst worker with the documented task `greet`: jobs succeeded, names greeted, the job's state."""
    app = App(url)
    greetings: list[str] = []

    @app.task(name="greet")
    def greet(name: str) -> str:
        greetings.append(name)
        return f"hello {name}"

    try:
        stats = await Worker(app, burst=True, queues=["default"]).run()
        return stats.succeeded, greetings, await app.job(job_id).astate()
    finally:
        await app.aclose()


async def test_a_job_pushed_with_redis_cli_alone_runs(url: str, shared_port: int) -> None:
    command = documented_command("redis-cli producer", url, shared_port)
    pushed = run(command)
    assert pushed.returncode == 0 and pushed.stdout.strip() == "1", (pushed.stdout, pushed.stderr)

    succeeded, greetings, state = await greet_in_a_worker(url, "job-42")
    assert succeeded == 1 and greetings == ["world"]
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "hello world"
    again = run(command)
    assert again.stdout.strip() == "0"  # the id exists while its result is kept: unique


async def test_a_job_pushed_with_plain_redis_cli_commands_runs(url: str, shared_port: int) -> None:
    """The plain-command way: RPUSH onto the intake, ZADD the marker; no script."""
    command = documented_command("redis-cli plain producer", url, shared_port)
    for _ in range(2):  # the second entry's id is taken when it is taken in: it is dropped
        pushed = run(command)
        assert pushed.returncode == 0 and pushed.stderr == "", pushed.stderr

    succeeded, greetings, state = await greet_in_a_worker(url, "job-43")
    assert succeeded == 1 and greetings == ["plain"]
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "hello plain"

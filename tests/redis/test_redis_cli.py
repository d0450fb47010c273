"""A producer with nothing but redis-cli: the command in docs/redis.md enqueues a job that a qaio
worker runs. The test runs the documented block itself, so the docs cannot drift from the scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from redis_servers import unavailable

from qaio import App, JobStatus, Worker

ROOT = Path(__file__).resolve().parents[2]


def documented_command(block: str = "redis-cli producer") -> str:
    text = (ROOT / "docs" / "redis.md").read_text()
    match = re.search(rf"<!-- {block} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"docs/redis.md lost its {block} block"
    return match.group(1)


async def test_a_job_pushed_with_redis_cli_alone_runs(url: str, shared_port: int) -> None:
    if shutil.which("redis-cli") is None:
        unavailable("redis-cli is not installed")
    db = url.rsplit("/", 1)[1]
    command = documented_command().replace("-p 6379 -n 0", f"-p {shared_port} -n {db}")
    command = command.replace("LUA=qaio/brokers/redis/lua", f"LUA={ROOT / 'qaio/brokers/redis/lua'}")
    pushed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert pushed.returncode == 0 and pushed.stdout.strip() == "1", (pushed.stdout, pushed.stderr)

    app = App(url)
    greetings: list[str] = []

    @app.task(name="greet")
    def greet(name: str) -> str:
        greetings.append(name)
        return f"hello {name}"

    stats = await Worker(app, burst=True, queues=["default"]).run()
    assert stats.succeeded == 1 and greetings == ["world"]
    state = await app.job("job-42").astate()
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "hello world"
    again = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert again.stdout.strip() == "0"  # the id exists while its result is kept: unique
    await app.aclose()


async def test_a_job_pushed_with_plain_redis_cli_commands_runs(url: str, shared_port: int) -> None:
    """The plain-command way: RPUSH onto the intake, ZADD the marker; no script."""
    if shutil.which("redis-cli") is None:
        unavailable("redis-cli is not installed")
    db = url.rsplit("/", 1)[1]
    command = documented_command("redis-cli plain producer").replace("-p 6379 -n 0", f"-p {shared_port} -n {db}")
    for _ in range(2):  # the second entry's id is taken when it is taken in: it is dropped
        pushed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert pushed.returncode == 0 and pushed.stderr == "", pushed.stderr

    app = App(url)
    greetings: list[str] = []

    @app.task(name="greet")
    def greet(name: str) -> str:
        greetings.append(name)
        return f"hello {name}"

    stats = await Worker(app, burst=True, queues=["default"]).run()
    assert stats.succeeded == 1 and greetings == ["plain"]
    state = await app.job("job-43").astate()
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "hello plain"
    await app.aclose()

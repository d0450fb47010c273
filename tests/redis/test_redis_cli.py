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


def documented_command() -> str:
    text = (ROOT / "docs" / "redis.md").read_text()
    match = re.search(r"<!-- redis-cli producer -->\n```bash\n(.*?)```", text, re.S)
    assert match, "docs/redis.md lost its redis-cli producer block"
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

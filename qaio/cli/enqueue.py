"""`qaio enqueue`: put a job in the queue by task name, with JSON kwargs."""

from __future__ import annotations

import math
import time
import uuid

import click
import orjson
from rich.console import Console
from rich.progress import Progress

from qaio.cli.common import app_option, friendly, resolve_app, run, url_option
from qaio.errors import EnqueueError
from qaio.message import Message
from qaio.status import JobStatus


@click.command()
@click.argument("task")
@click.argument("kwargs", default="{}")
@app_option
@url_option
@click.option("--queue", default="default", show_default=True)
@click.option("--priority", default=0, type=click.IntRange(0, 9))
@click.option("--delay", default=0.0, help="Seconds before the job is due.")
@click.option("--job-id", help="A job id, for uniqueness.")
@click.option("-n", "--count", default=1, show_default=True, help="Enqueue this many copies.")
@click.option("--wait", "wait_for", type=float, help="Wait this many seconds for the result(s).")
@friendly
def enqueue(
    task: str,
    kwargs: str,
    app_ref: str | None,
    url: str,
    queue: str,
    priority: int,
    delay: float,
    job_id: str | None,
    count: int,
    wait_for: float | None,
) -> None:
    """Enqueue TASK (its registered name) with KWARGS as a JSON object."""
    try:
        arguments = orjson.loads(kwargs)
    except orjson.JSONDecodeError as exc:
        raise EnqueueError(f"KWARGS must be a JSON object: {exc}") from None
    if not isinstance(arguments, dict):
        raise EnqueueError("KWARGS must be a JSON object, like '{\"x\": 1}'")
    if not 0 <= delay < math.inf:
        raise EnqueueError(f"--delay must be finite seconds >= 0, got {delay}")
    if job_id and count > 1:
        raise EnqueueError("--job-id names one job; drop it or --count")
    app = resolve_app(app_ref, url)
    if task in app.tasks:
        arguments = app.tasks[task].bind((), arguments)  # fail here, not in the worker
    now = time.time()
    messages = [
        Message(
            id=job_id or uuid.uuid4().hex,
            task=task,
            kwargs=arguments,
            queue=queue,
            priority=priority,
            enqueued_at=now,
            eta=now + delay if delay else 0.0,
        )
        for _ in range(count)
    ]

    async def main() -> None:
        jobs = await app.aenqueue_messages(messages)
        console = Console()
        for job in jobs[:10]:
            console.print(f"{job.id}{'' if job.created else ' (exists already)'}")
        if len(jobs) > 10:
            console.print(f"... and {len(jobs) - 10} more")
        if wait_for is not None:
            await _wait(jobs, wait_for, console)
        await app.aclose()

    run(main())


async def _wait(jobs: list, timeout: float, console: Console) -> None:  # type: ignore[type-arg]
    """Wait for every job, with a progress bar, then print each outcome (the first ten)."""
    deadline = time.monotonic() + timeout
    states = []
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("waiting", total=len(jobs))
        for job in jobs:
            remaining = max(deadline - time.monotonic(), 0.0)
            state = await (await job.app.backend()).wait_state(job.id, timeout=remaining)
            states.append(state)
            progress.advance(bar)
    for job, state in list(zip(jobs, states, strict=True))[:10]:
        if state is None:
            console.print(f"{job.id}: unknown")
        elif state.status is JobStatus.SUCCEEDED:
            console.print(f"{job.id}: succeeded -> {orjson.dumps(state.result).decode()}")
        else:
            console.print(f"{job.id}: {state.status.value}" + (f" ({state.error})" if state.error else ""))

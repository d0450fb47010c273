"""`qaio demo`: the day-one tour on the embedded SQLite default, no server needed.

It enqueues a few hundred jobs, starts two real worker processes sharing one SQLite file, and shows a
retry, a dead job, progress and an expired job on the way, then prints a summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from qaio.app import App
from qaio.protocols import JobState
from qaio.status import JobStatus


@click.command()
@click.option("--jobs", "count", default=300, show_default=True, help="How many resize jobs.")
@click.option("--workers", default=2, show_default=True, help="Worker processes to start.")
def demo(count: int, workers: int) -> None:
    """Run the tour: enqueue, two workers, a retry, a dead job, progress, an expired job."""
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="qaio-demo-"))
    os.environ["QAIO_DEMO_URL"] = f"sqlite:///{folder / 'demo.db'}"
    from qaio.cli import demo_tasks as tasks

    console.rule("[bold]qaio demo[/] on the embedded default")
    console.print(f"broker: {tasks.app.url}  (a SQLite file; no server)")
    started = time.perf_counter()
    resized = tasks.resize.enqueue_many([{"path": f"img{i}.png", "width": 200} for i in range(count)])
    emails = tasks.send_email.enqueue_many([{"to": f"u{i}@example.com", "subject": "hi"} for i in range(100)])
    flaky = tasks.flaky_upload.enqueue(name="report.pdf")
    dead = tasks.doomed.enqueue(reason="the bucket does not exist")
    report = tasks.build_report.enqueue(steps=8)
    stale = tasks.resize.with_options(ttl=0.2).enqueue(path="old.png", width=10)
    console.print(f"enqueued {count + 104} jobs in {time.perf_counter() - started:.2f} s; one has a 0.2 s ttl")
    time.sleep(0.3)  # the ttl job now waited longer than it may: the worker will discard it as expired

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "qaio", "worker", "qaio.cli.demo_tasks:app", "--burst", "--log-level", "ERROR"],
            env=os.environ.copy(),
        )
        for _ in range(workers)
    ]
    console.print(f"started {workers} worker processes: qaio worker qaio.cli.demo_tasks:app")
    everything = [*resized, *emails, flaky, dead, report, stale]
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"))
    with Progress(*columns, console=console) as bar:
        done_bar = bar.add_task("jobs finished", total=len(everything))
        report_bar = bar.add_task("build_report progress", total=100)
        while any(p.poll() is None for p in procs):
            finished = sum(1 for state in _states(tasks.app) if state.status.finished)
            bar.update(done_bar, completed=finished)
            state = report.state()
            if state is not None and state.progress is not None:
                bar.update(
                    report_bar, completed=state.progress * 100, description=f"build_report: {state.progress_message}"
                )
            time.sleep(0.1)
        bar.update(done_bar, completed=len(everything))
    elapsed = time.perf_counter() - started

    statuses: dict[str, int] = {}
    for state in _states(tasks.app):
        statuses[state.status.value] = statuses.get(state.status.value, 0) + 1
    table = Table("what", "outcome", title="summary")
    table.add_row("jobs by status", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    table.add_row("time", f"{len(everything)} jobs in {elapsed:.1f} s, worker start-up and retry backoff included")
    flaky_state = flaky.state()
    table.add_row("retry", f"flaky_upload: {flaky_state.status.value if flaky_state else '?'} -> {flaky.result(5)}")
    dead_state = dead.state()
    table.add_row(
        "dead letter",
        f"doomed: {dead_state.status.value if dead_state else '?'}: {dead_state.error if dead_state else ''}",
    )
    table.add_row("progress", f"build_report: {report.result(5)} (watched live above)")
    stale_state = stale.state()
    table.add_row("expired", f"resize(old.png): {stale_state.status.value if stale_state else '?'}")
    console.print(table)
    console.print(f"try: qaio info --url {tasks.app.url}   |   qaio jobs list --status dead --url {tasks.app.url}")
    ok = (
        flaky_state is not None
        and flaky_state.status is JobStatus.SUCCEEDED
        and dead_state is not None
        and dead_state.status is JobStatus.DEAD
        and stale_state is not None
        and stale_state.status is JobStatus.EXPIRED
        and statuses.get("succeeded", 0) == count + 102
    )
    tasks.app.close()
    if not ok:
        raise click.ClickException("the demo did not end as expected; see the summary above")


def _states(app: App) -> list[JobState]:
    return [state for _, state in app.portal.call(_list(app))]


async def _list(app: App) -> list[tuple[str, JobState]]:
    return await (await app.backend()).list_jobs(queue=None, status=None, limit=1_000_000)

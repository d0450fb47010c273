"""`qaio info`, `qaio jobs ...` and `qaio purge`: look at queues and jobs, and act on them."""

from __future__ import annotations

import dataclasses
import time

import click
import orjson
from rich.console import Console
from rich.table import Table

from qaio.brokers import redacted
from qaio.cli.common import app_option, friendly, resolve_app, run, url_option
from qaio.status import JobStatus


@click.command()
@app_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly
def info(app_ref: str | None, url: str, as_json: bool) -> None:
    """Queues with their counts, jobs by status and live workers."""
    app = resolve_app(app_ref, url)

    async def main() -> None:
        backend = await app.backend()
        queues, workers = await backend.queue_stats(), await backend.workers()
        by_status: dict[str, int] = {}
        for _, state in await backend.list_jobs(queue=None, status=None, limit=1_000_000):
            by_status[state.status.value] = by_status.get(state.status.value, 0) + 1
        await app.aclose()
        if as_json:
            click.echo(
                orjson.dumps(
                    {
                        "url": redacted(app.url),
                        "queues": [dataclasses.asdict(q) for q in queues],
                        "statuses": by_status,
                        "workers": [w.to_dict() for w in workers],
                    },
                    option=orjson.OPT_INDENT_2,
                ).decode()
            )
            return
        console = Console()
        table = Table("queue", "ready", "scheduled", "running", "dead", title=f"queues on {redacted(app.url)}")
        for q in queues:
            table.add_row(q.queue, str(q.queued), str(q.scheduled), str(q.running), str(q.dead))
        console.print(table)
        console.print("jobs by status: " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"))
        table = Table("worker", "queues", "concurrency", "processed", "up", title="live workers")
        for w in workers:
            table.add_row(
                w.worker_id,
                ",".join(w.queues),
                str(w.concurrency),
                str(w.processed),
                f"{time.time() - w.started_at:.0f} s",
            )
        console.print(table)

    run(main())


@click.group()
def jobs() -> None:
    """List, show, retry and cancel jobs."""


@jobs.command("list")
@app_option
@url_option
@click.option("--queue")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@friendly
def list_jobs(app_ref: str | None, url: str, queue: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The newest jobs, optionally of one queue or status."""
    app = resolve_app(app_ref, url)

    async def main() -> None:
        rows = await (await app.backend()).list_jobs(
            queue=queue, status=None if status is None else JobStatus(status), limit=limit
        )
        await app.aclose()
        if as_json:
            for job_id, state in rows:
                click.echo(orjson.dumps({"id": job_id, **state.to_dict()}, default=repr).decode())
            return
        table = Table("task", "queue", "status", "attempt", "error")
        table.add_column("id", no_wrap=True)
        table.columns.insert(0, table.columns.pop())
        for job_id, state in rows:
            table.add_row(
                job_id, state.task, state.queue, state.status.value, str(state.attempt), (state.error or "")[:60]
            )
        Console().print(table)

    run(main())


@jobs.command()
@click.argument("job_id")
@app_option
@url_option
@friendly
def show(job_id: str, app_ref: str | None, url: str) -> None:
    """Everything known about one job, as JSON (the traceback included)."""
    app = resolve_app(app_ref, url)
    state = app.job(job_id).state()
    app.close()
    if state is None:
        raise click.ClickException(f"no job {job_id} (or its result expired)")
    click.echo(orjson.dumps(state.to_dict(), option=orjson.OPT_INDENT_2, default=repr).decode())


@jobs.command()
@click.argument("job_ids", nargs=-1, required=True)
@app_option
@url_option
@friendly
def retry(job_ids: tuple[str, ...], app_ref: str | None, url: str) -> None:
    """Put dead or failed jobs back in their queue as a fresh first attempt."""
    _each(job_ids, app_ref, url, "requeue", "requeued", "not dead or failed")


@jobs.command()
@click.argument("job_ids", nargs=-1, required=True)
@app_option
@url_option
@friendly
def cancel(job_ids: tuple[str, ...], app_ref: str | None, url: str) -> None:
    """Cancel jobs: queued ones at once, running ones at their worker's next heartbeat."""
    _each(job_ids, app_ref, url, "cancel", "cancelled", "finished already or unknown")


def _each(job_ids: tuple[str, ...], app_ref: str | None, url: str, method: str, done: str, not_done: str) -> None:
    app = resolve_app(app_ref, url)

    async def main() -> list[bool]:
        backend = await app.backend()
        results = [await getattr(backend, method)(job_id) for job_id in job_ids]
        await app.aclose()
        return results

    failed = 0
    for job_id, ok in zip(job_ids, run(main()), strict=True):
        click.echo(f"{job_id}: {done if ok else not_done}")
        failed += not ok
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("queue")
@app_option
@url_option
@click.option("--yes", is_flag=True, help="Do not ask.")
@friendly
def purge(queue: str, app_ref: str | None, url: str, yes: bool) -> None:
    """Drop every job waiting in QUEUE (running jobs finish)."""
    if not yes:
        click.confirm(f"Drop every waiting job of {queue!r}?", abort=True)
    app = resolve_app(app_ref, url)

    async def main() -> int:
        dropped = await (await app.backend()).purge(queue)
        await app.aclose()
        return dropped

    click.echo(f"dropped {run(main())} job(s) from {queue}")

"""Celery driver: kombu's SQLAlchemy transport on SQLite (``sqla+sqlite://``) as the broker and the
SQLAlchemy database result backend (``db+sqlite://``), both files under BENCH_DATA_DIR.

The worker is ``celery -A celery_driver worker`` (see the registry for its flags). Celery has no bulk
publish API (a group publishes one message per task), so the bulk row is n/a.
"""

from __future__ import annotations

import os
import sqlite3

from _common import DATA_DIR, RESULT_TIMEOUT_S, mark_done
from celery import Celery
from celery.app.task import Task
from kombu.transport import sqlalchemy as kombu_sqla

# The transport passes every broker_transport_options key to create_engine(), which rejects
# polling_interval, so the idle poll (default 1 s) is set on the transport class instead.
kombu_sqla.Transport.polling_interval = float(os.environ.get("BENCH_CELERY_POLL", "0.01"))

VIA = "AsyncResult.get(interval=1 ms): polls the result table every 1 ms"

BROKER_DB, RESULTS_DB = os.path.join(DATA_DIR, "celery-broker.db"), os.path.join(DATA_DIR, "celery-results.db")
for path in (BROKER_DB, RESULTS_DB):  # WAL is a property of the file, so every connection gets it
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")

app = Celery("bench", broker=f"sqla+sqlite:///{BROKER_DB}", backend=f"db+sqlite:///{RESULTS_DB}")
app.conf.update(
    task_default_queue="bench",
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "4")),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


def setup() -> Task:
    return noop


def enqueue(task: Task) -> None:
    task.delay()


def roundtrip(task: Task) -> None:
    task.delay().get(timeout=RESULT_TIMEOUT_S, interval=0.001)

"""Synchronous producers (blocking.py): `Task.enqueue` and `enqueue_many` from plain threads write
straight to Redis over blocking sockets, and ride out what the asyncio client rides out: a script
Redis forgot, killed connections, a restart. Their jobs are the same jobs: workers run them, and
`Job.result()` waits for them."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import redis
from redis_servers import RedisCluster, RedisServer

from qaio import App, JobStatus, Worker
from qaio.brokers.redis import RedisBroker


def test_threads_enqueue_jobs_a_worker_runs(url: str, raw: redis.Redis) -> None:
    app = App(url, result_ttl=60)

    @app.task(name="square")
    def square(x: int) -> int:
        return x * x

    ids: dict[int, list[str]] = {}

    def produce(base: int) -> None:
        jobs = [square.enqueue(x=base + i) for i in range(20)]
        jobs += square.enqueue_many([{"x": base + i} for i in range(20, 40)])
        assert all(job.created for job in jobs)
        ids[base] = [job.id for job in jobs]

    threads = [threading.Thread(target=produce, args=(100 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({job_id for each in ids.values() for job_id in each}) == 160
    broker = app._sync_enqueue.__self__  # type: ignore[union-attr]
    assert isinstance(broker, RedisBroker)  # the blocking path, not the portal's loop
    assert raw.zcard("qaio:{default}:ready:0") + raw.llen("qaio:{default}:intake") == 160

    taken = square.with_options(job_id="fixed").enqueue(x=3)
    again = square.with_options(job_id="fixed").enqueue(x=4)
    assert taken.created and not again.created  # ids stay unique

    worker = Worker(app, concurrency=8)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    thread.start()
    try:
        assert taken.result(timeout=10) == 9
        assert app.job(ids[300][-1]).result(timeout=10) == (300 + 39) ** 2
    finally:
        worker.stop()
        thread.join(10)
        app.close()


def test_forgotten_scripts_and_killed_connections(server_factory: Callable[..., RedisServer]) -> None:
    server = server_factory()
    app = App(server.url)
    noop = app.task(name="noop")(lambda: None)
    admin = redis.Redis(port=server.port)
    try:
        assert noop.enqueue().created
        admin.script_flush()
        mine = admin.client_id()
        assert sum(admin.client_kill_filter(_id=c["id"]) for c in admin.client_list() if c["id"] != mine) >= 1
        job = noop.enqueue()
        assert job.created and job.status() is JobStatus.QUEUED
        assert admin.zcard("qaio:{default}:ready:0") == 2
    finally:
        admin.close()
        app.close()


def test_a_producer_waits_for_redis_to_come_back(server_factory: Callable[..., RedisServer]) -> None:
    server = server_factory(persistent=True)
    app = App(server.url)
    noop = app.task(name="noop")(lambda: None)
    try:
        assert noop.enqueue().created
        server.kill()
        created: list[bool] = []
        late = threading.Thread(target=lambda: created.extend(job.created for job in noop.enqueue_many([{}] * 3)))
        late.start()
        time.sleep(1.0)
        assert late.is_alive()  # waiting with backoff, not failing
        server.start()
        late.join(30)
        assert created == [True] * 3
        with redis.Redis(port=server.port) as admin:
            assert admin.zcard("qaio:{default}:ready:0") + admin.llen("qaio:{default}:intake") == 4
    finally:
        app.close()


def test_a_cluster_producer_goes_through_the_loop(cluster: RedisCluster) -> None:
    """No blocking path on a Cluster (ids are reserved on other nodes first): the portal's loop."""
    app = App(cluster.url)
    noop = app.task(name="noop", queue="sync-cluster")(lambda: None)
    try:
        jobs = [noop.enqueue(), *noop.enqueue_many([{}] * 2)]
        assert all(job.created for job in jobs)
        assert {job.status() for job in jobs} == {JobStatus.QUEUED}
    finally:
        app.close()


def test_a_forked_child_opens_its_own_connection(url: str, raw: redis.Redis) -> None:
    """A process forked after its parent enqueued (a pre-forking server, multiprocessing) must not
    talk over the parent's socket: their replies would cross. The child enqueues one id again and
    again (created once, then refused), the parent new ids: each must get its own answers."""
    app = App(url)
    noop = app.task(name="noop")(lambda: None)
    try:
        assert noop.enqueue().created
        pid = os.fork()
        if pid == 0:  # the child: its exit status says whether it got its own answers, and nothing else runs
            code = 1
            try:
                answers = [noop.with_options(job_id="child").enqueue().created for _ in range(300)]
                code = 0 if answers == [True] + [False] * 299 else 2
            finally:
                os._exit(code)
        answers = [noop.enqueue().created for _ in range(300)]
        _, status = os.waitpid(pid, 0)
        assert answers == [True] * 300 and os.waitstatus_to_exitcode(status) == 0
        backend = app.portal.call(app.backend())
        assert [stats.queued for stats in app.portal.call(backend.queue_stats())] == [302]
    finally:
        app.close()

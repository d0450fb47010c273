"""Redis-specific behaviour: the key schema, blocking wake-ups, pushed results, bounded keys.

The broker contract itself (priorities, leases, receipts, cancel, requeue...) is pinned down by
tests/conformance, which runs against this broker too.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from redis_servers import RedisServer

from qaio import App, JobStatus, Worker
from qaio.brokers.redis import RedisBroker
from qaio.brokers.redis.keys import LEVELS, Keys
from qaio.brokers.redis.scripts import LUA, NAMES, helpers, source
from qaio.message import Message, encode
from qaio.protocols import Action, Delivery, Enqueued, JobState, Settlement
from qaio.serializers import get_serializer

SERIALIZER = get_serializer("json")


def job(queue: str = "default", *, priority: int = 0, level: int = 0, eta: float = 0.0, job_id: str = "") -> Enqueued:
    now = time.time()
    message = Message(id=job_id or uuid.uuid4().hex, task="t", queue=queue, priority=priority, level=level, eta=eta)
    return Enqueued(message.id, encode(message, SERIALIZER), queue, "t", priority, level, eta, now)


def succeeded(result: bytes | None = None) -> JobState:
    return JobState(JobStatus.SUCCEEDED, task="t", finished_at=time.time(), worker="w")


def test_every_script_opens_with_its_contract() -> None:
    """Each .lua file starts with its name, then documents KEYS, ARGV and what it returns."""
    for name in NAMES:
        header = (LUA / f"{name}.lua").read_text().split("\n\n")[0]
        assert header.startswith(f"-- {name}.lua: "), name
        for part in ("KEYS", "ARGV", "Returns"):
            assert part in header, (name, part)


def test_each_script_carries_only_the_helpers_it_uses() -> None:
    """scripts.source puts in front of a script the _common.lua helpers it names, and theirs, and no
    other; every helper is used by some script."""
    enqueue = source("enqueue")
    assert "local function lease_job(" in enqueue and "local function leased_key(" in enqueue  # via lease_job
    assert "local function take_back(" not in enqueue and "local function publish(" not in enqueue
    used = "".join(source(name) for name in NAMES)
    for names, _ in helpers():
        assert any(f"local {name} " in used or f"local function {name}(" in used for name in names), names


async def test_keys_share_the_queue_hash_tag(broker: RedisBroker, raw: redis.Redis) -> None:
    """Everything per queue or per job is under `{queue}`; only the id index, the queue registry and
    the worker registry are global."""
    await broker.enqueue([job("alpha"), job("beta", eta=time.time() + 60)])
    got = await broker.claim(["alpha"], limit=5, lease=5, wait=0)
    await broker.settle([Settlement(got[0], Action.ACK, succeeded())])
    for key in raw.scan_iter(count=1000):
        name = key.decode()
        assert re.match(r"qaio:(\{(alpha|beta)\}:|id:|queues$)", name), name


async def test_finished_jobs_expire_with_the_result_ttl(url: str, raw: redis.Redis) -> None:
    broker = RedisBroker(url, serializer=SERIALIZER, result_ttl=30)
    await broker.connect()
    try:
        item = job()
        await broker.enqueue([item])
        assert raw.ttl(f"qaio:{{default}}:job:{item.job_id}") == -1  # waiting jobs never expire
        (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
        await broker.settle([Settlement(delivery, Action.ACK, succeeded())])
        assert 0 < raw.ttl(f"qaio:{{default}}:job:{item.job_id}") <= 30
        assert 0 < raw.ttl(f"qaio:id:{item.job_id}") <= 30
    finally:
        await broker.close()


async def test_an_idle_claim_blocks_and_wakes_on_enqueue(broker: RedisBroker, url: str) -> None:
    """No polling: a claim parked on the marker returns as soon as another client enqueues."""
    producer = RedisBroker(url, serializer=SERIALIZER)
    await producer.connect()
    try:
        claim = asyncio.create_task(broker.claim(["default"], limit=1, lease=5, wait=5))
        await asyncio.sleep(0.2)
        assert not claim.done()
        start = time.monotonic()
        await producer.enqueue([job()])
        got = await asyncio.wait_for(claim, 2)
        assert len(got) == 1 and time.monotonic() - start < 0.1
    finally:
        await producer.close()


async def test_a_delayed_job_wakes_a_blocked_claim_when_due(broker: RedisBroker) -> None:
    """The marker carries the eta, so a worker blocked with a long wait wakes in time."""
    claim = asyncio.create_task(broker.claim(["default"], limit=1, lease=5, wait=5))
    await asyncio.sleep(0.1)
    due = time.time() + 0.3
    await broker.enqueue([job(eta=due)])
    got = await asyncio.wait_for(claim, 3)
    assert len(got) == 1 and abs(time.time() - due) < 0.2


async def test_after_a_partial_claim_the_next_one_blocks_until_due(broker: RedisBroker, raw: redis.Redis) -> None:
    """A claim that got fewer jobs than it asked for took all that was ready: the next claim blocks
    first, and still wakes for a new job at once and for an already waiting delayed job at its eta."""
    due = time.time() + 0.4
    delayed, ready = job(eta=due), job()
    await broker.enqueue([delayed, ready])
    assert [d.job_id for d in await broker.claim(["default"], limit=5, lease=5, wait=0)] == [ready.job_id]
    raw.delete(*broker.keys.group("default")[10:20])  # the markers, as if another worker's BZPOPMIN took them
    got = await asyncio.wait_for(broker.claim(["default"], limit=5, lease=5, wait=3), 5)
    assert [d.job_id for d in got] == [delayed.job_id] and abs(time.time() - due) < 0.3

    claim = asyncio.create_task(broker.claim(["default"], limit=5, lease=5, wait=3))
    await asyncio.sleep(0.2)
    assert not claim.done()
    start, late = time.monotonic(), job()
    await broker.enqueue([late])
    assert [d.job_id for d in await asyncio.wait_for(claim, 2)] == [late.job_id]
    assert time.monotonic() - start < 0.5


async def test_every_idle_worker_wakes_for_a_burst(url: str) -> None:
    """Three idle workers and one enqueue of six jobs: each worker gets one handed to it at once (the
    rest are ready behind the re-armed marker), and all six are taken, none twice."""
    brokers = [RedisBroker(url, serializer=SERIALIZER) for _ in range(3)]
    for b in brokers:
        await b.connect()
    try:
        claims = [asyncio.create_task(b.claim(["default"], limit=2, lease=5, wait=3)) for b in brokers]
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await brokers[0].enqueue([job() for _ in range(6)])
        first = await asyncio.gather(*claims)
        assert all(first) and time.monotonic() - start < 0.5
        rest = [d for b in brokers for d in await b.claim(["default"], limit=2, lease=5, wait=0)]
        taken = [d.job_id for got in first for d in got] + [d.job_id for d in rest]
        assert len(taken) == 6 and len(set(taken)) == 6
    finally:
        for b in brokers:
            await b.close()


async def test_an_idle_worker_is_handed_the_next_job(broker: RedisBroker, url: str, raw: redis.Redis) -> None:
    """A blocked worker is registered as idle: the next ready job of a level it takes is leased to it
    inside the enqueue and lands in its inbox, never in the ready zset; one it does not take waits."""
    producer = RedisBroker(url, serializer=SERIALIZER)
    await producer.connect()
    try:
        claim = asyncio.create_task(broker.claim(["default"], limit=4, lease=5, max_level=3, wait=3))
        await asyncio.sleep(0.2)
        heavy, light = job(level=7), job(level=2)
        await producer.enqueue([heavy])
        await asyncio.sleep(0.2)
        assert not claim.done(), "a level-7 job is not handed to a worker that takes levels 0-3"
        await producer.enqueue([light])
        (delivery,) = await asyncio.wait_for(claim, 2)
        assert delivery.job_id == light.job_id and delivery.deliveries == 1
        group = broker.keys.group("default")
        assert raw.zcard(group[2]) == 0 and raw.zcard(group[7]) == 1  # ready:2 never held it; ready:7 waits
        assert (await broker.get_state(light.job_id)).status is JobStatus.STARTED  # type: ignore[union-attr]
        await broker.settle([Settlement(delivery, Action.ACK, succeeded())])
        assert (await broker.get_state(light.job_id)).status is JobStatus.SUCCEEDED  # type: ignore[union-attr]
    finally:
        await producer.close()


async def test_the_settle_of_its_only_job_registers_a_blocked_worker_again(
    broker: RedisBroker, url: str, raw: redis.Redis
) -> None:
    """A worker handed its only job blocks again at once, without a claim call (which would register it);
    the settle that ends the job registers it, so the next job is handed to it too. A settle while
    another of its jobs runs registers nothing: a busy worker claims in batches."""
    producer = RedisBroker(url, serializer=SERIALIZER)
    await producer.connect()
    idle = f"{broker.keys.prefix}:{{default}}:idle"

    async def blocked_claim() -> asyncio.Task[list[Delivery]]:
        claim = asyncio.create_task(broker.claim(["default"], limit=4, lease=5, wait=3))
        await asyncio.sleep(0.2)
        return claim

    try:
        claim = await blocked_claim()
        await producer.enqueue([job()])
        (first,) = await asyncio.wait_for(claim, 2)
        claim = await blocked_claim()
        assert raw.zcard(idle) == 0, "the hand-off took the registration, and no claim made a new one"
        await broker.settle([Settlement(first, Action.ACK, succeeded())])
        assert raw.zcard(idle) == 1
        second = job()
        await producer.enqueue([second])
        (handed,) = await asyncio.wait_for(claim, 2)
        assert handed.job_id == second.job_id and handed.receipt == f"{broker._token}:{second.job_id}"

        claim = await blocked_claim()
        third = job()
        await producer.enqueue([third])  # not handed (no registration): its marker wakes the claim
        (claimed,) = await asyncio.wait_for(claim, 2)
        assert claimed.job_id == third.job_id
        claim = await blocked_claim()
        await broker.settle([Settlement(handed, Action.ACK, succeeded())])
        assert raw.zcard(idle) == 0, "the third job still runs"
        await broker.settle([Settlement(claimed, Action.ACK, succeeded())])
        assert raw.zcard(idle) == 1
        claim.cancel()
    finally:
        await producer.close()


async def test_a_settle_registers_no_worker_while_a_job_it_takes_is_ready(
    broker: RedisBroker, raw: redis.Redis
) -> None:
    """settle.lua's optional registration (token, max level, lease, ttl) is skipped while a job of a level
    the worker takes is ready: the worker should claim it, not wait to be handed the next one."""
    await broker.enqueue([job(level=2)])
    idle = f"{broker.keys.prefix}:{{default}}:idle"
    keys = [broker.keys.head("default")]
    await broker.scripts.settle(keys, ["", 60_000, "w1", 3, 5000, 3000])
    assert raw.zcard(idle) == 0
    await broker.scripts.settle(keys, ["", 60_000, "w1", 1, 5000, 3000])
    assert raw.zrange(idle, 0, -1) == [b"w1|1|5000"]


async def test_a_job_handed_to_a_worker_that_died_is_delivered_again(url: str) -> None:
    """At-least-once: the job handed to a worker that never takes it is reaped when its lease runs out."""
    dead, alive = (RedisBroker(url, serializer=SERIALIZER) for _ in range(2))
    await dead.connect()
    await alive.connect()
    try:
        assert await dead.claim(["default"], limit=1, lease=0.2, wait=0.05) == []  # registers, then "dies"
        item = job()
        await alive.enqueue([item])
        assert await alive.claim(["default"], limit=1, lease=5, wait=0) == [], "it was handed to the dead one"
        await asyncio.sleep(0.3)
        assert await alive.reap() == 1
        (again,) = await alive.claim(["default"], limit=1, lease=5, wait=0)
        assert again.job_id == item.job_id and again.deliveries == 2
    finally:
        await alive.close()
        dead._known_queues.clear()  # it died: no retire
        await dead.close()


async def test_a_handed_job_taken_back_by_a_claim_gets_the_claims_lease(url: str, raw: redis.Redis) -> None:
    """A job handed to a worker between two of its claims is taken back by the next claim, leased anew:
    with the hand-off's lease, run out but not reaped yet, any reaper would give it to a second worker."""
    worker, other = (RedisBroker(url, serializer=SERIALIZER) for _ in range(2))
    await worker.connect()
    await other.connect()
    try:
        assert await worker.claim(["default"], limit=1, lease=0.2, wait=0.05) == []  # registers as idle
        item = job()
        await other.enqueue([item])  # handed to `worker`, leased for 0.2 s
        await asyncio.sleep(0.3)
        (taken,) = await worker.claim(["default"], limit=1, lease=30, wait=0)
        assert taken.job_id == item.job_id and taken.deliveries == 1
        expiry = raw.zscore(f"{worker.keys.prefix}:{{default}}:leased", item.job_id)
        assert expiry is not None and expiry > time.time() * 1000 + 20_000
        assert await other.reap() == 0 and await other.claim(["default"], limit=1, lease=5, wait=0) == []
    finally:
        await other.close()
        await worker.close()


async def test_an_idle_worker_is_registered_for_no_more_hand_offs_than_it_has_slots(url: str, raw: redis.Redis) -> None:
    """Each registration takes one hand-off: a worker with one free slot on two queues registers in one,
    or it would be handed a job it cannot start, whose lease then runs out and costs it a delivery."""
    worker, producer = (RedisBroker(url, serializer=SERIALIZER) for _ in range(2))
    await worker.connect()
    await producer.connect()
    try:
        assert await worker.claim(["qa", "qb"], limit=1, lease=5, wait=0.05) == []
        assert [raw.zcard(f"{worker.keys.prefix}:{{{q}}}:idle") for q in ("qa", "qb")] == [1, 0]
        first, second = job("qa"), job("qb")
        await producer.enqueue([first, second])  # the first is handed; the second waits in its ready set
        assert raw.zcard(f"{worker.keys.prefix}:{{qb}}:ready:0") == 1
        (taken,) = await worker.claim(["qa", "qb"], limit=1, lease=5, wait=0)
        assert taken.job_id == first.job_id
    finally:
        await producer.close()
        await worker.close()


async def test_a_stopping_worker_gives_handed_jobs_back(url: str) -> None:
    """A worker that closes drops its idle registration and returns what was handed to it, unrun."""
    leaving, staying = (RedisBroker(url, serializer=SERIALIZER) for _ in range(2))
    await leaving.connect()
    await staying.connect()
    try:
        assert await leaving.claim(["default"], limit=1, lease=5, wait=0.05) == []
        item = job()
        await staying.enqueue([item])
        await leaving.close()
        (delivery,) = await staying.claim(["default"], limit=1, lease=5, wait=0)
        assert delivery.job_id == item.job_id and delivery.deliveries == 1
    finally:
        await staying.close()


async def test_a_worker_that_stopped_is_handed_nothing_while_its_app_stays_open(url: str, raw: redis.Redis) -> None:
    """A burst worker ends idle, registered for hand-offs; its end takes it out of them, or the next job
    would sit in its inbox until the lease ran out."""
    app = App(url, result_ttl=60)
    add = app.task(name="add")(lambda a, b: a + b)
    try:
        await add.aenqueue(a=1, b=1)
        await Worker(app, burst=True, concurrency=4).run()
        assert raw.zcard("qaio:{default}:idle") == 0
        job = await add.with_options(job_id="after").aenqueue(a=2, b=2)
        assert raw.zcard("qaio:{default}:ready:0") == 1 and not raw.keys("qaio:{default}:inbox:*")
        await Worker(app, burst=True, concurrency=4).run()
        assert await job.aresult(timeout=5) == 4
    finally:
        await app.aclose()


async def test_levels_and_priorities_across_queues(broker: RedisBroker) -> None:
    """On one server a claim merges its queues by priority; max_level leaves higher levels alone."""
    await broker.enqueue(
        [
            job("a", priority=1, job_id="a1"),
            job("b", priority=7, job_id="b7"),
            job("a", priority=5, level=3, job_id="a5-level3"),
            job("b", priority=5, job_id="b5"),
        ]
    )
    got = await broker.claim(["a", "b"], limit=10, lease=5, max_level=2, wait=0)
    assert [d.job_id for d in got] == ["b7", "b5", "a1"]
    assert [d.queue for d in got] == ["b", "b", "a"]
    rest = await broker.claim(["a", "b"], limit=10, lease=5, wait=0)
    assert [d.job_id for d in rest] == ["a5-level3"]


async def test_a_batch_of_runs_keeps_each_jobs_fields_order_and_answer(broker: RedisBroker) -> None:
    """enqueue.lua takes runs of jobs that share all but id and body: the runs may switch queue,
    priority or eta between any two jobs, and each job still gets its own answer and place."""
    now = time.time()

    def item(job_id: str, queue: str = "a", priority: int = 0, eta: float = 0.0) -> Enqueued:
        message = Message(id=job_id, task="t", queue=queue, priority=priority, eta=eta, enqueued_at=now)
        return Enqueued(job_id, encode(message, SERIALIZER), queue, "t", priority, 0, eta, now)

    await broker.enqueue([item("taken")])
    batch = [item("a1"), item("a2"), item("taken"), item("a3"), item("b1", "b"), item("b2", "b"), item("a4")]
    batch += [item("a9", priority=9), item("later", eta=now + 60), item("a5"), item("a5")]
    assert await broker.enqueue(batch) == [True, True, False, True, True, True, True, True, True, True, False]
    got = await broker.claim(["a"], limit=10, lease=5, wait=0)
    assert [d.job_id for d in got] == ["a9", "taken", "a1", "a2", "a3", "a4", "a5"]
    assert [d.job_id for d in await broker.claim(["b"], limit=10, lease=5, wait=0)] == ["b1", "b2"]
    assert (await broker.get_state("later")).status is JobStatus.QUEUED  # type: ignore[union-attr]
    # b1 and b2 (all new) were reserved together, the run with 'taken' and the one with 'a5' twice
    # one id at a time: every id is in the index, pointing at its own job
    for job_id, queue in (("b1", "b"), ("b2", "b"), ("a3", "a"), ("a5", "a")):
        assert await broker.client.get(broker.keys.index(job_id)) == broker.keys.job(queue, job_id).encode()


async def test_one_call_may_carry_a_run_longer_than_lua_can_unpack(broker: RedisBroker, raw: redis.Redis) -> None:
    """qaio sends at most CHUNK jobs per call, but a producer in another language may send one run of
    5,000: the ids are then reserved one by one, and the ready ZADD goes out in parts (Lua's unpack
    stops at 8,000 values)."""
    ids = [f"long-{i}" for i in range(5000)]
    args: list[object] = [broker.keys.index_prefix, "", 1, "t", 0, 0, 0, time.time(), len(ids)]
    for job_id in ids:
        args += (job_id, encode(Message(id=job_id, task="t"), SERIALIZER))
    assert await broker.scripts.enqueue([broker.keys.head("long")], args) == [1] * 5000
    assert raw.zcard(broker.keys.group("long")[0]) == 5000
    assert raw.exists(*(broker.keys.index(job_id) for job_id in ids[::500])) == 10


async def test_a_producer_registers_its_queues_again_after_a_while(
    broker: RedisBroker, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue registry (the reaper's list of queues) is written by the first enqueue to a queue
    and again every REGISTER_EVERY seconds, so a registry lost with Redis's data comes back."""
    await broker.enqueue([job("reg")])
    assert raw.sismember(broker.keys.queues, "reg")
    raw.delete(broker.keys.queues)
    await broker.enqueue([job("reg")])
    assert not raw.sismember(broker.keys.queues, "reg")  # registered a moment ago: not sent again
    monkeypatch.setattr("qaio.brokers.redis.REGISTER_EVERY", 0.0)
    await broker.enqueue([job("reg")])
    assert raw.sismember(broker.keys.queues, "reg")


async def test_wait_state_is_pushed(broker: RedisBroker, url: str) -> None:
    """A waiting producer gets the final state (with the result) over its channel, at once."""
    item = job()
    await broker.enqueue([item])
    waiter = asyncio.create_task(broker.wait_state(item.job_id, timeout=10))
    (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
    await asyncio.sleep(0.1)
    assert not waiter.done()
    start = time.monotonic()
    await broker.settle([Settlement(delivery, Action.ACK, succeeded(), result=b'{"answer": 42}')])
    state = await asyncio.wait_for(waiter, 2)
    assert time.monotonic() - start < 0.1
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == {"answer": 42}


async def test_a_waiting_process_gets_later_jobs_pushed_unasked(broker: RedisBroker, raw: redis.Redis) -> None:
    """Once a process has waited, its new jobs carry its reply channel from the enqueue on, and an end
    pushed before anyone waits is kept for the waiter: here it is the only copy left."""
    first = job()
    await broker.enqueue([first])
    assert raw.hget(broker.keys.job("default", first.job_id), "w") is None
    (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
    await broker.settle([Settlement(delivery, Action.ACK, succeeded())])
    assert (await broker.wait_state(first.job_id, timeout=5)) is not None  # starts the listener

    second = job()
    await broker.enqueue([second])
    assert raw.hget(broker.keys.job("default", second.job_id), "w") is not None
    (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
    await broker.settle([Settlement(delivery, Action.ACK, succeeded(), result=b'"pushed"')])
    await asyncio.sleep(0.2)  # the push arrives while nobody waits
    raw.delete(broker.keys.job("default", second.job_id))
    state = await asyncio.wait_for(broker.wait_state(second.job_id, timeout=5), 2)
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "pushed"


async def test_a_results_of_any_bytes_survive_the_push(url: str) -> None:
    """Frames are length-prefixed: results with colons, dashes and NULs arrive intact (msgpack-like)."""
    raw_serializer = RawBytes()
    broker = RedisBroker(url, serializer=raw_serializer)
    await broker.connect()
    try:
        item = job()
        await broker.enqueue([item])
        waiter = asyncio.create_task(broker.wait_state(item.job_id, timeout=10))
        (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
        payload = b"-1:\x00\xff-:-"
        await asyncio.sleep(0.05)
        await broker.settle([Settlement(delivery, Action.ACK, succeeded(), result=payload)])
        state = await asyncio.wait_for(waiter, 2)
        assert state is not None and state.result == payload
    finally:
        await broker.close()


class RawBytes:
    name = "raw"

    def dumps(self, obj: object) -> bytes:
        assert isinstance(obj, bytes)
        return obj

    def loads(self, data: bytes) -> bytes:
        return data


async def test_a_worker_drains_a_redis_queue(url: str) -> None:
    app = App(url, result_ttl=60)

    @app.task(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    jobs = await add.aenqueue_many([{"a": i, "b": 1} for i in range(500)])
    stats = await Worker(app, burst=True, concurrency=32).run()
    assert stats.succeeded == 500
    assert [await j.aresult(timeout=5) for j in jobs[:3]] == [1, 2, 3]
    await app.aclose()


def test_the_lua_prelude_names_a_queues_keys_as_keys_py_does(raw: redis.Redis) -> None:
    """Scripts receive a queue's head only and name its other keys in Lua: the names must agree."""
    namers = [f"ready_key(1, {level})" for level in range(LEVELS)]
    namers += [f"marker_key(1, {level})" for level in range(LEVELS)]
    namers += [f"{name}_key(1)" for name in ("delayed", "leased", "seq", "done", "dead", "intake")]
    probe = f"return {{ {', '.join(namers)}, job_key(1, 'j1') }}"
    script = "".join(text for _, text in helpers()) + probe
    keys = Keys("pre")
    named = [name.decode() for name in raw.eval(script, 1, keys.head("q"))]
    assert named == [*keys.group("q"), keys.job("q", "j1")]


async def test_wait_state_times_out_with_the_latest_state(broker: RedisBroker) -> None:
    item = job()
    await broker.enqueue([item])
    start = time.monotonic()
    state = await broker.wait_state(item.job_id, timeout=0.3)
    assert state is not None and state.status is JobStatus.QUEUED
    assert 0.25 < time.monotonic() - start < 1.0
    assert await broker.wait_state("no-such-job", timeout=0.1) is None


@pytest.mark.parametrize("listening", [False, True], ids=["subscribed-by-watch", "channel-from-enqueue"])
async def test_a_push_lost_to_a_dropped_connection_is_recovered(
    server_factory: Callable[..., RedisServer], listening: bool
) -> None:
    """The listener's connection is killed and the job finishes while it is down: the waiter re-reads
    the job after the reconnect instead of waiting for a message that was never delivered. Both ways a
    job gets its reply channel: watch.lua when waiting starts, or enqueue.lua once the listener runs."""
    server = server_factory()
    broker = RedisBroker(server.url, serializer=SERIALIZER)
    await broker.connect()
    admin = redis.Redis(port=server.port)
    try:
        if listening:
            first = job()
            await broker.enqueue([first])
            (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
            await broker.settle([Settlement(delivery, Action.ACK, succeeded())])
            assert await broker.wait_state(first.job_id, timeout=5) is not None
        item = job()
        await broker.enqueue([item])
        waiter = asyncio.create_task(broker.wait_state(item.job_id, timeout=10))
        (delivery,) = await broker.claim(["default"], limit=1, lease=5, wait=0)
        await asyncio.sleep(0.1)
        # Room for the connections that exist, minus the listener's: it cannot come back for now.
        admin.config_set("maxclients", admin.info("clients")["connected_clients"] - 1)
        assert admin.client_kill_filter(_type="pubsub") == 1
        await broker.settle([Settlement(delivery, Action.ACK, succeeded())])
        await asyncio.sleep(0.2)
        assert not waiter.done()
        admin.config_set("maxclients", 10000)
        state = await asyncio.wait_for(waiter, 4)
        assert state is not None and state.status is JobStatus.SUCCEEDED
    finally:
        admin.close()
        await broker.close()

"""`redis://`, `rediss://`: the production broker. Key schema, scripts and reasoning: docs/redis.md.

Each method is one script call per batch (per queue on a Cluster): enqueue N, claim N, settle N and
extend N each cost one EVALSHA. Jobs are leased, never removed when taken; an idle worker blocks on
a marker key (BZPOPMIN) instead of polling; a producer waiting for a result gets it pushed over one
pub/sub channel per broker. One broker per event loop (`loop_bound`): redis-py connections belong to
the loop that opened them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import orjson

from qaio.brokers.redis.blocking import BlockingScripts
from qaio.brokers.redis.connection import Lane, RedisUrl, open_client, over_lane, parse
from qaio.brokers.redis.inspect import InspectorMixin
from qaio.brokers.redis.keys import LEVELS, Keys
from qaio.brokers.redis.plain import PlainWrite, level, priority
from qaio.brokers.redis.replies import RECHECK, STATE_FIELDS, Replies, decode_state, encode_extra, parse_frame
from qaio.brokers.redis.scripts import Scripts
from qaio.limits.caps import ConcurrencyCap, RedisCap
from qaio.limits.decision import Limiter
from qaio.limits.rates import parse_rate
from qaio.limits.redis import RedisLimiter
from qaio.protocols import Action, Delivery, Enqueued, JobState, Settlement
from qaio.serializers import Serializer
from qaio.status import FINISHED

__all__ = ["RedisBroker"]

log = logging.getLogger("qaio.redis")

#: Jobs per script call: keeps one call's time on the server in the low milliseconds.
CHUNK = 2000
#: Job id -> queue cache size (ids this process enqueued, so wait_state skips the index lookup).
WHERE_CACHE = 65536
#: Script lanes per broker: a worker's claim loop and its settler each find one free (through the
#: pool, a settle cost ~3x the client time); a lane connects on its first call, so a producer that
#: makes one call at a time opens one.
SCRIPT_LANES = 2
#: How long a blocked worker's idle registration lasts (ms): longer than one block (2 s at most).
IDLE_MS = 3000
#: How often a producer adds a queue it enqueues to to the queue registry again (s): once is enough
#: while Redis keeps its data, and the SADD was a sixth of a one-job enqueue's time on the server.
REGISTER_EVERY = 30.0

T = TypeVar("T")

_ACTIONS = {Action.ACK: "a", Action.DEAD: "d", Action.RETRY: "r", Action.RELEASE: "l"}


class RedisBroker(InspectorMixin):
    """Broker, result store and inspector on one Redis (or Redis Cluster with `?cluster=1`)."""

    loop_bound = True
    blocking = True

    def __init__(self, url: str, *, serializer: Serializer, result_ttl: float = 3600.0) -> None:
        self.url = url
        self.result_ttl = result_ttl
        self.target: RedisUrl = parse(url)
        self.cluster = self.target.cluster
        self.keys = Keys(self.target.prefix)
        self._serializer = serializer
        self._ttl_ms = max(int(result_ttl * 1000), 1)
        # On a single server the scripts keep the id index; on a Cluster ('') the client does.
        self._index_arg = "" if self.cluster else self.keys.index_prefix
        self._client: Any = None
        self._lanes: tuple[Lane, ...] = ()  #: script calls (see Scripts)
        self._blocking_lane: Lane | None = None  #: this worker's blocking pops
        self._scripts: Scripts | None = None
        self._blocking: BlockingScripts | None = None  #: synchronous producers' script calls
        self._replies: Replies | None = None
        self._known_queues: set[str] = set()
        #: queue -> when this process last added it to the queue registry (time.monotonic())
        self._registered: dict[str, float] = {}
        self._where: dict[str, str] = {}  #: job id -> queue, of the jobs this process enqueued
        self._turn = 0
        #: This broker's name as a worker: enqueue.lua hands jobs to it while it is registered as idle.
        self._token = secrets.token_hex(6)
        #: (queues, max level) whose last claim took all that was ready -> when their next delayed job is due
        self._drained: dict[tuple[tuple[str, ...], int], float] = {}
        #: (queues, max level, lease ms) while this worker blocks on its inboxes: its settles register it idle
        self._blocked_on: tuple[frozenset[str], int, int] | None = None
        #: Deliveries this broker handed out that are not settled yet (its worker's running jobs)
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- plumbing --
    async def connect(self) -> None:
        if self._client is None:
            self._loop = asyncio.get_running_loop()
            self._client = open_client(self.target)
            if not self.cluster:
                self._lanes = tuple(Lane(self.target) for _ in range(SCRIPT_LANES))
                self._blocking_lane = Lane(self.target)
            self._scripts = Scripts(self._client, self._lanes)
            self._replies = Replies(Lane(self.target, subscriber=True), self.keys.reply_prefix)

    async def close(self) -> None:
        """Close the connections on the loop that owns them (an App may close us from another loop)."""
        owner = self._loop
        if owner is not None and owner is not asyncio.get_running_loop():
            if owner.is_running() and not owner.is_closed():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.close(), owner))
            else:  # the owner loop is gone, and its sockets with it
                self._forget_connections()
            return
        if self._replies is not None:
            await self._replies.close()
        if self._client is not None and self._known_queues:
            await self._retire()
        for client in (*self._lanes, self._blocking_lane, self._client):
            if client is not None:
                await client.aclose()
        self._forget_connections()

    def _forget_connections(self) -> None:
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None
        self._client = self._scripts = self._replies = self._loop = None
        self._lanes, self._blocking_lane = (), None

    @property
    def client(self) -> Any:
        assert self._client is not None, "connect() first"
        return self._client

    @property
    def scripts(self) -> Scripts:
        assert self._scripts is not None, "connect() first"
        return self._scripts

    def _slots(self, queues: Iterable[str]) -> list[list[str]]:
        """Queues that one script call may span: all of them on one server, one each on a Cluster."""
        unique = list(dict.fromkeys(queues))
        return [[q] for q in unique] if self.cluster else [unique] if unique else []

    def _heads(self, queues: Sequence[str]) -> list[str]:
        return [self.keys.head(queue) for queue in queues]

    def _remember(self, jobs: Sequence[Enqueued]) -> None:
        """Where each of `jobs` lives, for `_locate`; the cache starts afresh when it would pass WHERE_CACHE."""
        where = self._where
        if len(where) + len(jobs) > WHERE_CACHE:
            where.clear()
        for job in jobs:
            where[job.job_id] = job.queue

    async def _locate(self, job_id: str, *, cached: bool = True) -> str | None:
        """The job hash's key: from this process's cache, else from the id index, else from the index
        once the intakes are taken in (a job written with plain commands is indexed then)."""
        if cached and (queue := self._where.get(job_id)) is not None:
            return self.keys.job(queue, job_id)
        index = self.keys.index(job_id)
        raw = await self.client.get(index)
        if raw is None and not self.cluster and await self._absorb(await self._all_queues()):
            raw = await self.client.get(index)
        return None if raw is None else raw.decode()

    # -- queue --
    async def enqueue(self, jobs: Sequence[Enqueued]) -> list[bool]:
        if not jobs:
            return []
        if len(jobs) > CHUNK:
            created: list[bool] = []
            for chunk in _chunks(jobs):
                created += await self.enqueue(chunk)
            return created
        if self._listening() is None and self._plain_ok(jobs):
            return await self._write_plain_async(jobs)
        if self.cluster:
            return await self._enqueue_cluster(jobs)
        return await self._enqueue(jobs, self._index_arg, registry=True)

    async def _enqueue(self, jobs: Sequence[Enqueued], index_arg: str, *, registry: bool) -> list[bool]:
        replies = self._listening()
        channel = "" if replies is None else replies.channel
        keys, args, register = self._enqueue_call(jobs, index_arg, registry=registry, channel=channel)
        if replies is not None:  # expected before the call: an end may be pushed before its reply is read
            for job in jobs:
                replies.expect(job.job_id)
        try:
            created = await self.scripts.enqueue(keys, args)
        except BaseException:
            if replies is not None:
                for job in jobs:
                    replies.forget(job.job_id)
            raise
        if replies is not None:
            for job, ok in zip(jobs, created, strict=True):
                if not ok:
                    replies.forget(job.job_id)
        return self._enqueued(jobs, created, register)

    def _listening(self) -> Replies | None:
        """The reply listener once this process has waited for a job (it starts on the first wait)."""
        replies = self._replies
        return replies if replies is not None and replies.started else None

    def _enqueue_call(
        self, jobs: Sequence[Enqueued], index_arg: str, *, registry: bool, channel: str
    ) -> tuple[list[str], list[Any], list[str]]:
        """enqueue.lua's keys and arguments for `jobs`, and the queues the call registers."""
        groups: dict[str, int] = {}
        keys: list[str] = []
        args: list[Any] = [index_arg, channel]
        run: tuple[Any, ...] = ()
        count_at = 0
        for job in jobs:  # runs of jobs that differ only in id and body share one header (enqueue.lua)
            head = job[2:8]  # queue, task, priority, level, eta, enqueued_at
            if head != run:
                run = head
                number = groups.get(job.queue)
                if number is None:
                    number = groups[job.queue] = len(groups) + 1
                    keys.append(self.keys.head(job.queue))
                eta_ms = int(job.eta * 1000) if job.eta > 0 else 0
                args += (number, job.task, priority(job), level(job), eta_ms, job.enqueued_at, 0)
                count_at = len(args) - 1
            args[count_at] += 1
            args += (job.job_id, job.body)
        register = self._unregistered(groups) if registry else []
        if register:
            keys.append(self.keys.queues)
        return keys, args, register

    def _enqueued(self, jobs: Sequence[Enqueued], created: Sequence[int], register: list[str]) -> list[bool]:
        """After enqueue.lua: the queues it registered, and where each new job lives."""
        self._mark_registered(register)
        self._remember([job for job, ok in zip(jobs, created, strict=True) if ok])
        return [bool(ok) for ok in created]

    def blocking_enqueue(self) -> Callable[[Sequence[Enqueued]], list[bool]] | None:
        """`enqueue` for synchronous producers, from any thread, over blocking sockets (see
        blocking.py); None on a Cluster, whose producers go through the loop."""
        if self.cluster:
            return None
        if self._blocking is None:
            self._blocking = BlockingScripts(self.target)
        return self._enqueue_blocking

    def _enqueue_blocking(self, jobs: Sequence[Enqueued]) -> list[bool]:
        blocking = self._blocking
        assert blocking is not None, "blocking_enqueue() first"
        if not jobs:
            return []
        if len(jobs) > CHUNK:
            return [ok for chunk in _chunks(jobs) for ok in self._enqueue_blocking(chunk)]
        if self._plain_ok(jobs):
            write = PlainWrite(self.keys, jobs)
            blocking.send(write.packed(), write.replies)
            return self._written_plain(jobs)
        keys, args, register = self._enqueue_call(jobs, self._index_arg, registry=True, channel="")
        return self._enqueued(jobs, blocking.run("enqueue", keys, args), register)

    def _plain_ok(self, jobs: Sequence[Enqueued]) -> bool:
        """Whether `jobs` may be written with plain commands (docs/redis.md) instead of enqueue.lua:
        each ready now, of priority 0, its id made by qaio (so it cannot be taken yet), its queue
        registered lately, on a single server. Redis runs an RPUSH and a ZADD in ~3 µs and a one-job
        script call in ~40, which was most of a one-job enqueue's round trip, and a batch's RPUSH ~0.5
        µs per job against the script's ~10; the next script on the queue takes the entries in (absorb
        in lua/_common.lua) and indexes their ids, or a worker's claim leases them as it takes them in.
        Such jobs skip the hand-off to an idle worker (the woken worker claims them), so a producer that
        waits for results keeps the script; so does a job of a higher priority, as a claim leases the
        intake's head in order, which is priority order only while the intake holds jobs of priority 0
        alone. A batch goes one way whole, so its jobs stay in order."""
        if self.cluster:
            return False
        queue = jobs[0].queue
        for job in jobs:
            if not job.fresh_id or job.eta > 0 or job.priority > 0:
                return False
            if job.queue != queue and not self._registered_lately(job.queue):
                return False
        return self._registered_lately(queue)

    async def _write_plain_async(self, jobs: Sequence[Enqueued]) -> list[bool]:
        """The plain commands over a free lane, else through the pooled client (which retries across
        reconnects; an entry written twice is dropped when taken in, its id being taken by then)."""
        write = PlainWrite(self.keys, jobs)

        async def pooled() -> Any:
            async with self.client.pipeline(transaction=False) as pipe:
                write.queue_on(pipe)
                return await pipe.execute()

        packed = write.packed()
        await over_lane(self._lanes, pooled, lambda lane: lane.send(packed, write.replies))
        return self._written_plain(jobs)

    def _written_plain(self, jobs: Sequence[Enqueued]) -> list[bool]:
        self._remember(jobs)
        return [True] * len(jobs)

    async def _enqueue_cluster(self, jobs: Sequence[Enqueued]) -> list[bool]:
        """Reserve the ids in the index first (SET NX, it may live on another node), then write each
        queue's jobs with one script call. An index entry whose job hash is missing (a producer died
        between the two steps, or is still between them) is taken over; enqueue.lua then leaves alone
        a job of that id written meanwhile, so one of two racing producers creates it."""
        keys = self.keys
        async with self.client.pipeline() as pipe:
            for job in jobs:
                pipe.set(keys.index(job.job_id), keys.job(job.queue, job.job_id), nx=True)
            reserved = list(await pipe.execute())
        for i, job in enumerate(jobs):
            if not reserved[i]:
                index, job_key = keys.index(job.job_id), keys.job(job.queue, job.job_id)
                held = await self.client.get(index)
                if held is None:  # gone since (expired, purged): reserve it as the first step would
                    reserved[i] = bool(await self.client.set(index, job_key, nx=True))
                elif not await self.client.exists(held.decode()):
                    await self.client.set(index, job_key)
                    reserved[i] = True
        await self._register_queues(job.queue for job in jobs)
        created = [False] * len(jobs)
        for queue in dict.fromkeys(job.queue for job in jobs):
            picked = [i for i, job in enumerate(jobs) if job.queue == queue and reserved[i]]
            if picked:
                done = await self._enqueue([jobs[i] for i in picked], "", registry=False)
                for i, ok in zip(picked, done, strict=True):
                    created[i] = ok
        return created

    async def unregister_worker(self, worker_id: str) -> None:
        """Also takes this broker out of the hand-offs: a worker that stopped while its App stays open
        would otherwise be handed the jobs enqueued in the next IDLE_MS, which would wait for their
        leases to run out."""
        if self._known_queues:
            await self._retire()
            self._known_queues.clear()
        await super().unregister_worker(worker_id)

    async def _retire(self) -> None:
        """As a worker stops: no more jobs handed to it, and those handed but not yet taken go back."""
        try:
            for slot in self._slots(sorted(self._known_queues)):
                await self.scripts.retire(self._heads(slot), [self._index_arg, self._token])
        except Exception:  # their leases run out and they are reaped instead
            log.warning("could not give back the jobs handed to this worker", exc_info=True)

    async def _register_queues(self, queues: Iterable[str]) -> None:
        due = self._unregistered(queues)
        if due:
            await self.client.sadd(self.keys.queues, *due)
            self._mark_registered(due)

    def _unregistered(self, queues: Iterable[str]) -> list[str]:
        """Those of `queues` this process has not added to the registry in the last REGISTER_EVERY
        seconds: again now and then, so a registry lost with Redis's data (or flushed) is rebuilt."""
        stale = time.monotonic() - REGISTER_EVERY
        registered = self._registered
        return [q for q in dict.fromkeys(queues) if registered.get(q, -math.inf) < stale]

    def _registered_lately(self, queue: str) -> bool:
        """`_unregistered` of one queue, without the list: the one-job enqueue asks on every call."""
        return self._registered.get(queue, -math.inf) >= time.monotonic() - REGISTER_EVERY

    def _mark_registered(self, queues: Iterable[str]) -> None:
        now = time.monotonic()
        for queue in queues:
            self._registered[queue] = now

    async def claim(
        self, queues: Sequence[str], *, limit: int, lease: float, max_level: int = 9, wait: float = 1.0
    ) -> list[Delivery]:
        """Claim; when nothing is due, block on the queues' markers until a job arrives, the next
        delayed job is due, or `wait` runs out, then claim again. A claim that got fewer jobs than it
        asked for took all that was ready, so the next one blocks first instead of asking in vain."""
        if not queues or limit <= 0:
            return []
        max_level = min(max(max_level, 0), LEVELS - 1)
        if self.cluster:
            await self._register_queues(queues)
        self._known_queues.update(queues)
        lease_ms = max(int(lease * 1000), 1)
        start = time.monotonic()
        deadline = start + wait
        drained = (tuple(queues), max_level)
        next_due = self._drained.pop(drained, None)
        if next_due is not None and wait > 0:
            handed = await self._block(queues, max_level, lease_ms, min(wait, max(next_due - start, 0.001)))
            if handed:
                return self._handed_to_us(handed, drained, limit, next_due)
        while True:
            deliveries, now_ms, next_eta = await self._claim_once(queues, limit, lease_ms, max_level, wait > 0)
            next_due = time.monotonic() + (next_eta - now_ms) / 1000 if next_eta >= 0 else math.inf
            if deliveries and len(deliveries) < limit:
                self._drained[drained] = next_due
            if deliveries or wait <= 0:
                self._in_flight += len(deliveries)
                return deliveries
            now = time.monotonic()
            if now >= deadline:
                return []
            handed = await self._block(queues, max_level, lease_ms, max(min(deadline, next_due) - now, 0.001))
            if handed:
                return self._handed_to_us(handed, drained, limit, next_due)

    def _handed_to_us(
        self, handed: list[Delivery], drained: tuple[tuple[str, ...], int], limit: int, next_due: float
    ) -> list[Delivery]:
        """A job is handed only to a worker whose queues were empty. If it is this worker's only job, its
        next claim blocks at once and the settle that ends the job registers it as idle again (see
        `settle`); a busy worker claims (and registers) as before, so that under load it takes batches."""
        if limit > 1 and self._in_flight == 0:
            self._drained[drained] = next_due
        self._in_flight += len(handed)
        return handed

    async def _claim_once(
        self, queues: Sequence[str], limit: int, lease_ms: int, max_level: int, idle: bool
    ) -> tuple[list[Delivery], int, int]:
        """One claim script call per slot. With `idle`, a call that finds nothing registers this worker
        as idle, so that the next job enqueued is handed straight to it (see `_block`)."""
        receipt = secrets.token_hex(8)
        slots = self._slots(queues)
        if self.cluster and len(slots) > 1:  # take turns, so no queue always goes first
            self._turn = (self._turn + 1) % len(slots)
            slots = slots[self._turn :] + slots[: self._turn]
        deliveries: list[Delivery] = []
        now_ms, next_eta = 0, -1
        args = [self._index_arg, 0, lease_ms, max_level, receipt, self._token, "1" if idle else "0", IDLE_MS]
        for slot in slots:
            want = limit - len(deliveries)
            if want <= 0:
                break
            args[1] = want
            out = await self.scripts.claim(self._heads(slot), args)
            now_ms = int(out[0])
            eta = int(out[1])
            if eta >= 0 and (next_eta < 0 or eta < next_eta):
                next_eta = eta
            first = 3 + 2 * int(out[2])
            for i in range(3, first, 2):
                deliveries.append(handed_delivery(out[i], slot[out[i + 1] - 1]))
            for i in range(first, len(out), 4):
                deliveries.append(Delivery(out[i].decode(), out[i + 1], receipt, int(out[i + 2]), slot[out[i + 3] - 1]))
        return deliveries, now_ms, next_eta

    async def _block(self, queues: Sequence[str], max_level: int, lease_ms: int, timeout: float) -> list[Delivery]:
        """BZPOPMIN on this worker's inboxes and the markers of the levels we take: returns when a job is
        handed to us (that delivery; on a Cluster, every one popped), when a marker is set, or on timeout
        (none). While it waits, a settle may register this worker as idle (`_blocked_on`)."""
        # "0" would block forever; 2 s at most, so a lost wake-up never costs more than that.
        seconds = f"{min(max(timeout, 0.001), 2.0):.3f}"
        slots = self._slots(queues)
        inbox = {q: self.keys.inbox(q, self._token) for q in queues}
        inboxes = {key.encode(): q for q, key in inbox.items()}
        keys = [
            [inbox[q] for q in slot] + [self.keys.marker(q, level) for q in slot for level in range(max_level + 1)]
            for slot in slots
        ]
        self._blocked_on = (frozenset(queues), max_level, lease_ms)
        try:
            if self._in_flight:
                # Let the jobs we were just handed run first: a quick one ends within two loop turns (its
                # task's step, then the settler's), so its settle, which the producer waits for, goes
                # out before this pop instead of behind it (~30 µs off a round trip's p50).
                for _ in range(2):
                    await asyncio.sleep(0)
            if len(keys) == 1:
                delivery = _handed(await self._pop(keys[0], seconds), inboxes)
                return [] if delivery is None else [delivery]
            # A Cluster with several queues: one blocking call per queue, until the first returns. Every
            # delivery popped counts, not the first only: one left out would wait for its lease to run out.
            loop = asyncio.get_running_loop()
            waits = [loop.create_task(self.client.execute_command("BZPOPMIN", *each, seconds)) for each in keys]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                # Replies already on their way are read before the rest are cancelled: a cancelled pop
                # whose element Redis had popped loses it until its lease runs out.
                for _ in range(3):
                    await asyncio.sleep(0)
            finally:
                for task in waits:
                    task.cancel()
                popped = await asyncio.gather(*waits, return_exceptions=True)
            replies = [_handed(each, inboxes) for each in popped if not isinstance(each, BaseException)]
            handed = [delivery for delivery in replies if delivery is not None]
            errors = [each for each in popped if isinstance(each, Exception)]  # not the pops we cancelled
            if errors and not handed:
                raise errors[0]
            return handed
        finally:
            self._blocked_on = None

    async def _pop(self, keys: list[str], seconds: str) -> list[bytes] | None:
        """BZPOPMIN over this worker's own connection when it is free, else through the pool (which
        also retries across a reconnect)."""
        command = ("BZPOPMIN", *keys, seconds)
        popped: list[bytes] | None = await over_lane(
            () if self._blocking_lane is None else (self._blocking_lane,),
            lambda: self.client.execute_command(*command),
            lambda lane: lane.call(*command),
        )
        return popped

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        idle_after = self._in_flight <= len(settlements)  # these end all the jobs this worker runs
        for chunk in _chunks(settlements):
            for slot in self._slots(item.delivery.queue for item in chunk):
                number = {queue: i + 1 for i, queue in enumerate(slot)}
                args: list[Any] = [self._index_arg, self._ttl_ms]
                for item in chunk:
                    group = number.get(item.delivery.queue)
                    if group is not None:
                        args += _settle_args(item, group)
                blocked = self._blocked_on
                if blocked is not None and idle_after and blocked[0].issuperset(slot):
                    args += (self._token, blocked[1], blocked[2], IDLE_MS)
                finished = await self.scripts.settle(self._heads(slot), args)
                if self.cluster and finished:
                    await self._expire_index([job_id.decode() for job_id in finished])
        self._in_flight = max(self._in_flight - len(settlements), 0)  # a failed settle is retried: count it once

    async def _expire_index(self, job_ids: Sequence[str]) -> None:
        async with self.client.pipeline() as pipe:
            for job_id in job_ids:
                pipe.pexpire(self.keys.index(job_id), self._ttl_ms)
            await pipe.execute()

    async def extend(self, deliveries: Sequence[Delivery], lease: float) -> list[bool]:
        kept: dict[int, bool] = {}
        lease_ms = max(int(lease * 1000), 1)
        for slot in self._slots(d.queue for d in deliveries):
            number = {queue: i + 1 for i, queue in enumerate(slot)}
            picked = [i for i, d in enumerate(deliveries) if d.queue in number]
            args: list[Any] = [self._index_arg, lease_ms]
            for i in picked:
                d = deliveries[i]
                args += (d.job_id, number[d.queue], d.receipt)
            for i, ok in zip(picked, await self.scripts.extend(self._heads(slot), args), strict=True):
                kept[i] = bool(ok)
        return [kept[i] for i in range(len(deliveries))]

    async def reap(self) -> int:
        queues = await self._all_queues()
        returned = 0
        for slot in self._slots(queues):
            for start in range(0, len(slot), 50):
                part = slot[start : start + 50]
                while True:
                    count = await self.scripts.reap(self._heads(part), [self._index_arg, self._ttl_ms])
                    returned += count
                    if count < 1000:
                        break
        return returned

    async def _all_queues(self) -> list[str]:
        stored = {q.decode() for q in await self.client.smembers(self.keys.queues)}
        return sorted(stored | self._known_queues)

    async def cancel(self, job_id: str, *, running: bool = True) -> bool:
        job_key = await self._locate(job_id, cached=False)
        if job_key is None:
            return False
        queue = Keys.queue_of(job_key)
        outcome = await self.scripts.cancel(
            [self.keys.head(queue)], [self._index_arg, job_id, self._ttl_ms, "1" if running else "0"]
        )
        if outcome == 2 and self.cluster:
            await self._expire_index([job_id])
        return outcome > 0

    async def forget(self, job_ids: Sequence[str]) -> None:
        by_queue: dict[str, list[str]] = {}
        for job_id in job_ids:
            job_key = await self._locate(job_id)
            if job_key is not None:
                by_queue.setdefault(Keys.queue_of(job_key), []).append(job_id)
                self._where.pop(job_id, None)
        for slot in self._slots(by_queue):
            args: list[Any] = [self._index_arg]
            for number, queue in enumerate(slot, 1):
                for job_id in by_queue[queue]:
                    args += (job_id, number)
            gone = await self.scripts.forget(self._heads(slot), args)
            if self.cluster and gone:
                await self._delete_index([raw.decode() for raw in gone])

    def rate_limiter(self, name: str, rate: str) -> Limiter:
        """A task's start rate, shared by every worker on this Redis (SharedRateLimits); a second's
        worth of starts may wait their turn, as with the per-process limiter."""
        return RedisLimiter(
            self.client, prefix=f"{self.keys.prefix}:rate", rate=rate, burst=max(1, int(parse_rate(rate)))
        )

    def concurrency_cap(self) -> ConcurrencyCap:
        """Gateway admission caps shared by every process on this Redis (SharedCaps)."""
        return RedisCap(self.client, prefix=f"{self.keys.prefix}:cap", lanes=self._lanes)

    # -- states --
    async def get_state(self, job_id: str) -> JobState | None:
        for cached in (True, False):
            job_key = await self._locate(job_id, cached=cached)
            if job_key is None:
                return None
            fields = await self.client.hmget(job_key, *STATE_FIELDS)
            if fields[0] is None and await self._took_in(job_key):
                fields = await self.client.hmget(job_key, *STATE_FIELDS)
            if fields[0] is not None:
                return decode_state(fields, Keys.queue_of(job_key), self._serializer)
            self._where.pop(job_id, None)
        return None

    async def _took_in(self, job_key: str) -> bool:
        """Whether the job's hash exists once its queue's intake is taken in: a job written with plain
        commands has none until a script takes its entry in (absorb in lua/_common.lua)."""
        return bool(await self._absorb([Keys.queue_of(job_key)])) and bool(await self.client.exists(job_key))

    async def wait_state(self, job_id: str, *, timeout: float) -> JobState | None:
        """Subscribe to the job's end (watch.lua) and wait for the pushed state; no polling, except a
        re-read every RECHECK seconds and after a reconnect, in case a push was lost."""
        deadline = time.monotonic() + timeout
        assert self._replies is not None, "connect() first"
        replies = self._replies
        await replies.start()
        job_key = await self._locate(job_id)
        located = job_id not in self._where  # True once the key came from the index, not the cache
        if job_key is not None and timeout > 0 and replies.expects(job_id):
            pushed = await replies.wait_pushed(job_id, min(timeout, RECHECK))
            if pushed is not None:
                return decode_state(pushed, Keys.queue_of(job_key), self._serializer)
        while True:
            if job_key is None:
                return None
            queue = Keys.queue_of(job_key)
            future = replies.add(job_id)
            try:
                fields = await self.scripts.watch(job_key, replies.channel)
                if fields is None:
                    if await self._took_in(job_key):
                        continue
                    if located:
                        return None
                    self._where.pop(job_id, None)  # stale cache entry: ask the index once
                    job_key, located = await self._locate(job_id, cached=False), True
                    continue
                state = decode_state(fields, queue, self._serializer)
                remaining = deadline - time.monotonic()
                if state.status in FINISHED or remaining <= 0:
                    return state
                # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow our cancellation.
                await asyncio.wait((future,), timeout=min(remaining, RECHECK))
                pushed = future.result() if future.done() else None
                if pushed is not None:
                    return decode_state(pushed, queue, self._serializer)
            finally:
                replies.discard(job_id, future)

    async def set_progress(self, job_id: str, progress: float, message: str | None) -> None:
        job_key = await self._locate(job_id)
        if job_key is not None:
            await self.scripts.progress(job_key, orjson.dumps([progress, message]))


def _handed(popped: list[bytes] | None, inboxes: dict[bytes, str]) -> Delivery | None:
    """The delivery if BZPOPMIN popped it from one of our inboxes; None for a marker or a timeout."""
    queue = inboxes.get(popped[0]) if popped else None
    return None if queue is None or popped is None else handed_delivery(popped[1], queue)


def handed_delivery(frame: bytes, queue: str) -> Delivery:
    """A delivery that enqueue.lua handed to this worker: netstrings of id, receipt, deliveries, body."""
    job_id, (receipt, deliveries, body) = parse_frame(frame)
    assert receipt is not None and deliveries is not None and body is not None
    return Delivery(job_id, body, receipt.decode(), int(deliveries), queue)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in script calls of at most CHUNK."""
    return (items[start : start + CHUNK] for start in range(0, len(items), CHUNK))


def _settle_args(item: Settlement, group: int) -> tuple[Any, ...]:
    state = item.state
    retry = item.action is Action.RETRY
    return (
        item.delivery.job_id,
        group,
        _ACTIONS[item.action],
        item.delivery.receipt,
        "" if state is None else state.status.value,
        b"" if state is None else encode_extra(state),
        item.result or b"",
        (item.retry_body or b"") if retry else b"",
        int(item.retry_eta * 1000) if retry else 0,
    )

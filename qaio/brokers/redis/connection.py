"""From a `redis://` or `rediss://` URL to redis-py asyncio clients that reconnect by themselves.

qaio's own URL options (removed before redis-py sees the URL):
    cluster=1   talk to a Redis Cluster (`redis.asyncio.cluster.RedisCluster`)
    prefix=X    key prefix instead of `qaio` (several apps on one database)
Everything else (TLS with `rediss://`, `user:password@`, `/db`, `?socket_timeout=`...) is redis-py's.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Connection, ConnectionPool, Redis, SSLConnection
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, ConnectionError, NoScriptError, ResponseError, TimeoutError

from qaio.brokers import redacted
from qaio.errors import ConfigError

T = TypeVar("T")

_hiredis_pack: Callable[..., bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is part of the redis extra
    _hiredis_pack = None

#: Script heads a ScriptPacker keeps packed (one per script and set of queues a process uses).
HEADS_KEPT = 256
#: Reconnect attempts per command, backing off from 20 ms to 1 s (`backoff`): rides out a Redis
#: restart of ~20 s.
RETRIES = 25
#: The errors a reconnect with backoff rides out (see `retryable` for the one exception).
RECONNECTABLE = (ConnectionError, TimeoutError)
#: Connections per client; callers beyond it wait for a free one instead of failing.
MAX_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class RedisUrl:
    url: str  #: what redis-py gets
    cluster: bool
    prefix: str


def parse(url: str) -> RedisUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"not a Redis URL: {redacted(url)!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in query if name in ("cluster", "prefix")}
    rest = [(name, value) for name, value in query if name not in ours]
    cluster = ours.get("cluster", "0").lower() in ("1", "true", "yes")
    prefix = ours.get("prefix", "qaio")
    if not prefix or "{" in prefix or "}" in prefix:
        raise ConfigError(f"bad prefix in {redacted(url)!r}: must be non-empty and free of braces")
    return RedisUrl(urlunsplit(parts._replace(query=urlencode(rest))), cluster, prefix)


def backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.02)


def retryable(error: Exception) -> bool:
    """False for a refused login, which fails at once: AuthenticationError is a kind of
    ConnectionError, and a wrong password would otherwise be tried again for ~20 s."""
    return not isinstance(error, AuthenticationError)


class _Reconnect(Retry):
    """redis-py's asyncio Retry, except that a refused login fails at once (`retryable`)."""

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def worth_it(error: Exception) -> bool:
            return retryable(error) and (is_retryable is None or is_retryable(error))

        return await super().call_with_retry(do, fail, worth_it, with_failure_count)


def retry() -> Retry:
    return _Reconnect(backoff(), RETRIES, supported_errors=RECONNECTABLE)


class _FastPacking:
    """Packs commands with hiredis (C) instead of redis-py's asyncio packer (Python): a script call
    has tens of arguments, and packing them was a quarter of a one-job enqueue's client time."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if _hiredis_pack is not None and not (b" " in first if isinstance(first, bytes) else " " in first):
            try:
                return [_hiredis_pack(args)]
            except TypeError:
                pass
        return super().pack_command(*args)  # type: ignore[misc, no-any-return]


class FastConnection(_FastPacking, Connection):
    pass


class FastSSLConnection(_FastPacking, SSLConnection):
    pass


def socket_options() -> dict[str, Any]:
    """No socket timeout, but TCP keepalive that notices a dead peer within ~25 s.

    redis-py's default socket_timeout (5 s) wraps every send in `asyncio.wait_for`, which on Python
    3.11 can swallow a task's cancellation (a worker's cancelled heartbeat then never ends), and would
    also cut blocking commands short. Keepalive finds half-open connections without either problem.
    """
    keepalive: dict[int, int] = {}
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            keepalive[getattr(socket, name)] = value
    return {
        "socket_timeout": None,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive,
    }


def open_client(target: RedisUrl) -> Any:
    """The command client: a pool of connections, every command retried across reconnects."""
    options: dict[str, Any] = {"retry": retry(), **socket_options()}
    if target.cluster:
        return RedisCluster.from_url(target.url, **options)
    pool = BlockingConnectionPool.from_url(target.url, max_connections=MAX_CONNECTIONS, timeout=None, **options)
    return Redis(connection_pool=_fast(pool))


class ScriptPacker:
    """Packs EVALSHA calls, the head (EVALSHA, sha, key count, keys) once per script and key list:
    a queue's scripts name the same keys call after call. Safe to share between threads (a dict,
    replaced whole when full)."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, tuple[str, ...]], bytes] = {}

    def pack(self, connection: Any, sha: str, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        """The call as bytes for `connection` (a redis-py connection, asyncio or blocking)."""
        if _hiredis_pack is None:
            return connection.pack_command("EVALSHA", sha, len(keys), *keys, *args)  # type: ignore[no-any-return]
        known = (sha, tuple(keys))
        head = self._heads.get(known)
        if head is None:
            if len(self._heads) >= HEADS_KEPT:
                self._heads = {}
            head = self._heads[known] = _after_count(_hiredis_pack(("EVALSHA", sha, len(keys), *keys)))
        tail = _after_count(_hiredis_pack(tuple(args)))
        return [b"*%d\r\n" % (3 + len(keys) + len(args)), head, tail]


class Lane:
    """One of redis-py's connections, held for good and spoken to directly, for the calls on a job's
    path (script calls, a worker's blocking pop, the reply listener). redis-py's client adds its pool
    checkout, locks and retry wrapper around each command; on loopback that is a fifth of a round
    trip. A lane does not retry: when it is busy or its call fails, the caller goes through the pooled
    client, which does. One caller at a time: `busy` says when the lane is taken.
    """

    def __init__(self, target: RedisUrl, *, subscriber: bool = False) -> None:
        # A pool only to read the URL as redis-py would (TLS, user, db...); the lane opens one connection.
        pool = _fast(ConnectionPool.from_url(target.url, retry=Retry(ExponentialBackoff(), 0), **socket_options()))
        options = pool.connection_kwargs
        if subscriber:  # RESP2: pub/sub messages are plain replies (RESP3 pushes go to redis-py's handlers)
            options = {**options, "protocol": 2}
        self._connection: AbstractConnection = pool.connection_class(**options)
        self.busy = False
        self._packer = ScriptPacker()

    async def call(self, *args: Any) -> Any:
        """Send one command and read its reply (a cancelled or failed call drops the connection,
        which the next call opens again). Raises redis-py's errors, ResponseError included."""
        return await self._exchange(self._connection.pack_command(*args))

    async def send(self, packed: bytes, replies: int) -> list[Any]:
        """Plain commands already packed as one RESP buffer, and their `replies` in order; an error
        reply is raised once all are read, so the connection stays in step."""
        connection = self._connection
        self.busy = True
        try:
            await connection.send_packed_command([packed], check_health=False)
            read: list[Any] = []
            error: ResponseError | None = None
            for _ in range(replies):
                try:
                    read.append(await connection.read_response())
                except ResponseError as exc:
                    error = error or exc
            if error is not None:
                raise error
            return read
        finally:
            self.busy = False

    async def script(self, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA (see ScriptPacker)."""
        return await self._exchange(self._packer.pack(self._connection, sha, keys, args))

    async def _exchange(self, packed: list[bytes]) -> Any:
        connection = self._connection
        self.busy = True
        try:
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        finally:
            self.busy = False

    async def read(self) -> Any:
        """Wait for the next message published to a `subscriber` lane (after its SUBSCRIBE)."""
        return await self._connection.read_response()

    async def aclose(self) -> None:
        await self._connection.disconnect()


async def over_lane(
    lanes: Sequence[Lane], fallback: Callable[[], Awaitable[Any]], attempt: Callable[[Lane], Awaitable[Any]]
) -> Any:
    """`attempt(lane)` with the first of `lanes` that is free; when none is, or the lane fails (Redis
    gone, or a script it forgot), `fallback()`: the same call through the pooled client, which
    reconnects with backoff and loads the script again."""
    for lane in lanes:
        if not lane.busy:
            try:
                return await attempt(lane)
            except (NoScriptError, ConnectionError, TimeoutError):
                break
    return await fallback()


async def run_script(script: Any, keys: Sequence[Any], args: Sequence[Any], lanes: Sequence[Lane]) -> Any:
    """Run a script registered on a pooled client (redis-py's AsyncScript), over a free lane when it can."""
    return await over_lane(lanes, lambda: script(keys, args), lambda free: free.script(script.sha, keys, args))


def _after_count(packed: bytes) -> bytes:
    """A packed command without its leading `*<count>` line, to be joined to another's."""
    return packed[packed.index(b"\r\n") + 2 :]


def _fast(pool: ConnectionPool) -> ConnectionPool:
    pool.connection_class = FastSSLConnection if issubclass(pool.connection_class, SSLConnection) else FastConnection
    return pool

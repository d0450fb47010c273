"""From a `redis://` or `rediss://` URL to redis-py asyncio clients that reconnect by themselves.

qaio's own URL options (removed before redis-py sees the URL):
    cluster=1   talk to a Redis Cluster (`redis.asyncio.cluster.RedisCluster`)
    prefix=X    key prefix instead of `qaio` (several apps on one database)
Everything else (TLS with `rediss://`, `user:password@`, `/db`, `?socket_timeout=`...) is redis-py's.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Connection, ConnectionPool, Redis, SSLConnection
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from qaio.errors import ConfigError

_hiredis_pack: Callable[..., bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is part of the redis extra
    _hiredis_pack = None

#: Reconnect attempts per command, backing off from 20 ms to 1 s: rides out a Redis restart of ~20 s.
RETRIES = 25
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
        raise ConfigError(f"not a Redis URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in query if name in ("cluster", "prefix")}
    rest = [(name, value) for name, value in query if name not in ours]
    cluster = ours.get("cluster", "0").lower() in ("1", "true", "yes")
    prefix = ours.get("prefix", "qaio")
    if not prefix or "{" in prefix or "}" in prefix:
        raise ConfigError(f"bad prefix in {url!r}: must be non-empty and free of braces")
    return RedisUrl(urlunsplit(parts._replace(query=urlencode(rest))), cluster, prefix)


def retry() -> Retry:
    return Retry(ExponentialBackoff(cap=1.0, base=0.02), RETRIES, supported_errors=(ConnectionError, TimeoutError))


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


def open_pinned(target: RedisUrl) -> Redis:
    """One connection held for good, for calls that find it free: checking a connection out of the
    pool and back costs as much as the round trip itself on loopback (redis-py's locks and checks)."""
    pool = ConnectionPool.from_url(target.url, retry=retry(), **socket_options())
    return _Pinned(connection_pool=_fast(pool), single_connection_client=True)


class _Pinned(Redis):
    def __del__(self, *args: Any) -> None:
        """An App left open until its loop closed: redis-py's close would need that loop (and raise)."""
        with contextlib.suppress(RuntimeError):
            super().__del__(*args)


def _fast(pool: ConnectionPool) -> ConnectionPool:
    pool.connection_class = FastSSLConnection if issubclass(pool.connection_class, SSLConnection) else FastConnection
    return pool


def open_listener(target: RedisUrl) -> Redis:
    """A plain client for pub/sub, without retries, so the reply listener sees every reconnect (and
    re-reads its jobs after one). On a Cluster it talks to the URL's node: PUBLISH reaches every node."""
    options: dict[str, Any] = {"retry": Retry(ExponentialBackoff(), 0), **socket_options()}
    return Redis.from_url(target.url, **options)

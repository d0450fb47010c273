"""Script calls and plain commands from synchronous code, over blocking connections, without a loop.

A Flask or Django view that calls `Task.enqueue` would otherwise hand each call to the portal's loop
and wait for it: two thread switches and an asyncio round trip, each slower than the blocking socket
RQ's and Celery's producers use. Only producers come this way; workers and waiters stay on asyncio.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from redis import ConnectionPool
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError
from redis.retry import Retry

from qaio.brokers.redis.connection import (
    RECONNECTABLE,
    RETRIES,
    RedisUrl,
    ScriptPacker,
    backoff,
    retryable,
    socket_options,
)
from qaio.brokers.redis.scripts import sha, source


class BlockingScripts:
    """Runs the scripts of `scripts.py` by name, and plain commands, from any thread, each thread over
    a connection of its own (a pool's checkout cost more than the send); reconnects with the asyncio
    client's backoff when Redis is away, and loads a script Redis has forgotten (a restart, SCRIPT
    FLUSH) before running it again."""

    def __init__(self, target: RedisUrl) -> None:
        # A pool only to read the URL as redis-py would (TLS, user, db...), as Lane does.
        pool = ConnectionPool.from_url(target.url, **socket_options())
        self._connection_class, self._options = pool.connection_class, pool.connection_kwargs
        self._local = threading.local()
        self._opened: weakref.WeakSet[Any] = weakref.WeakSet()
        # A forked child must not talk over its parent's sockets (their replies would cross): it
        # starts with none, and leaves the parent's open for the parent.
        os.register_at_fork(after_in_child=functools.partial(_forget_after_fork, weakref.ref(self)))
        self._retry = Retry(backoff(), RETRIES, supported_errors=RECONNECTABLE)
        self._packer = ScriptPacker()

    def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA of the script `name`."""
        return self._retrying(lambda connection: self._script(connection, name, keys, args))

    def send(self, packed: bytes, replies: int) -> list[Any]:
        """Plain commands already packed as one RESP buffer, and their `replies` in order. An error
        reply is raised once all are read, so the connection stays in step."""
        result: list[Any] = self._retrying(lambda connection: _exchange(connection, packed, replies))
        return result

    def _retrying(self, call: Callable[[Any], Any]) -> Any:
        try:  # the common case, without redis-py's retry loop around it
            return self._once(call)
        except RECONNECTABLE as error:
            if not retryable(error):
                raise
        return self._retry.call_with_retry(lambda: self._once(call), lambda error: None, retryable)

    def _once(self, call: Callable[[Any], Any]) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connection_class(**self._options)
            self._opened.add(connection)
        try:
            return call(connection)
        except (ConnectionError, TimeoutError, KeyboardInterrupt):  # mid-reply: the connection is unusable
            connection.disconnect()  # the next send connects again
            raise

    def _script(self, connection: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self._call(connection, name, keys, args)
        except NoScriptError:
            connection.send_command("SCRIPT", "LOAD", source(name))
            connection.read_response()
            return self._call(connection, name, keys, args)

    def _call(self, connection: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        # One buffer, one send: redis-py sends each part of a packed command with its own sendall.
        packed = b"".join(self._packer.pack(connection, sha(name), keys, args))
        connection.send_packed_command([packed], check_health=False)
        return connection.read_response()

    def close(self) -> None:
        for connection in list(self._opened):
            connection.disconnect()

    def _forget(self) -> None:
        self._local = threading.local()
        self._opened = weakref.WeakSet()


def _exchange(connection: Any, packed: bytes, count: int) -> list[Any]:
    connection.send_packed_command([packed], check_health=False)
    replies: list[Any] = []
    error: ResponseError | None = None
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as exc:
            error = error or exc
            replies.append(None)
    if error is not None:
        raise error
    return replies


def _forget_after_fork(scripts: weakref.ref[BlockingScripts]) -> None:
    alive = scripts()
    if alive is not None:
        alive._forget()

"""The Lua scripts, one per operation: read from `lua/*.lua` once, registered once per client.

`lua/_common.lua` (key-group layout and helpers) is put in front of each script, as bullmq's build
inlines its includes. Each wrapper checks the shape of its KEYS, so a wrong key list fails here, in
Python, rather than as a confusing Lua error.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from qaio.brokers.redis.connection import Lane, run_script
from qaio.brokers.redis.keys import GROUP_SIZE

LUA = Path(__file__).with_name("lua")

#: Scripts whose KEYS are whole queue groups (optionally plus one trailing key).
GROUPED = ("enqueue", "claim", "settle", "extend", "reap", "cancel", "requeue", "purge", "forget", "retire")
#: Scripts on one job hash.
SINGLE = ("watch", "progress")
NAMES = GROUPED + SINGLE


@cache
def source(name: str) -> str:
    """The full text sent to Redis for `name`: the common prelude, then the script."""
    common = (LUA / "_common.lua").read_text()
    return common + "\n" + (LUA / f"{name}.lua").read_text()


class _Script(Protocol):
    """What `register_script` returns (redis-py's AsyncScript), typed for our use."""

    sha: str

    async def __call__(self, keys: Sequence[Any] | None = None, args: Sequence[Any] | None = None) -> Any: ...


class Scripts:
    """Each operation as a typed coroutine, one EVALSHA each (redis-py reloads a script Redis forgot).

    With a `lane` (one held connection, see connection.Lane) a call goes over it when no other call is
    using it, and through the pooled client otherwise, or when the lane fails: a lone caller skips
    redis-py's per-command overhead, concurrent ones still run side by side, and only the pooled
    client retries across reconnects and reloads a script that Redis forgot.
    """

    def __init__(self, client: Any, lane: Lane | None = None) -> None:
        self._pooled = _register(client)
        self._lane = lane

    async def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await run_script(self._pooled[name], keys, args, self._lane)

    async def _grouped(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if len(keys) % GROUP_SIZE not in (0, 1) or len(keys) < GROUP_SIZE:
            raise ValueError(f"{name}: KEYS must be whole {GROUP_SIZE}-key queue groups, got {len(keys)} keys")
        return await self._run(name, keys, args)

    async def enqueue(self, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        return list(await self._grouped("enqueue", keys, args))

    async def claim(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        return list(await self._grouped("claim", keys, args))

    async def settle(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._grouped("settle", keys, args))

    async def extend(self, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        return list(await self._grouped("extend", keys, args))

    async def reap(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._grouped("reap", keys, args))

    async def cancel(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._grouped("cancel", keys, args))

    async def requeue(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._grouped("requeue", keys, args))

    async def purge(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._grouped("purge", keys, args))

    async def forget(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._grouped("forget", keys, args))

    async def retire(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._grouped("retire", keys, args))

    async def watch(self, job_key: str, channel: str) -> list[bytes | None] | None:
        fields = await self._run("watch", [job_key], [channel])
        return None if fields is None else list(fields)

    async def progress(self, job_key: str, blob: bytes) -> int:
        return int(await self._run("progress", [job_key], [blob]))


def _register(client: Any) -> dict[str, _Script]:
    return {name: client.register_script(source(name)) for name in NAMES}

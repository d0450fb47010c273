"""The Lua scripts, one per operation: read from `lua/*.lua` once, registered once per client.

The helpers of `lua/_common.lua` (the names of a queue's keys and the steps scripts share) that a
script uses are put in front of it, as bullmq's build inlines its includes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from qaio.brokers.redis.connection import Lane, run_script

LUA = Path(__file__).with_name("lua")

#: Scripts whose KEYS are queues' heads (keys.py Keys.head; enqueue's may end with the registry).
BY_QUEUE = ("enqueue", "claim", "settle", "extend", "reap", "cancel", "requeue", "purge", "forget", "retire", "absorb")
#: Scripts on one job hash.
SINGLE = ("watch", "progress")
NAMES = BY_QUEUE + SINGLE


@cache
def source(name: str) -> str:
    """The text sent to Redis for `name`: the helpers of the common prelude that it uses, then the
    script. Only those, because Redis runs the whole text on every call, and each helper defined is a
    closure made and collected per call: the whole prelude cost ~5 µs a call, a third of an empty script."""
    script = (LUA / f"{name}.lua").read_text()
    return "".join(_needed(helpers(), script)) + script


@cache
def sha(name: str) -> str:
    """The SHA1 Redis knows `source(name)` by, for EVALSHA."""
    return hashlib.sha1(source(name).encode()).hexdigest()


@cache
def helpers() -> tuple[tuple[frozenset[str], str], ...]:
    """`lua/_common.lua` as its top-level definitions: (names defined, text with the comment above it)."""
    parts: list[tuple[frozenset[str], str]] = []
    lines: list[str] = []
    for line in (LUA / "_common.lua").read_text().splitlines(keepends=True):
        # A definition or a comment starts a new part, unless a comment right above already did.
        if line.startswith(("local ", "--")) and not (lines and lines[-1].startswith("--")):
            parts.append((_defined(lines), "".join(lines)))
            lines = []
        lines.append(line)
    parts.append((_defined(lines), "".join(lines)))
    return tuple((names, text) for names, text in parts if names)


def _defined(lines: list[str]) -> frozenset[str]:
    return frozenset(m.group(1) for line in lines if (m := re.match(r"local (?:function )?(\w+)", line)))


def _needed(helpers: Sequence[tuple[frozenset[str], str]], script: str) -> list[str]:
    """The texts of the helpers `script` names, and of those they name in turn, in prelude order
    (names in comments do not count)."""
    wanted: set[int] = set()
    reach = _code(script)
    while True:
        more = {
            i
            for i, (names, _) in enumerate(helpers)
            if i not in wanted and any(re.search(rf"\b{name}\b", reach) for name in names)
        }
        if not more:
            return [helpers[i][1] for i in sorted(wanted)]
        wanted |= more
        reach = _code("".join(helpers[i][1] for i in more))


def _code(lua: str) -> str:
    return re.sub(r"--[^\n]*", "", lua)


class _Script(Protocol):
    """What `register_script` returns (redis-py's AsyncScript), typed for our use."""

    sha: str

    async def __call__(self, keys: Sequence[Any] | None = None, args: Sequence[Any] | None = None) -> Any: ...


class Scripts:
    """Each operation as a typed coroutine, one EVALSHA each (redis-py reloads a script Redis forgot).

    With `lanes` (held connections, see connection.Lane) a call goes over one that no other call is
    using, and through the pooled client when all are taken, or when the lane fails: callers up to
    the number of lanes skip redis-py's per-command overhead, more still run side by side, and only
    the pooled client retries across reconnects and reloads a script that Redis forgot.
    """

    def __init__(self, client: Any, lanes: Sequence[Lane] = ()) -> None:
        self._pooled = _register(client)
        self._lanes = lanes

    async def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await run_script(self._pooled[name], keys, args, self._lanes)

    async def enqueue(self, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        return list(await self._run("enqueue", keys, args))

    async def claim(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        return list(await self._run("claim", keys, args))

    async def settle(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._run("settle", keys, args))

    async def extend(self, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        return list(await self._run("extend", keys, args))

    async def reap(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run("reap", keys, args))

    async def cancel(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run("cancel", keys, args))

    async def requeue(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run("requeue", keys, args))

    async def purge(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._run("purge", keys, args))

    async def forget(self, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        return list(await self._run("forget", keys, args))

    async def retire(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run("retire", keys, args))

    async def absorb(self, keys: Sequence[str], args: Sequence[Any]) -> int:
        return int(await self._run("absorb", keys, args))

    async def watch(self, job_key: str, channel: str) -> list[bytes | None] | None:
        fields = await self._run("watch", [job_key], [channel])
        return None if fields is None else list(fields)

    async def progress(self, job_key: str, blob: bytes) -> int:
        return int(await self._run("progress", [job_key], [blob]))


def _register(client: Any) -> dict[str, _Script]:
    return {name: client.register_script(source(name)) for name in NAMES}

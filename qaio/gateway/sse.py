"""Server-sent events of a job's progress: one event per change of status or progress, until it ends.

The result store pushes only a job's end (`wait_state`), so changes in between are seen by re-reading
the state every `poll` seconds; the end itself arrives as soon as it is stored. A comment line every
`heartbeat` seconds of silence keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from qaio.protocols import ResultStore

#: Stop following a job after this long even if it has not finished (the client may reconnect).
MAX_STREAM = 3600.0


def event(name: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE frame. orjson never emits raw newlines, so the data fits on one `data:` line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def job_events(
    store: ResultStore,
    job_id: str,
    render: Callable[[Any], dict[str, Any]],
    *,
    poll: float = 0.1,
    heartbeat: float = 15.0,
) -> AsyncIterator[bytes]:
    """`state` events (the rendered JobInfo) in order, then one `end` event; the stream closes after it."""
    yield b"retry: 1000\n\n"
    seen: tuple[Any, ...] | None = None
    number = 0
    quiet_since = started = time.monotonic()
    state = await store.get_state(job_id)
    while state is not None:
        mark = (state.status, state.progress, state.progress_message)
        if mark != seen:
            seen, number = mark, number + 1
            quiet_since = time.monotonic()
            yield event("state", render(state), number)
        if state.status.finished or time.monotonic() - started > MAX_STREAM:
            break
        if time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        state = await store.wait_state(job_id, timeout=poll)
    status = "gone" if state is None else state.status.value
    yield event("end", {"id": job_id, "status": status}, number + 1)

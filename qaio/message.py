"""The wire envelope of a job (docs/protocol.md), and its encoding."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from qaio.errors import DecodeError
from qaio.serializers import Serializer

#: Envelope fields a producer in another language must write; the rest have defaults.
REQUIRED = ("id", "task")


class Message(NamedTuple):
    """One job as it travels: immutable, changed only through `_replace` (a retry is a new message).
    A tuple, as one is made per job on both the enqueue and the worker path."""

    id: str
    task: str
    kwargs: Mapping[str, Any] = {}  # shared by messages made without kwargs, so read-only
    queue: str = "default"
    priority: int = 0
    level: int = 0
    attempt: int = 1
    enqueued_at: float = 0.0
    eta: float = 0.0
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The envelope as plain data; optional fields at their default are left out to keep it small."""
        data: dict[str, Any] = {"id": self.id, "task": self.task, "kwargs": self.kwargs, "queue": self.queue}
        if self.priority:
            data["priority"] = self.priority
        if self.level:
            data["level"] = self.level
        if self.attempt != 1:
            data["attempt"] = self.attempt
        data["enqueued_at"] = self.enqueued_at
        if self.eta:
            data["eta"] = self.eta
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        return data

    def next_attempt(self, eta: float) -> Message:
        """The message of the next try after a failure."""
        return self._replace(attempt=self.attempt + 1, eta=eta)


def encode(message: Message, serializer: Serializer) -> bytes:
    return serializer.dumps(message.to_dict())


def decode(body: bytes, serializer: Serializer) -> Message:
    """Parse an envelope; anything malformed raises DecodeError with the reason (for the dead-letter store)."""
    try:
        data = serializer.loads(body)
    except Exception as exc:
        raise DecodeError(f"cannot decode message ({serializer.name}): {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"envelope must be an object, got {type(data).__name__}")
    missing = [name for name in REQUIRED if not isinstance(data.get(name), str)]
    if missing:
        raise DecodeError(f"envelope lacks string field(s): {', '.join(missing)}")
    kwargs = data.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise DecodeError("envelope field 'kwargs' must be an object")
    queue = data.get("queue", "default")
    if not isinstance(queue, str) or not queue:
        raise DecodeError(f"bad envelope field: queue must be a non-empty string, got {queue!r}")
    expires_at = data.get("expires_at")
    return Message(
        id=data["id"],
        task=data["task"],
        kwargs=kwargs,
        queue=queue,
        priority=_integer(data, "priority", 0, 9),
        level=_integer(data, "level", 0, 9),
        attempt=_integer(data, "attempt", 1, None),
        enqueued_at=_number(data, "enqueued_at", 0.0),
        eta=_number(data, "eta", 0.0),
        expires_at=None if expires_at is None else _number(data, "expires_at", 0.0),
    )


def _integer(data: dict[str, Any], name: str, low: int, high: int | None) -> int:
    """An integer field of the envelope, its default `low`: "5", 5.0 and true are refused, not coerced."""
    value = data.get(name, low)
    if type(value) is not int or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise DecodeError(f"bad envelope field: {name} must be an integer {bounds}, got {value!r}")
    return value


def _number(data: dict[str, Any], name: str, default: float) -> float:
    """A time field of the envelope: a finite JSON number (a string such as "nan" is refused)."""
    value = data.get(name, default)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise DecodeError(f"bad envelope field: {name} must be a finite number, got {value!r}")
    return float(value)


def fresh_body(body: bytes, serializer: Serializer, now: float) -> bytes:
    """The body of a dead or failed job requeued by hand: attempt 1 again, due now. A body that
    cannot be decoded is kept as it is (it will be dead-lettered again, with its reason)."""
    try:
        message = decode(body, serializer)
    except DecodeError:
        return body
    return encode(message._replace(attempt=1, eta=0.0, enqueued_at=now, expires_at=None), serializer)

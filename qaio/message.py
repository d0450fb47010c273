"""The wire envelope of a job (docs/protocol.md), and its encoding."""

from __future__ import annotations

from collections.abc import Mapping
from math import isfinite
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
    get = data.get
    queue, priority, level, attempt = get("queue", "default"), get("priority", 0), get("level", 0), get("attempt", 1)
    enqueued_at, eta, expires_at = get("enqueued_at", 0.0), get("eta", 0.0), get("expires_at")
    # One test of every field on the worker's path (this runs per job); which field and why only if it fails.
    if not (
        type(queue) is str
        and queue
        and type(priority) is int
        and 0 <= priority <= 9
        and type(level) is int
        and 0 <= level <= 9
        and type(attempt) is int
        and attempt >= 1
        and type(enqueued_at) in _NUMBERS
        and isfinite(enqueued_at)
        and type(eta) in _NUMBERS
        and isfinite(eta)
        and (expires_at is None or (type(expires_at) in _NUMBERS and isfinite(expires_at)))
    ):
        raise DecodeError(f"bad envelope field: {_bad_field(data)}")
    return Message(data["id"], data["task"], kwargs, queue, priority, level, attempt, enqueued_at, eta, expires_at)


_NUMBERS = (int, float)


def _bad_field(data: dict[str, Any]) -> str:
    """What is wrong with the first field that is not of the type and range docs/protocol.md gives:
    "5", 5.0 and true are refused as integers, strings such as "nan" as times; nothing is coerced."""
    value: Any = data.get("queue", "default")
    checks = [("queue", value, type(value) is str and value != "", "a non-empty string")]
    for name, low, high in (("priority", 0, 9), ("level", 0, 9), ("attempt", 1, None)):
        value = data.get(name, low)
        fits = type(value) is int and value >= low and (high is None or value <= high)
        checks.append((name, value, fits, f"an integer from {low} to {high}" if high else f"an integer >= {low}"))
    for name, default in (("enqueued_at", 0.0), ("eta", 0.0), ("expires_at", None)):
        value = data.get(name, default)
        fits = (value is None and default is None) or (type(value) in _NUMBERS and isfinite(value))
        checks.append((name, value, fits, "a finite number"))
    return next(f"{name} must be {what}, got {value!r}" for name, value, fits, what in checks if not fits)


def fresh_body(body: bytes, serializer: Serializer, now: float) -> bytes:
    """The body of a dead or failed job requeued by hand: attempt 1 again, due now. A body that
    cannot be decoded is kept as it is (it will be dead-lettered again, with its reason)."""
    try:
        message = decode(body, serializer)
    except DecodeError:
        return body
    return encode(message._replace(attempt=1, eta=0.0, enqueued_at=now, expires_at=None), serializer)

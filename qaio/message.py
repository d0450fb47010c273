"""The wire envelope of a job (docs/protocol.md), and its encoding."""

from __future__ import annotations

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
    try:
        expires_at = data.get("expires_at")
        return Message(
            id=data["id"],
            task=data["task"],
            kwargs=kwargs,
            queue=str(data.get("queue", "default")),
            priority=int(data.get("priority", 0)),
            level=int(data.get("level", 0)),
            attempt=int(data.get("attempt", 1)),
            enqueued_at=float(data.get("enqueued_at", 0.0)),
            eta=float(data.get("eta", 0.0)),
            expires_at=None if expires_at is None else float(expires_at),
        )
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"bad envelope field: {exc}") from exc


def fresh_body(body: bytes, serializer: Serializer, now: float) -> bytes:
    """The body of a dead or failed job requeued by hand: attempt 1 again, due now. A body that
    cannot be decoded is kept as it is (it will be dead-lettered again, with its reason)."""
    try:
        message = decode(body, serializer)
    except DecodeError:
        return body
    return encode(message._replace(attempt=1, eta=0.0, enqueued_at=now, expires_at=None), serializer)

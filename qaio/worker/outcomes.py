"""How a run ends, as the settlement a broker stores: the retry/fail/dead-letter policy in one place."""

from __future__ import annotations

import time
import traceback

from qaio.errors import Retry
from qaio.message import Message, encode
from qaio.protocols import Action, Delivery, JobState, Settlement
from qaio.serializers import Serializer
from qaio.status import JobStatus
from qaio.task import Task
from qaio.worker.executors import TaskError


def state_of(message: Message | None, status: JobStatus, worker: str, **fields: object) -> JobState:
    state = JobState(status, finished_at=time.time(), worker=worker, **fields)  # type: ignore[arg-type]
    if message is not None:
        state.task, state.queue, state.attempt = message.task, message.queue, message.attempt
        state.enqueued_at = message.enqueued_at
    return state


def dead(delivery: Delivery, message: Message | None, worker: str, reason: str) -> Settlement:
    """To the dead-letter store, with the reason; a human can requeue it."""
    return Settlement(delivery, Action.DEAD, state_of(message, JobStatus.DEAD, worker, error=reason))


def describe(exc: BaseException) -> str:
    """`Type: message`, even for an exception whose str() raises (else the job's outcome is lost)."""
    try:
        text = str(exc)
    except Exception:
        text = "<str() of the exception failed>"
    return f"{type(exc).__name__}: {text}"


def failure(
    delivery: Delivery,
    message: Message,
    task: Task[..., object],
    exc: BaseException,
    worker: str,
    serializer: Serializer,
) -> Settlement:
    """Retry while attempts remain (or when the task asked to); else failed, or dead if it had retries."""
    error = describe(exc)
    formatted = exc.formatted if isinstance(exc, TaskError) else traceback.format_exc()
    options = task.options
    if isinstance(exc, Retry) or message.attempt <= options.retries:
        delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
        eta = time.time() + (options.backoff.delay(message.attempt) if delay is None else delay)
        nxt = message.next_attempt(eta)
        state = state_of(message, JobStatus.RETRYING, worker, error=error, traceback=formatted)
        state.attempt, state.finished_at = nxt.attempt, None
        return Settlement(
            delivery,
            Action.RETRY,
            state,
            retry_body=encode(nxt, serializer),
            retry_eta=eta,
            priority=message.priority,
        )
    if options.retries:
        reason = f"retries exhausted after {message.attempt} attempts: {error}"
        return Settlement(
            delivery,
            Action.DEAD,
            state_of(message, JobStatus.DEAD, worker, error=reason, traceback=formatted),
        )
    return Settlement(
        delivery, Action.ACK, state_of(message, JobStatus.FAILED, worker, error=error, traceback=formatted)
    )


def postpone(delivery: Delivery, message: Message, worker: str, delay: float) -> Settlement:
    """Back to the queue unrun, due after `delay` (a rate limit said not yet); same attempt."""
    eta = time.time() + delay
    state = state_of(message, JobStatus.QUEUED, worker)
    state.finished_at = None
    return Settlement(delivery, Action.RETRY, state, retry_body=delivery.body, retry_eta=eta, priority=message.priority)

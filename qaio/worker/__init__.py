"""The worker: claims jobs from any broker, runs them, settles them."""

from qaio.worker.worker import Worker

__all__ = ["Worker"]

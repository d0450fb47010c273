"""What the commands share: finding the App, running a coroutine, printing errors kindly."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from qaio.app import DEFAULT_URL, App
from qaio.errors import QaioError
from qaio.loader import load_app

T = TypeVar("T")

app_option = click.option(
    "-A", "--app", "app_ref", metavar="MODULE:ATTR", help="The App to use (its URL and serializer)."
)
url_option = click.option(
    "--url",
    metavar="URL",
    default=lambda: os.environ.get("QAIO_URL", DEFAULT_URL),
    show_default="$QAIO_URL or " + DEFAULT_URL,
    help="Broker URL, when no --app is given.",
)


def resolve_app(app_ref: str | None, url: str) -> App:
    return load_app(app_ref) if app_ref else App(url)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def friendly(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn qaio's own errors, and the broker client's (a refused login, an unreachable host), into one
    red line and exit code 1, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except QaioError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if not _broker_error(exc):
                raise
            raise click.ClickException(f"broker error: {type(exc).__name__}: {exc}") from None

    return wrapper


def _broker_error(exc: Exception) -> bool:
    """An error of a broker's client library; looked up in sys.modules, as only a loaded client raises."""
    bases = [getattr(sys.modules.get(name), base, None) for name, base in _CLIENT_ERRORS]
    return isinstance(exc, tuple(base for base in bases if isinstance(base, type)))


_CLIENT_ERRORS = (("redis.exceptions", "RedisError"), ("sqlite3", "Error"))

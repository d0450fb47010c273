"""Broker modules, picked by URL scheme and imported only when used (their clients are extras)."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from qaio.errors import ConfigError
from qaio.protocols import Backend
from qaio.serializers import Serializer

SCHEMES = ("memory", "sqlite", "redis", "rediss")


def redacted(url: str) -> str:
    """`url` with its password (in the userinfo or a `password=` query argument) replaced by `***`, for
    reprs, errors and CLI output: a broker URL is configuration, its password a secret."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if parts.password is None and all(key != "password" for key, _ in query):
            return url
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
        query = [(key, "***" if key == "password" else value) for key, value in query]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    except ValueError:
        return "<unparsable URL>"


def open_backend(url: str, *, serializer: Serializer, result_ttl: float) -> Backend:
    """Build the backend a URL names. `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "memory":
        from qaio.brokers.memory import MemoryBroker

        return MemoryBroker(serializer=serializer, result_ttl=result_ttl)
    if scheme == "sqlite":
        from qaio.brokers.sqlite import SqliteBroker

        path = url.split("://", 1)[1].split("?", 1)[0]
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ConfigError(f"{redacted(url)!r} names no file; try sqlite:///qaio.db")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        synchronous = options.pop("synchronous", "NORMAL").upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA") or options:
            raise ConfigError(f"bad sqlite URL options in {redacted(url)!r}; known: synchronous=NORMAL|FULL")
        return SqliteBroker(path, serializer=serializer, result_ttl=result_ttl, synchronous=synchronous)
    if scheme in ("redis", "rediss"):
        try:
            from qaio.brokers.redis import RedisBroker
        except ImportError as exc:
            raise ConfigError(f"{scheme}:// needs: pip install 'qaio[redis]' ({exc})") from exc
        return RedisBroker(url, serializer=serializer, result_ttl=result_ttl)
    raise ConfigError(f"unknown broker URL {redacted(url)!r}; schemes: {', '.join(s + '://' for s in SCHEMES)}")

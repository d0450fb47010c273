"""Broker modules, picked by URL scheme and imported only when used (their clients are extras)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from qaio.errors import ConfigError
from qaio.protocols import Backend
from qaio.serializers import Serializer

SCHEMES = ("memory", "sqlite", "redis", "rediss")


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
            raise ConfigError(f"{url!r} names no file; try sqlite:///qaio.db")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        synchronous = options.pop("synchronous", "NORMAL").upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA") or options:
            raise ConfigError(f"bad sqlite URL options in {url!r}; known: synchronous=NORMAL|FULL")
        return SqliteBroker(path, serializer=serializer, result_ttl=result_ttl, synchronous=synchronous)
    if scheme in ("redis", "rediss"):
        try:
            from qaio.brokers.redis import RedisBroker
        except ImportError as exc:
            raise ConfigError(f"{scheme}:// needs: pip install 'qaio[redis]' ({exc})") from exc
        return RedisBroker(url, serializer=serializer, result_ttl=result_ttl)
    raise ConfigError(f"unknown broker URL {url!r}; schemes: {', '.join(s + '://' for s in SCHEMES)}")

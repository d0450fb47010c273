"""A static emulator of nginx `limit_req`: replay timed requests and see what nginx would decide.

    zones = {'login': {'size': 1000, 'rate': 5}}
    resources = {'/login': {'zone': 'login', 'burst': 12, 'delay': 8}}
    decisions = RequestLimiter(zones, resources).replay([(0.1, 'ip1', '/login'), ...])

A zone has a `rate` (requests per second, or "10r/m"-style text) and a `size` (keys kept, least recently
used out). A resource is a path prefix with one limit or a list of them, each `{'zone', 'burst', 'delay'}`
or `{'zone', 'burst', 'nodelay': True}`; the longest matching prefix applies, like nginx's prefix
locations. A request's key is one value used in every zone, or a mapping from zone name to key; an empty
key skips that zone, as in nginx.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from qaio.errors import ConfigError
from qaio.limits.decision import Decision
from qaio.limits.nginx import LimitReq, to_ms
from qaio.limits.rates import milli_rate
from qaio.limits.zone import DEFAULT_SIZE, Binding, Zone, handle

#: (time in seconds, key or {zone: key}, path)
Request = tuple[float, Hashable | Mapping[str, Hashable], str]

_ZONE_FIELDS = {"rate", "size"}
_LIMIT_FIELDS = {"zone", "burst", "delay", "nodelay"}


class RequestLimiter:
    """nginx's decisions for a sequence of requests, computed offline with the same arithmetic as nginx."""

    def __init__(self, zones: Mapping[str, Mapping[str, Any]], resources: Mapping[str, Any]) -> None:
        self.zones = {name: _zone(name, spec) for name, spec in zones.items()}
        self.resources: dict[str, list[tuple[str, LimitReq]]] = {
            path: _limits(path, spec, self.zones) for path, spec in resources.items()
        }

    def decide(self, time: float, key: Hashable | Mapping[str, Hashable], path: str) -> Decision:
        """One request arriving at `time` seconds. Times must not run backwards by more than nginx allows."""
        limits = self._resource(path)
        bindings = [
            Binding(limit, self.zones[zone], key.get(zone) if isinstance(key, Mapping) else key)
            for zone, limit in limits
        ]
        return handle(bindings, to_ms(time)).decision()

    def replay(self, requests: Iterable[Request]) -> list[Decision]:
        """Decide each (time, key, path) in order; one `Decision` per request."""
        return [self.decide(time, key, path) for time, key, path in requests]

    def _resource(self, path: str) -> list[tuple[str, LimitReq]]:
        if path in self.resources:
            return self.resources[path]
        prefixes = [p for p in self.resources if path.startswith(p)]
        return self.resources[max(prefixes, key=len)] if prefixes else []


def format_replay(requests: Sequence[Request], decisions: Sequence[Decision]) -> str:
    """A table of requests and decisions, like the one seed 001 printed."""
    lines = [f"{'time':>8} {'key':>8} {'path':<12} {'accepted':<8} {'delay':>7} {'excess':>7}"]
    for (time, key, path), d in zip(requests, decisions, strict=True):
        lines.append(f"{time:>8.3f} {key!s:>8} {path:<12} {d.accepted!s:<8} {d.delay:>7.3f} {d.excess:>7.3f}")
    return "\n".join(lines)


def _zone(name: str, spec: Mapping[str, Any]) -> Zone:
    unknown = set(spec) - _ZONE_FIELDS
    if unknown or "rate" not in spec:
        raise ConfigError(f"zone {name!r} needs 'rate' and may have 'size'; unknown: {sorted(unknown)}")
    return Zone(milli_rate(spec["rate"]), int(spec.get("size", DEFAULT_SIZE)))


def _limits(path: str, spec: Any, zones: Mapping[str, Zone]) -> list[tuple[str, LimitReq]]:
    specs = [spec] if isinstance(spec, Mapping) else list(spec)
    limits: list[tuple[str, LimitReq]] = []
    for one in specs:
        unknown = set(one) - _LIMIT_FIELDS
        if unknown:
            raise ConfigError(f"resource {path!r}: unknown limit_req fields {sorted(unknown)}")
        zone = one.get("zone")
        if not isinstance(zone, str) or zone not in zones:
            raise ConfigError(f"resource {path!r}: unknown zone {zone!r}; zones are {sorted(zones)}")
        if any(zone == seen for seen, _ in limits):
            raise ConfigError(f"resource {path!r}: zone {zone!r} twice (nginx: 'is duplicate')")
        burst, delay, nodelay = int(one.get("burst", 0)), int(one.get("delay", 0)), bool(one.get("nodelay"))
        limits.append((zone, LimitReq.in_zone(zones[zone].rate, burst=burst, delay=delay, nodelay=nodelay)))
    return limits

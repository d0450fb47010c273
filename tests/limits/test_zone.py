"""nginx's zone bookkeeping: LRU order, forced eviction and the opportunistic expiry of idle keys."""

from __future__ import annotations

from qaio.limits.nginx import LimitReq, Node
from qaio.limits.zone import Binding, Zone, handle


def test_lookup_bumps_a_key_even_when_it_is_then_rejected() -> None:
    zone = Zone(rate=1000, size=2)
    limit = LimitReq.in_zone(1000)
    handle([Binding(limit, zone, "a")], now=0)
    handle([Binding(limit, zone, "b")], now=0)
    assert not handle([Binding(limit, zone, "a")], now=1).accepted  # rejected, but a is now newest
    handle([Binding(limit, zone, "c")], now=2)  # full: evicts b
    assert "a" in zone and "c" in zone and "b" not in zone


def test_idle_drained_keys_expire_when_a_new_key_arrives() -> None:
    zone = Zone(rate=1000, size=100)
    zone.create("old", Node(5000, 0), now=0)
    zone.create("older", Node(0, 0), now=0)  # queue, oldest first: old, older
    zone.create("new", Node(0, 59_999), now=59_999)
    assert len(zone) == 3  # nothing idle for a minute yet
    zone.create("newer", Node(0, 60_000), now=60_000)
    # "old" had 5 requests in its bucket, but 60 s at 1 r/s drained it: both idle keys go
    assert "old" not in zone and "older" not in zone and len(zone) == 2


def test_expiry_stops_at_a_key_that_still_has_excess() -> None:
    zone = Zone(rate=1, size=100)  # 0.001 r/s: nothing drains in a minute
    zone.create("busy", Node(1000, 0), now=0)
    zone.create("idle", Node(0, 0), now=0)
    zone.create("new", Node(0, 70_000), now=70_000)
    assert "busy" in zone and "idle" in zone


def test_forced_eviction_also_expires_idle_keys() -> None:
    zone = Zone(rate=1000, size=3)
    for key in ("a", "b", "c"):
        zone.create(key, Node(0, 0), now=0)
    zone.create("fresh", Node(0, 1000), now=1000)  # nothing idle: evicts a by force only
    assert zone.keys() == ["b", "c", "fresh"]
    zone.create("later", Node(0, 61_000), now=61_000)
    # force-evicts b, then c (idle 61 s, drained) also goes; "fresh" is 60 s idle and drained too,
    # but nginx looks at no more than three nodes per allocation
    assert zone.keys() == ["fresh", "later"]

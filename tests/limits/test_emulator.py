"""The static emulator: seed 001's examples, and where seed 001's printed table is not what nginx does."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import pytest

from qaio.errors import ConfigError
from qaio.limits import Decision, RequestLimiter, format_replay

ZONES = {"login": {"size": 1000, "rate": 5}}
RESOURCES = {"/login": {"zone": "login", "burst": 12, "delay": 8}}

SEED_TIMES = [0.1, 0.2, 0.3, 0.4, 0.42, 0.6, 0.7, 0.73, 0.8, 0.82, 0.9, 1.1, 1.2, 1.3, 1.5, 1.6,
              1.7, 1.85, 1.9, 2.1, 2.3, 2.4, 2.5, 2.7, 2.8]  # fmt: skip

#: Seed 001's printed table, (time, accepted, delay, fifth column), as far as the seed's text goes.
SEED_TABLE = [
    (0.1, True, 0.0, 1), (0.2, True, 0.0, 2), (0.3, True, 0.0, 3), (0.4, True, 0.0, 3),
    (0.42, True, 0.0, 4), (0.6, True, 0.0, 4), (0.7, True, 0.0, 5), (0.73, True, 0.0, 5),
    (0.8, True, 0.0, 6), (0.82, True, 0.0, 7), (0.9, True, 0.0, 7), (1.1, True, 0.0, 7),
    (1.2, True, 0.0, 8), (1.3, True, 0.0, 8), (1.5, True, 0.0, 8), (1.6, True, 0.2, 9),
    (1.7, True, 0.3, 9), (1.85, True, 0.35, 10), (1.9, True, 0.5, 10),
]  # fmt: skip

#: What nginx 1.22 decides for the same requests (test_real_nginx.py replays them through nginx):
#: (delay in seconds, excess in requests); every request is accepted.
NGINX = [
    (0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.0, 1.5), (0.0, 2.4), (0.0, 2.5), (0.0, 3.0), (0.0, 3.85),
    (0.0, 4.5), (0.0, 5.4), (0.0, 6.0), (0.0, 6.0), (0.0, 6.5), (0.0, 7.0), (0.0, 7.0), (0.0, 7.5),
    (0.0, 8.0), (0.05, 8.25), (0.2, 9.0), (0.2, 9.0), (0.2, 9.0), (0.3, 9.5), (0.4, 10.0), (0.4, 10.0),
    (0.5, 10.5),
]  # fmt: skip


def seed_requests() -> list[tuple[float, Hashable, str]]:
    return [(t, 0, "/login") for t in SEED_TIMES]


def test_seed_001_example_as_nginx_decides_it() -> None:
    decisions = RequestLimiter(ZONES, RESOURCES).replay(seed_requests())
    assert [d.delay for d in decisions] == pytest.approx([delay for delay, _ in NGINX])
    assert [d.excess for d in decisions] == pytest.approx([excess for _, excess in NGINX])
    assert all(d.accepted and d.retry_after is None for d in decisions)


def test_where_seed_001_table_differs_from_nginx() -> None:
    decisions = RequestLimiter(ZONES, RESOURCES).replay(seed_requests())
    differ = [
        time
        for (time, accepted, delay, _), d in zip(SEED_TABLE, decisions, strict=False)
        if accepted != d.accepted or abs(delay - d.delay) > 1e-9
    ]
    # The seed queues delayed requests one after another (served at 1.8, 2.0, 2.2, 2.4 s); nginx
    # delays each by its own excess above delay=8 (served at 1.6, 1.7, 1.9, 2.1 s).
    assert differ == [1.6, 1.7, 1.85, 1.9]
    seed_served = [time + delay for time, _, delay, _ in SEED_TABLE[15:]]
    assert seed_served == pytest.approx([1.8, 2.0, 2.2, 2.4])
    assert [t + d.delay for t, d in zip(SEED_TIMES[15:19], decisions[15:19], strict=True)] == pytest.approx(
        [1.6, 1.7, 1.9, 2.1]
    )


def evenly(start: float, end: float, per_second: int) -> list[float]:
    """Seed 001's `utils.generate_times`, read as evenly spaced arrivals."""
    return [start + i / per_second for i in range(int((end - start) * per_second))]


def test_seed_001_steady_overload_success_rate() -> None:
    requests = [(t, 0, "/login") for t in evenly(0, 1000, 8)]
    accepted = sum(d.accepted for d in RequestLimiter(ZONES, RESOURCES).replay(requests))
    # The seed printed 0.626375 (5011 of 8000). nginx passes one more: a new key's first request is free.
    assert accepted == 5012


def test_seed_001_varying_load_has_no_failures() -> None:
    intervals = [(0, 3, 5), (3, 5, 8), (5, 6, 7), (6, 10, 4), (10, 12, 3), (12, 13, 7), (13, 14, 12), (14, 18, 4)]
    times = [t for interval in intervals for t in evenly(*interval)]
    decisions = RequestLimiter(ZONES, RESOURCES).replay([(t, 0, "/login") for t in times])
    assert all(d.accepted for d in decisions)
    assert max(d.excess for d in decisions) == 9.0


def test_keys_have_separate_buckets_and_unknown_paths_pass() -> None:
    limiter = RequestLimiter({"z": {"rate": "1r/s"}}, {"/api": {"zone": "z"}})
    got = limiter.replay([(0, "a", "/api/x"), (0, "b", "/api/y"), (0.5, "a", "/api"), (0.5, "a", "/other")])
    assert [d.accepted for d in got] == [True, True, False, True]
    assert got[2].retry_after == 0.5
    assert got[3] == Decision(accepted=True)


def test_longest_prefix_wins_like_nginx_locations() -> None:
    limiter = RequestLimiter(
        {"loose": {"rate": 100}, "tight": {"rate": 1}},
        {"/": {"zone": "loose", "burst": 50}, "/login": {"zone": "tight"}},
    )
    got = limiter.replay([(0, "k", "/login"), (0.1, "k", "/login"), (0.1, "k", "/home")])
    assert [d.accepted for d in got] == [True, False, True]


def test_zone_size_evicts_least_recently_used_key() -> None:
    limiter = RequestLimiter({"z": {"rate": 1, "size": 2}}, {"/": {"zone": "z"}})
    # a and b fill the zone; c evicts the least recently used (a, since b was looked up after it),
    # so a comes back as a new key whose first request is free, evicting b in turn.
    got = limiter.replay([(0, "a", "/"), (0, "b", "/"), (0.1, "b", "/"), (0.2, "c", "/"), (0.3, "a", "/")])
    assert [d.accepted for d in got] == [True, True, False, True, True]
    assert limiter.zones["z"].keys() == ["c", "a"]


TWO_LIMITS = {
    "/": [
        {"zone": "per_key", "burst": 2, "nodelay": True},
        {"zone": "global", "burst": 10, "delay": 1},
    ]
}
TWO_ZONES = {"per_key": {"rate": "2r/s"}, "global": {"rate": "10r/s"}}


def test_several_limits_take_the_largest_delay() -> None:
    limiter = RequestLimiter(TWO_ZONES, TWO_LIMITS)
    got = limiter.replay([(0, "k", "/"), (0, "k", "/"), (0, "k", "/"), (0, "k", "/")])
    assert [d.accepted for d in got] == [True, True, True, False]
    assert [d.delay for d in got[:3]] == [0.0, 0.0, 0.1]  # global: (2000 - 1000) / 10 r/s
    assert got[2].excess == 2.0
    assert got[3].excess == 3.0 and got[3].retry_after == 0.5  # per_key rejects first


def test_a_rejection_by_a_later_limit_charges_no_earlier_one() -> None:
    limiter = RequestLimiter(
        {"wide": {"rate": 1}, "narrow": {"rate": 1}},
        {"/": [{"zone": "wide", "burst": 5}, {"zone": "narrow"}]},
    )
    got = limiter.replay([(0, {"wide": "w", "narrow": "n1"}, "/"), (0, {"wide": "w", "narrow": "n1"}, "/")])
    assert [d.accepted for d in got] == [True, False]
    assert got[1].excess == 1.0
    # wide was charged once (by the first request only): its next request sees excess 1
    assert limiter.decide(0, {"wide": "w", "narrow": "n2"}, "/").excess == 1.0


def test_empty_keys_skip_their_limit() -> None:
    limiter = RequestLimiter(TWO_ZONES, TWO_LIMITS)
    assert limiter.decide(0, {"per_key": "", "global": ""}, "/") == Decision(accepted=True)
    assert limiter.decide(0, {"per_key": "k", "global": None}, "/").accepted
    assert limiter.decide(0, {"per_key": "k", "global": None}, "/").excess == 0.0  # nginx reports 0


def test_format_replay_prints_a_table() -> None:
    requests = seed_requests()[:2]
    table = format_replay(requests, RequestLimiter(ZONES, RESOURCES).replay(requests))
    assert table.splitlines()[2].split() == ["0.200", "0", "/login", "True", "0.000", "0.500"]


@pytest.mark.parametrize(
    ("zones", "resources"),
    [
        ({"z": {"size": 1}}, {}),
        ({"z": {"rate": 1, "colour": "red"}}, {}),
        ({"z": {"rate": 1}}, {"/": {"zone": "nope"}}),
        ({"z": {"rate": 1}}, {"/": {"zone": "z", "bursts": 3}}),
        ({"z": {"rate": 1}}, {"/": [{"zone": "z"}, {"zone": "z"}]}),
        ({"z": {"rate": 1}}, {"/": {"zone": "z", "delay": 2, "nodelay": True}}),
        ({"z": {"rate": 1, "size": 0}}, {}),
    ],
)
def test_bad_configs_fail_at_construction(zones: Mapping[str, Mapping[str, object]], resources: object) -> None:
    with pytest.raises(ConfigError):
        RequestLimiter(zones, resources)  # type: ignore[arg-type]

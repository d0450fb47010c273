"""Rates written the way people write them ("10/s", "600/m", nginx's "5r/s") turned into numbers."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from qaio.errors import ConfigError

#: Seconds per unit; nginx itself knows only r/s and r/m.
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:r\s*)?(?:/\s*([a-z]+))?")


def _exact(spec: str | float) -> Fraction:
    """Parse exactly (decimal text, never binary floats), so nginx's integer arithmetic can be reproduced."""
    if isinstance(spec, bool):
        raise ConfigError(f"invalid rate {spec!r}")
    if isinstance(spec, int | float):
        if not math.isfinite(spec):
            raise ConfigError(f"invalid rate {spec!r}")
        value = Fraction(repr(spec))
    else:
        match = _RATE.fullmatch(spec.strip().lower())
        if match is None:
            raise ConfigError(f"invalid rate {spec!r}; write it like '10/s', '600/m' or '5r/s'")
        number, unit = match.groups()
        if unit is not None and unit not in _UNITS:
            raise ConfigError(f"invalid rate unit {unit!r} in {spec!r}; use s, m, h or d")
        seconds = 1 if unit is None else _UNITS[unit]
        value = Fraction(number) / seconds
    if value <= 0:
        raise ConfigError(f"rate must be positive, got {spec!r}")
    return value


def parse_rate(spec: str | float) -> float:
    """Requests per second for "10/s", "600/m", "5r/s", "100/h" or a plain number (already per second)."""
    return float(_exact(spec))


def milli_rate(spec: str | float) -> int:
    """nginx's integer rate (`ctx->rate`): milli-requests per second, truncated as nginx truncates.

    "5r/m" gives 5 * 1000 / 60 = 83, exactly what `limit_req_zone ... rate=5r/m` stores.
    """
    milli = math.floor(_exact(spec) * 1000)
    if milli < 1:
        raise ConfigError(f"rate {spec!r} is below nginx's resolution of 0.001 requests per second")
    return milli

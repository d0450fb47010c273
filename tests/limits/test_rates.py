"""Rate parsing: the spellings people use, and nginx's truncated integer rate."""

from __future__ import annotations

import pytest

from qaio.errors import ConfigError
from qaio.limits import milli_rate, parse_rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/s", 10.0),
        ("600/m", 10.0),
        ("5r/s", 5.0),
        ("30r/m", 0.5),
        ("3600/h", 1.0),
        ("86400 / day", 1.0),
        ("2.5/sec", 2.5),
        (" 7 R/S ", 7.0),
        ("12", 12.0),
        (4, 4.0),
        (0.25, 0.25),
    ],
)
def test_parse_rate(text: str | float, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("bad", ["", "ten/s", "10/ms", "10/fortnight", "0/s", "-1/s", "r/s", 0, -2.0, True])
def test_parse_rate_rejects(bad: str | float) -> None:
    with pytest.raises(ConfigError):
        parse_rate(bad)


def test_milli_rate_truncates_like_nginx() -> None:
    assert milli_rate("5r/s") == 5000
    assert milli_rate("5r/m") == 83
    assert milli_rate("7r/m") == 116
    assert milli_rate(0.29) == 290  # decimal, not binary: 0.29 * 1000 is 289.99999999999997
    with pytest.raises(ConfigError):
        milli_rate("1/d")  # 0.0116 milli-requests per second: below nginx's resolution

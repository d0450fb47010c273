"""@limit in both modes, with a recorded sleep instead of a real one."""

from __future__ import annotations

import pytest

from qaio.errors import QaioError
from qaio.limits import LocalLimiter, TooManyRequests, limit


class Clock:
    """A clock the limiter reads and the decorator's sleep advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_delay_mode_sleeps_nginx_delay_then_calls() -> None:
    clock = Clock()
    limiter = LocalLimiter("5r/s", burst=3, delay=1, clock=clock)
    calls: list[str] = []

    @limit(limiter, key=lambda ip, **_: ip, sleep=clock.sleep)
    async def login(ip: str, *, user: str) -> str:
        calls.append(user)
        return f"hello {user}"

    assert [await login("1.2.3.4", user=f"u{i}") for i in range(4)] == [f"hello u{i}" for i in range(4)]
    assert clock.slept == [0.2, 0.4]  # excess 2 and 3 above delay=1, drained at 5 r/s
    with pytest.raises(TooManyRequests) as caught:
        await login("1.2.3.4", user="u4")
    assert calls == ["u0", "u1", "u2", "u3"]
    assert caught.value.retry_after == 0.2 and caught.value.key == "1.2.3.4"
    assert isinstance(caught.value, QaioError) and "retry after 0.200 s" in str(caught.value)
    assert await login("5.6.7.8", user="other") == "hello other"  # another key, another bucket


async def test_raise_mode_never_waits_and_raises_on_rejection() -> None:
    clock = Clock()
    limiter = LocalLimiter("1r/s", burst=1, clock=clock)

    @limit(limiter, key="all", mode="raise", sleep=clock.sleep)
    async def work(n: int) -> int:
        return n * 2

    assert await work(1) == 2
    assert await work(2) == 4  # nginx would delay this one by a second; raise mode runs it now
    with pytest.raises(TooManyRequests) as caught:
        await work(3)
    assert caught.value.retry_after == 1.0 and clock.slept == []
    clock.now = 1.0
    assert await work(4) == 8


def test_limit_refuses_plain_functions_and_unknown_modes() -> None:
    limiter = LocalLimiter(1)

    def plain() -> None: ...

    with pytest.raises(TypeError):
        limit(limiter)(plain)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        limit(limiter, mode="queue")  # type: ignore[arg-type]


async def test_by_default_all_calls_share_the_function_budget() -> None:
    clock = Clock()
    limiter = LocalLimiter("1r/s", clock=clock)

    @limit(limiter)
    async def ping() -> str:
        return "pong"

    assert await ping() == "pong"
    with pytest.raises(TooManyRequests) as caught:
        await ping()
    assert caught.value.key.endswith("ping")

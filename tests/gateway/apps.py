"""The tasks the gateway tests run, on an App per test; controls let a test hold a task mid-run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from qaio import App, Task, report_progress


@dataclass
class Controls:
    """What a test can do to a running task: hold it until `go` is set; see how many run at once."""

    go: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    peak: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Tasks:
    hello: Task[..., str]
    add: Task[..., int]
    held: Task[..., str]
    sleepy: Task[..., str]
    boom: Task[..., None]
    steps: Task[..., int]
    light: Task[..., str]
    heavy: Task[..., str]
    controls: Controls


def build(url: str) -> tuple[App, Tasks]:
    app = App(url, lease=1.0, result_ttl=60, max_deliveries=3)
    controls = Controls()

    @app.task(name="gw.hello")
    async def hello() -> str:
        return "Hello world."

    @app.task(name="gw.add")
    def add(a: int, b: int = 1) -> int:
        """Adds two numbers (a sync task)."""
        return a + b

    @app.task(name="gw.held")
    async def held() -> str:
        controls.running += 1
        controls.peak = max(controls.peak, controls.running)
        controls.started.set()
        try:
            await controls.go.wait()
        finally:
            controls.running -= 1
        return "released"

    @app.task(name="gw.sleepy")
    async def sleepy(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "woke"

    @app.task(name="gw.boom")
    def boom(secret: str) -> None:
        raise ValueError(f"database password is {secret}")

    @app.task(name="gw.steps")
    async def steps(n: int, pause: float = 0.05) -> int:
        """Reports progress n times."""
        for i in range(n):
            await asyncio.sleep(pause)
            report_progress((i + 1) / n, f"step {i + 1}")
        await asyncio.sleep(pause)
        return n

    @app.task(name="gw.light", level=0)
    async def light() -> str:
        return "light"

    @app.task(name="gw.heavy", level=7)
    async def heavy() -> str:
        return "heavy"

    return app, Tasks(hello, add, held, sleepy, boom, steps, light, heavy, controls)

"""examples/gateway runs as its README says, here on memory:// with a worker in the test's loop."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from .conftest import client_for, running_worker


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("QAIO_URL", "memory://")
    monkeypatch.setenv("QAIO_EXAMPLE_WORK", "0.01")
    monkeypatch.setenv("QAIO_PRIME_CAP", "5")
    for name in ("examples.gateway.gateway", "examples.gateway.tasks"):
        sys.modules.pop(name, None)
    yield importlib.import_module("examples.gateway.gateway")
    for name in ("examples.gateway.gateway", "examples.gateway.tasks"):
        sys.modules.pop(name, None)


async def test_example_routes(example: ModuleType) -> None:
    app = example.tasks.app
    async with running_worker(app, max_level=9), client_for(example.api) as client:
        assert (await client.get("/")).json() == {"status": 200, "data": "Hello world."}
        assert (await client.get("/sync-test", params={"x": 7919})).json() == {"status": 200, "data": True}
        assert (await client.get("/sync-test", params={"x": 7917})).json()["data"] is False
        assert (await client.get("/async-test", params={"n": 90})).json()["data"] == 23416728348467685  # n=80
        accepted = (await client.post("/jobs/fibonacci", json={"n": 40})).json()
        response = await client.get(accepted["events_url"])
        assert "event: end" in response.text and '"result":102334155' in response.text
        assert "RateLimit-Remaining" in response.headers
    await app.aclose()


async def test_example_light_worker_leaves_fibonacci(example: ModuleType) -> None:
    app = example.tasks.app
    example.gateway.policy(example.tasks.fibonacci, confirm_timeout=0.3)
    async with running_worker(app, max_level=3), client_for(example.api) as client:
        assert (await client.get("/sync-test", params={"x": 3})).status_code == 200  # level 3
        assert (await client.get("/async-test", params={"n": 10})).status_code == 503  # level 7: withdrawn
    await app.aclose()

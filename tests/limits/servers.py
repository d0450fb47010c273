"""Real servers for the limits tests: required in CI (CI=true), skipped loudly elsewhere."""

from __future__ import annotations

import os

import pytest

#: Reasons real-server tests did not run; conftest repeats them at the end of the session.
MISSING: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Fail under CI=true, so a missing server never turns green; skip loudly otherwise."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: real-server tests must run)", pytrace=False)
    MISSING.append(reason)
    pytest.skip(f"NOT TESTED: {reason}")

"""Repeat, at the end of the run, every real-server test of qaio.limits that was skipped."""

from __future__ import annotations

import pytest

from .servers import MISSING


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for reason in dict.fromkeys(MISSING):
        terminalreporter.write_sep("!", f"qaio.limits NOT TESTED against a real server: {reason}", red=True)

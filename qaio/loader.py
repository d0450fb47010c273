"""Find an App from a "module:attribute" reference, as the CLI and child processes do."""

from __future__ import annotations

import importlib
import os
import sys

from qaio.app import App
from qaio.errors import ConfigError


def load_app(ref: str) -> App:
    """Import `module:attr` (attr defaults to `app`); the current directory is importable, as in uvicorn."""
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise ConfigError(f"{ref!r} is not a qaio App (found {type(app).__name__})")
    return app

#!/usr/bin/env bash
# Quickstart 1: set up and run the demo on the embedded SQLite default (no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/qaio demo "$@"

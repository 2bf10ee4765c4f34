#!/usr/bin/env bash
# Sets up a virtual environment (default .venv) and runs the test suite (CPU, under 20 min on 2 cores).
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "$venv"
. "$venv/bin/activate"
pytest -q --durations=15 tests

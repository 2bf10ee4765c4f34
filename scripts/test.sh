#!/usr/bin/env bash
# Sets up a virtual environment (default .venv) and runs the test suite on the CPU: the fast tier first (stops at the
# first failure, about 1.5 min), then the tests that plan, train and predict with real nnU-Net runs (the slow tier);
# 1166-1419 s of tests in all on 2 cores (fast tier 85-99 s), two clean-clone runs.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "$venv"
. "$venv/bin/activate"
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0
pytest -q -x -m "not slow" --durations=5 --junitxml="$reports/fast.xml" tests || status=$?
if [ "$status" = 0 ]; then
  pytest -q -m slow --durations=25 --junitxml="$reports/slow.xml" tests || status=$?
fi
python scripts/count_tests.py "$reports"/*.xml
exit "$status"

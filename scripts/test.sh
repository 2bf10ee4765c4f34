#!/usr/bin/env bash
# Sets up a virtual environment (default .venv) and runs the test suite on the CPU in two pytest-xdist workers: the
# fast tier first (stops at the first failure), then the tests that plan, train and predict with real nnU-Net runs
# (the slow tier): 844-902 s of tests in all on 2 cores (fast tier 54-72 s) in four clean-clone runs.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "$venv"
. "$venv/bin/activate"
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0
workers=(-n 2 --dist loadgroup --no-loadscope-reorder)  # the order tests/conftest.py gives: builders first
pytest -q -x "${workers[@]}" -m "not slow" --durations=5 --junitxml="$reports/fast.xml" tests || status=$?
if [ "$status" = 0 ]; then
  pytest -q "${workers[@]}" -m slow --durations=25 --junitxml="$reports/slow.xml" tests || status=$?
fi
python scripts/count_tests.py "$reports"/*.xml
exit "$status"

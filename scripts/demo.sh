#!/usr/bin/env bash
# Sets up a virtual environment (default .venv) and runs the built-in demo end to end on CPU (~15 min on 2 cores):
# demo data -> shared plans -> target and source teachers -> joint teacher -> student (+ multi-head baseline)
# -> test-set predictions with nnU-Net's predictor -> paired results table in nnunet_kd_demo/report/.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "$venv"
. "$venv/bin/activate"
nnunet_kd demo --out nnunet_kd_demo

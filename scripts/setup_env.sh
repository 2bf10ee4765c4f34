#!/usr/bin/env bash
# Creates a virtual environment (default .venv) with nnunet-kd and its test dependencies installed.
# torch/torchvision: pinned to 2.14.1/0.29.1, the versions the tests run with. pip picks the build for this machine
# from its index (on Linux the CUDA build, several GB; CPU-only: add --index-url https://download.pytorch.org/whl/cpu).
# For a particular CUDA version install torch first as https://pytorch.org/get-started/locally says, then run this
# script: an installed torch of the pinned version is kept.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
. "$venv/bin/activate"
pip install -q --upgrade pip
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q ".[test]"  # non-editable, as a user installs it

#!/usr/bin/env bash
# Creates a virtual environment (default .venv) with nnunet-kd and its test dependencies installed.
# torch/torchvision are pinned to the builds this workplace keeps on disk (no multi-GB download).
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
. "$venv/bin/activate"
pip install -q --upgrade pip
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q ".[test]"  # non-editable, as a user installs it

#!/usr/bin/env bash
# The GPU check of the step benchmark (nnU-Net 3d_fullres topology: 6 stages 32-320, patch 128^3, batch 2, fp16):
# k = 1, 2, 5 teachers eager, k = 3 with torch.compile. Needs a CUDA machine with PyTorch; nnU-Net and the other
# dependencies may come as wheels in .whl/ (see the device tool's README). Under 5 minutes on an H100/H200.
# The table of each run is printed last; redirect to benchmarks/results/step_overhead_gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(mktemp -d)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
fi
python3 -m pip install -q --no-deps --no-build-isolation --target "$site" .  # nnunet-kd itself
export PYTHONPATH="$site:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 benchmarks/step_overhead.py --device cuda --gpu-config --teachers 1 2 5 --steps 20 --warmup 5
python3 benchmarks/step_overhead.py --device cuda --gpu-config --compile --teachers 3 --steps 20 --warmup 10

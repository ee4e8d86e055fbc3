#!/usr/bin/env bash
# Epoch seconds at full scale on one GPU: 2,000,000 x 2048 rows at batch 32 with the defaults, with
# bf16 + torch.compile (CUDA graphs), and at batch 4096. Targets: <= 10 s and <= 3 s per epoch at
# batch 32 (the old trainer: about 100 s). Needs ~20 GB of GPU memory; runs in a few minutes on an H100.
#   bash benchmarks/gpu_check.sh             # or: ROWS=20000 DEVICE=cpu bash benchmarks/gpu_check.sh
# More arguments go to epoch_speed.py, e.g. `--only defaults` (what the tests run, on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
python benchmarks/epoch_speed.py --rows "${ROWS:-2000000}" --device "${DEVICE:-cuda}" \
    --repeats "${REPEATS:-2}" --warmup-rows "${WARMUP_ROWS:-200000}" "$@"

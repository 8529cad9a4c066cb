#!/usr/bin/env bash
# One accelerator run (issue 11): about 6-8 minutes on one GPU.
#
#   bash bench/accelerator.sh [OUT_DIR]        # default bench/out/accelerator
#
# Writes OUT_DIR/{limits,inception,accelerator}.json and accelerator.md (the
# table for bench/RESULTS.md). Each step has its own time limit, so one that
# hangs or runs long leaves the others' results. Where ott-jax or
# ml-collections are missing (a bare accelerator image), carry their wheels
# in .whl/ (see bench/accelerator_wheels.sh): they are installed first.
set -u
OUT_DIR="${1:-bench/out/accelerator}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/otgan_site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/otgan_site${PYTHONPATH:+:$PYTHONPATH}"
fi
PY="${PYTHON:-python3}"
$PY -c "import jax; print(jax.devices())"
# 1. The device's limits: f32 matmul peak, exp rate, read bandwidth (1 GiB).
timeout 90 $PY bench/limits.py --matmul_size=8192 --elements=268435456 \
    --exp_elements=67108864 --out="$OUT_DIR/limits.json"
# 2. Inception forward throughput (random weights, real shapes).
timeout 90 $PY bench/inception.py --batch_sizes=500,1000 --measure_n=2000 \
    --out="$OUT_DIR/inception.json"
# 3. Sinkhorn, the loss, the paper's CIFAR-10 step (f32 / bf16), memory.
timeout 330 $PY bench/accelerator.py --limits="$OUT_DIR/limits.json" \
    --inception_json="$OUT_DIR/inception.json" --budget_s=270 \
    --out="$OUT_DIR/accelerator.json" --md="$OUT_DIR/accelerator.md"
cat "$OUT_DIR/accelerator.md" 2>/dev/null

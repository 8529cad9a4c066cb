#!/usr/bin/env bash
# One accelerator run (issue 11): at most 10 minutes on one GPU (the
# steps' time limits add up to 575 s; the device tool allows 600 a call;
# the last step only uses what is left before 560 s).
#
#   bash bench/accelerator.sh [OUT_DIR]        # default bench/out/accelerator
#
# Writes OUT_DIR/{limits,inception,networks,accelerator}.json, networks.md,
# accelerator.md (the tables for bench/RESULTS.md), profile_n{1000,4000}.md
# (where the steps' time went) and, with time left, conv_passes.* and
# networks_autotuned.*. Each step is its own
# process with its own time limit, so one that fails, hangs or runs long
# leaves the others' results, and each step's peak device memory is its own.
# Where ott-jax or ml-collections are missing (a bare accelerator image),
# carry their wheels in .whl/ (see bench/accelerator_wheels.sh): they are
# installed first.
#
# The device tool brings back at most 8 files from $OUT and this run writes
# up to 12, so on a lent GPU pack them into one:
#   ACCELERATOR_PACK=$OUT/accelerator.tgz bash bench/accelerator.sh /tmp/acc
# packs OUT_DIR into that archive after every step (a run stopped from
# outside keeps what the finished steps wrote) and when it ends.
set -u
OUT_DIR="${1:-bench/out/accelerator}"
mkdir -p "$OUT_DIR"
pack() {
  if [ -n "${ACCELERATOR_PACK:-}" ]; then
    tar czf "$ACCELERATOR_PACK.part" -C "$OUT_DIR" . \
        && mv -f "$ACCELERATOR_PACK.part" "$ACCELERATOR_PACK"
  fi
}
trap pack EXIT
export PYTHONUNBUFFERED=1
# The steps' memory (and the largest batch) against 95% of the device, not
# JAX's default 75% pre-allocation.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/otgan_site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/otgan_site${PYTHONPATH:+:$PYTHONPATH}"
fi
PY="${PYTHON:-python3}"
# ACCELERATOR_TINY=1 rehearses the whole run on a CPU at tiny sizes: every
# command, flag and file of it, in a few minutes (tests/test_bench.py's slow
# tier does), so a lent GPU's minutes are not spent on a typo.
TINY_LIMITS="" TINY_ACC="" TINY_INCEPTION="" TINY_NETS=""
if [ -n "${ACCELERATOR_TINY:-}" ]; then
  TINY_LIMITS="--tiny" TINY_ACC="--tiny --limit_gib=1" TINY_NETS="--tiny"
  TINY_INCEPTION="--batch_sizes=2 --measure_n=2 --repeats=1"
fi
nvidia-smi 2>&1 || true
# 0. Fail fast: everything the run imports, and the device.
$PY -c "
import jax, flax, optax, ott, ml_collections
import bench.accelerator, bench.inception, bench.limits
print('jax', jax.__version__, 'flax', flax.__version__, 'optax',
      optax.__version__, 'ott', ott.__version__, jax.devices())
" || exit 1
ACC="$PY bench/accelerator.py --limits=$OUT_DIR/limits.json \
    --inception_json=$OUT_DIR/inception.json --out=$OUT_DIR/accelerator.json \
    --md=$OUT_DIR/accelerator.md --append $TINY_ACC"
rm -f "$OUT_DIR/accelerator.json"
# 1. The device's limits: matmul peaks (f32, default precision, bf16), exp
#    rate, read bandwidth (1 GiB arrays).
timeout 50 $PY bench/limits.py --matmul_size=8192 --elements=268435456 \
    --exp_elements=67108864 --out="$OUT_DIR/limits.json" $TINY_LIMITS
pack
# 2. Sinkhorn per iteration (n = 1000, 4000, 8000); the loss's value and
#    gradient,
#    its cost products in float32 (the default), then in TF32 (last: a part
#    stopped by the limit loses only itself).
timeout 60 $ACC --parts=sinkhorn,loss_grad,loss_grad_tf32 --budget_s=45
pack
# 3. Inception forward throughput (random weights, real shapes).
timeout 50 $PY bench/inception.py --batch_sizes=1000 --measure_n=5000 \
    --out="$OUT_DIR/inception.json" $TINY_INCEPTION
pack
# 4. The largest batch with and without chunking: compiled, never run, so
#    without autotuning (fast compiles); again without the flag if this XLA
#    does not know it.
t0=$SECONDS
XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" \
    timeout 90 $ACC --parts=memory --budget_s=75
if [ $? -ne 0 ] && [ $((SECONDS - t0)) -lt 30 ]; then
  timeout 80 $ACC --parts=memory --budget_s=65
fi
pack
# 5. The critic's and generator's forward and training passes at batch 500
#    (one chunk of the step), float32, without autotuning: the networks'
#    rate on the device, beside the step's.
XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" timeout 75 \
    $PY bench/networks.py --nets=otgan_critic,otgan_generator --batch=500 \
    --repeats=2 --notorch --limits="$OUT_DIR/limits.json" \
    --out="$OUT_DIR/networks.json" --md="$OUT_DIR/networks.md" $TINY_NETS
pack
# 6. The paper's CIFAR-10 step (configs/otgan_cifar10.py), chunked, at
#    n = 1000 first (float32, then with 1 Sinkhorn iteration: the share of
#    the step in Sinkhorn; then bfloat16 networks), then at the paper's
#    n = 4000; one timed step after the warm-up each, without autotuning
#    (an upper bound on the step's time; with autotuning, compiling,
#    initialising and 4 steps at n = 4000 did not fit 160 s on 2026-12-04).
#    That day the n = 4000 float32 step compiled in 10 s this way but no
#    warm-up step finished within 110 s; each part prints its compile,
#    initialisation, warm-up and every step's time as it goes, so a part
#    stopped by its limit still says where the time went. Each float32
#    step's warm-up runs under JAX's profiler: its top device operations
#    are printed before the timed step and go into accelerator.md and
#    OUT_DIR/profile_n*.md (the traces themselves, tens of MB, stay in
#    $PROFILE_DIR, default /tmp/otgan_accelerator_profile, out of OUT_DIR). A
#    warm-up still running after --profile_stop_s has its trace stopped
#    there and the operations until then reported at once, so even a step
#    that never ends inside its limit says which operations take the time.
step() {  # step SECONDS ARGS...: one step process, without autotuning.
  XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" \
      timeout "$1" $ACC "${@:2}"
  pack
}
PROF="${PROFILE_DIR:-/tmp/otgan_accelerator_profile}"
rm -rf "$PROF"
step 120 --parts=step_float32,sinkhorn_share --step_n=1000 --step_repeats=1 \
    --budget_s=60 --profile_dir="$PROF/n1000" --profile_stop_s=60
cp "$PROF/n1000/summary.md" "$OUT_DIR/profile_n1000.md" 2>/dev/null && pack
step 65 --parts=step_bfloat16 --step_n=1000 --step_repeats=1 --budget_s=10
step 65 --parts=step_float32 --step_n=4000 --step_repeats=1 --budget_s=10 \
    --profile_dir="$PROF/n4000" --profile_stop_s=35
cp "$PROF/n4000/summary.md" "$OUT_DIR/profile_n4000.md" 2>/dev/null && pack
# 7. With time left (the device tool allows 600 s a call): each convolution
#    of the critic and the generator at batch 500, its forward pass, input
#    gradient and kernel gradient timed apart (bench/conv_passes.py, without
#    autotuning), so a slow pass (the critic's strided layers differentiate
#    through zero-dilated convolutions) is named, beside the same strided
#    layers as stride-1 convolutions on a space-to-depth input (s2d, whose
#    gradients are undilated: a candidate fix); then step 5's passes
#    again WITH autotuning: whether XLA's default convolution algorithms
#    are what slows the step.
LEFT=$((560 - SECONDS))
if [ "$LEFT" -ge 60 ]; then
  CP_LIMIT=$(( LEFT - 40 < 150 ? LEFT - 40 : 150 ))
  XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" timeout "$CP_LIMIT" \
      $PY bench/conv_passes.py --nets=otgan_critic,otgan_generator \
      --impls=ours,s2d --batch=500 --repeats=2 --nofull --notorch \
      --limits="$OUT_DIR/limits.json" --out="$OUT_DIR/conv_passes.json" \
      --md="$OUT_DIR/conv_passes.md" $TINY_NETS
  pack
else
  echo "no time left for the convolutions' passes ($LEFT s)"
fi
LEFT=$((560 - SECONDS))
if [ "$LEFT" -ge 30 ]; then
  timeout "$LEFT" $PY bench/networks.py --nets=otgan_critic,otgan_generator \
      --batch=500 --repeats=2 --notorch --limits="$OUT_DIR/limits.json" \
      --out="$OUT_DIR/networks_autotuned.json" \
      --md="$OUT_DIR/networks_autotuned.md" $TINY_NETS
else
  echo "no time left for the autotuned networks ($LEFT s)"
fi
cat "$OUT_DIR/networks.md" "$OUT_DIR/networks_autotuned.md" \
    "$OUT_DIR/conv_passes.md" "$OUT_DIR/accelerator.md" 2>/dev/null

r"""Benchmark: the sharded train step against device count and batch size.

  python bench/scaling.py                                  # CPU, fake devices
  python bench/scaling.py --devices=1 --ns=1000,2000,4000 \
      --chunk_sizes=0,250 --config=configs/otgan_cifar10.py \
      --config.data.data_dir=/data/cifar-10-batches-bin --sinkhorn_share

For every (devices, n, chunk_size) it compiles the full train step (1 critic +
n_gen generator updates, each on fresh X, X', Y, Y' of n examples) on a mesh of
that many devices and reports XLA's compiled memory analysis PER DEVICE
(arguments + outputs + temporaries - aliased, and the temporaries alone, which
hold the activations and the n x n cost and plan matrices), then the median
step time. `--compile_only` skips running (the memory of a batch too big to
run here). `--sinkhorn_share` also times the step with one Sinkhorn iteration
instead of `ot.num_iterations` and reports the share of the step spent in the
remaining iterations. On CPU the fake devices share the host's cores: memory
scales as on real devices, time does not. Prints a table and writes JSON.
"""

import json
import os
import platform
import sys
import time

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS",
                                                                 ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

from otgan_jax import sharding as sharding_lib  # pylint: disable=g-import-not-at-top
from otgan_jax import device_memory
from otgan_jax import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "configs", "test.py"),
    "Experiment config (path[:variant]).", lock_config=True)
_DEVICES = flags.DEFINE_list("devices", ["1", "2", "4", "8"],
                             "Mesh sizes (the first k devices).")
_NS = flags.DEFINE_list("ns", ["64"], "Batch sizes n (each of X, X', Y, Y').")
_CHUNKS = flags.DEFINE_list("chunk_sizes", ["0"],
                            "config.otgan.chunk_size values (0 = off).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed steps (median).")
_COMPILE_ONLY = flags.DEFINE_bool("compile_only", False,
                                  "Only compile and report memory.")
_SHARE = flags.DEFINE_bool("sinkhorn_share", False,
                           "Also time the step with 1 Sinkhorn iteration.")
_OUT = flags.DEFINE_string("out", "bench/scaling.json", "JSON output.")


def _memory(compiled) -> dict[str, float]:
  need = device_memory.need(compiled)
  if need is None:
    return {"total_mib": float("nan"), "temp_mib": float("nan")}
  return {"total_mib": need.total / 2**20, "temp_mib": need.temporaries / 2**20}


def _step_time(exp, compiled, repeats) -> float:
  state = exp.init_state()
  n = exp.config.batch_size
  spec = exp.batch_spec
  shape = (spec.num_updates, spec.draws, n) + tuple(exp.info.shape)
  x = np.stack([exp.source.sample(i, n)["x"] for i in range(
      spec.draws * spec.num_updates)]).reshape(shape)
  batch = {"x": jax.device_put(x, exp.batch_sharding())}
  rng = jax.random.key(0)
  state, metrics = compiled(state, batch, rng, None)  # Warm-up.
  jax.block_until_ready(metrics)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch, rng, None)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def measure(config, num_devices: int, n: int, chunk_size: int,
            run: bool) -> dict[str, object]:
  config = config.copy_and_resolve_references()
  config.batch_size = n
  config.otgan.chunk_size = chunk_size
  exp = experiment.Experiment(config, devices=jax.devices()[:num_devices])
  spec = exp.batch_spec
  shape = (spec.num_updates, spec.draws, n) + tuple(exp.info.shape)
  dtype = np.asarray(exp.source.sample(0, 2)["x"]).dtype
  batch = {"x": jax.ShapeDtypeStruct(shape, dtype,
                                     sharding=exp.batch_sharding())}
  rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype,
                             sharding=sharding_lib.replicated(exp.mesh))
  t0 = time.perf_counter()
  compiled = exp.jit_train_step().lower(exp.abstract_state(), batch,
                                        rng, None).compile()
  row = {"devices": num_devices, "n": n, "chunk_size": chunk_size,
         "compile_s": time.perf_counter() - t0, **_memory(compiled)}
  if run:
    row["step_s"] = _step_time(exp, compiled, _REPEATS.value)
  return row


def main(argv):
  del argv
  config = _CONFIG.value
  rows = []
  header = (f"{'devices':>7} {'n':>6} {'chunk':>6} {'mem/dev MiB':>12} "
            f"{'temp/dev MiB':>12} {'compile s':>9} {'step s':>8}")
  print(header)
  for d in map(int, _DEVICES.value):
    for n in map(int, _NS.value):
      for chunk in map(int, _CHUNKS.value):
        try:
          row = measure(config, d, n, chunk, run=not _COMPILE_ONLY.value)
        except Exception as e:  # pylint: disable=broad-except
          # Out of memory or an invalid combination: record it, go on.
          row = {"devices": d, "n": n, "chunk_size": chunk,
                 "error": f"{type(e).__name__}: {str(e)[:200]}"}
          print(f"{d:>7} {n:>6} {chunk:>6}  {row['error']}")
          rows.append(row)
          continue
        if _SHARE.value and "step_s" in row:
          one = config.copy_and_resolve_references()
          one.ot.num_iterations = 1
          t1 = measure(one, d, n, chunk, run=True)["step_s"]
          row["sinkhorn_share"] = (row["step_s"] - t1) / row["step_s"]
        rows.append(row)
        step = f"{row['step_s']:8.3f}" if "step_s" in row else f"{'-':>8}"
        line = (f"{d:>7} {n:>6} {chunk:>6} {row['total_mib']:>12.1f} "
                f"{row['temp_mib']:>12.1f} {row['compile_s']:>9.1f} {step}")
        if "sinkhorn_share" in row:
          line += f"  sinkhorn {100 * row['sinkhorn_share']:.0f}%"
        print(line, flush=True)
  result = {
      "machine": {"platform": platform.platform(),
                  "processor": platform.processor(),
                  "cpu_count": os.cpu_count(),
                  "backend": jax.default_backend(),
                  "device_kind": jax.devices()[0].device_kind},
      "config": config.name, "model": config.model.name,
      "ot_iterations": config.ot.num_iterations, "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)

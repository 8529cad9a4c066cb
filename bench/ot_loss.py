r"""Benchmark: the OT-GAN loss and a full train step.

  python bench/ot_loss.py                       # the issue's grid (slow on CPU)
  python bench/ot_loss.py --ns=256,1024 --ds=64,32768 --steps=64,256

Part 1 times one value-and-grad of `minibatch_energy_distance` (six Sinkhorn
solves vmapped together, cosine cost, epsilon 0.002, 500 fixed iterations,
plans held constant) against the naive use of ott-jax: `linear.solve` called
once per pair with default settings (threshold 1e-3, up to 2000 iterations,
implicit differentiation) and `jax.value_and_grad` through `reg_ot_cost`.
Part 2 times one full train step (1 critic + 3 generator updates) with the
paper's CIFAR-10 networks. Prints a table and writes JSON (--out).
Memory: XLA's compiled memory analysis (arguments + outputs + temporaries),
plus the device's peak bytes where the backend reports them.
"""

import json
import os
import platform
import resource
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
from ott.geometry import costs
from ott.geometry import pointcloud
from ott.solvers import linear

from otgan_jax import device_memory  # pylint: disable=g-import-not-at-top

_NS = flags.DEFINE_list("ns", ["256", "1024", "4096"], "Batch sizes n.")
_DS = flags.DEFINE_list("ds", ["64", "32768"], "Feature dimensions d.")
_STEPS = flags.DEFINE_list("steps", ["64", "256"],
                           "Batch sizes for the CIFAR train step ('' = skip).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (median).")
_STEP_REPEATS = flags.DEFINE_integer(
    "step_repeats", None,
    "Timed train steps after the first (median); default max(1, repeats - 2). "
    "0 times only the first call of the compiled step (for slow machines).")
_SKIP_NAIVE = flags.DEFINE_bool("skip_naive", False,
                                "Skip the per-pair ott-jax baseline.")
_OUT = flags.DEFINE_string("out", "bench/ot_loss.json", "JSON output.")




def timed(fn, *args, repeats):
  """(median seconds, compiled memory bytes) of a jitted fn, after warm-up."""
  compiled = jax.jit(fn).lower(*args).compile()
  mem_bytes = device_memory.compiled_bytes(compiled)
  jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  times.sort()
  return times[len(times) // 2], mem_bytes


def peak_device_bytes():
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def peak_host_bytes():
  """The process's peak resident memory so far (the CPU backend's memory)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def ours(x, xp, y, yp, threshold=None):
  from otgan_jax import losses  # pylint: disable=g-import-not-at-top
  f = lambda *a: losses.minibatch_energy_distance(
      *a, epsilon=0.002, num_iterations=500 if threshold is None else 2000,
      threshold=threshold)
  return jax.value_and_grad(f, argnums=(0, 1, 2, 3), has_aux=True)(
      x, xp, y, yp)


def ours_threshold(x, xp, y, yp):
  """ott's default stopping rule: marginal error 1e-3, at most 2000."""
  return ours(x, xp, y, yp, threshold=1e-3)


def naive(x, xp, y, yp):
  def loss(x, xp, y, yp):
    w = lambda a, b: linear.solve(pointcloud.PointCloud(
        a, b, cost_fn=costs.Cosine(), epsilon=0.002)).reg_ot_cost
    return (w(x, y) + w(x, yp) + w(xp, y) + w(xp, yp)
            - 2 * w(x, xp) - 2 * w(y, yp))
  return jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(x, xp, y, yp)


def loss_rows(repeats):
  rows = []
  for n in map(int, _NS.value):
    for d in map(int, _DS.value):
      keys = jax.random.split(jax.random.key(0), 4)
      args = [jax.random.normal(k, (n, d)) for k in keys]
      t, mem = timed(ours, *args, repeats=repeats)
      row = dict(kind="loss", n=n, d=d, ours_s=t,
                 ours_mem_mb=mem and mem / 2**20)
      tt, _ = timed(ours_threshold, *args, repeats=repeats)
      iters = int(jax.jit(ours_threshold)(*args)[0][1]["sinkhorn_iters"])
      row.update(ours_thr_s=tt, ours_thr_iters=iters)
      if not _SKIP_NAIVE.value:
        tn, memn = timed(naive, *args, repeats=repeats)
        row.update(naive_s=tn, naive_mem_mb=memn and memn / 2**20,
                   speedup=tn / t)
      rows.append(row)
      print(row, flush=True)
  return rows


def step_rows(repeats):
  from configs import otgan_cifar10  # pylint: disable=g-import-not-at-top
  from otgan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top
  rows = []
  for n in [int(s) for s in _STEPS.value if s]:
    config = otgan_cifar10.get_config()
    config.batch_size = n
    config.model.init_batch_size = min(n, 64)
    info = data_lib.DatasetInfo(name="cifar10", shape=(32, 32, 3), low=0.0,
                                high=255.0, num_examples=50000, num_classes=10)
    exp = experiment.Experiment(config, info=info)
    state = jax.jit(exp.method.init_state)(
        jax.random.key(0), jnp.zeros((config.model.init_batch_size, 32, 32, 3)),
        None)
    spec = exp.batch_spec
    batch = {"x": jax.random.randint(jax.random.key(1),
                                     (spec.num_updates, spec.draws, n, 32, 32,
                                      3), 0, 256,
                                     dtype=jnp.int32).astype(jnp.uint8)}
    step = exp.jit_train_step()
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, jax.random.key(2), None).compile()
    compile_s = time.perf_counter() - t0
    print(f"CIFAR step n={n}: compiled in {compile_s:.0f} s; timing "
          f"{1 + repeats} call(s) ...", flush=True)
    mem = device_memory.compiled_bytes(compiled)
    cost = compiled.cost_analysis() or {}
    if isinstance(cost, list):  # older jax: one dict per computation
      cost = cost[0] if cost else {}
    rng = jax.random.key(2)
    times = []
    for _ in range(1 + repeats):
      t0 = time.perf_counter()
      state, _ = jax.block_until_ready(compiled(state, batch, rng, None))
      times.append(time.perf_counter() - t0)
    first, timed_steps = times[0], sorted(times[1:])
    # XLA's count; a loop body (the Sinkhorn iterations) counts once.
    row = dict(kind="train_step", n=n, compile_s=compile_s, first_s=first,
               repeats=repeats, xla_tflop=cost.get("flops", 0.0) / 1e12,
               step_s=timed_steps[len(timed_steps) // 2] if repeats else first,
               mem_mb=mem and mem / 2**20,
               # A running maximum: run one n per process to attribute it.
               process_peak_rss_gib=peak_host_bytes() / 2**30)
    rows.append(row)
    print(row, flush=True)
  return rows


def fmt(v, spec):
  return "-" if v is None else format(v, spec)


def main(argv):
  del argv
  machine = (f"{platform.node()} | {jax.devices()[0].device_kind} x "
             f"{jax.device_count()} | {os.cpu_count()} CPUs | jax "
             f"{jax.__version__}")
  step_repeats = _STEP_REPEATS.value
  if step_repeats is None:
    step_repeats = max(1, _REPEATS.value - 2)
  rows = loss_rows(_REPEATS.value) + step_rows(step_repeats)
  peak = peak_device_bytes()
  print(f"\nMachine: {machine}")
  print("\n| n | d | ours, 500 it (s) | ours mem (MB) | ours, thr 1e-3 (s) | "
        "its | ott per pair (s) | ott mem (MB) | speed-up (500 it) |")
  print("|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    if r["kind"] == "loss":
      print(f"| {r['n']} | {r['d']} | {r['ours_s']:.3f} | "
            f"{fmt(r['ours_mem_mb'], '.0f')} | {r['ours_thr_s']:.3f} | "
            f"{r['ours_thr_iters']} | {fmt(r.get('naive_s'), '.3f')} | "
            f"{fmt(r.get('naive_mem_mb'), '.0f')} | "
            f"{fmt(r.get('speedup'), '.2f')} |")
  print("\n| CIFAR train step, n | step (s) | first call (s) | timed steps | "
        "compiled mem (MB) | XLA TFLOP | TFLOP/s |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    if r["kind"] == "train_step":
      print(f"| {r['n']} | {r['step_s']:.2f} | {r['first_s']:.2f} | "
            f"{r['repeats']} | {fmt(r['mem_mb'], '.0f')} | "
            f"{r['xla_tflop']:.2f} | {r['xla_tflop'] / r['step_s']:.3f} |")
  host_peak = peak_host_bytes()
  if peak:
    print(f"\nDevice peak bytes in use: {peak / 2**20:.0f} MB")
  print(f"Process peak RSS: {host_peak / 2**30:.1f} GiB")
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(dict(machine=machine, rows=rows, peak_device_bytes=peak,
                   peak_host_bytes=host_peak), f, indent=2)
  print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)

r"""Benchmark: our Sinkhorn loss beside ott-jax, POT and GeomLoss, same run.

  python bench/sinkhorn_peers.py                 # n 512,2048; d 64; 50 it
  python bench/sinkhorn_peers.py --ns=512,2048,4096 --ds=64,32768 \
      --iterations=100 --impls=ours,ott,pot_np
  python bench/sinkhorn_peers.py --tiny --out=/tmp/p.json   # smoke test

Every implementation solves the SIX transport problems of OT-GAN's loss
(pairs of four random normal `[n, d]` batches), cosine cost, epsilon 0.002
(absolute), uniform marginals, log-domain Sinkhorn with a FIXED iteration
count (no early stopping), and returns
`W(x,y) + W(x,y') + W(x',y) + W(x',y') - 2 W(x,x') - 2 W(y,y')` with
`W = sum_ij P_ij C_ij`:

- `ours`: `otgan_jax.losses.minibatch_energy_distance(..., num_iterations=K,
  threshold=None)`, i.e. `losses.sinkhorn`'s stabilised-scaling loop over
  the six stacked cost matrices (a matrix-vector product per half-iteration
  on an absorbed kernel, log-domain halves only where its check asks; plans
  held constant);
- `ours_ott`: the same function with `solver="ott"`: ott-jax's solver on the
  six stacked matrices under `vmap` (our implementation before our own
  loop, kept as the oracle);
- `ott`: ott-jax's `linear.solve` called once per pair on a cosine
  `PointCloud`, `min_iterations = max_iterations = K`, lse mode, the same
  `sum(stop_gradient(P) * C)` (jitted as one program), with
  `inner_iterations` a divisor of K (`losses.inner_iterations`): ott runs
  whole blocks of 10 by default, so K = 5 (--tiny) or K = 1 (the "1 it"
  column) used to run no iteration at all;
- `pot_np`: POT's `ot.bregman.sinkhorn_log` on numpy arrays, `stopThr=0`
  (so exactly K iterations), cost matrices from numpy; value only;
- `pot_jax`: the same POT function on jax arrays (POT's JAX backend, run
  eagerly as POT does); value only;
- `geomloss`: GeomLoss's tensorized `SamplesLoss("sinkhorn")` on torch CPU
  (the optional `bench` extra; skipped when torch or geomloss does not
  import). It anneals epsilon and has no fixed-count mode, so its iteration
  count is set through `scaling` (`geomloss_schedule`): K (at least 10)
  against its shortest schedule, 5. Each of its iterations is two
  log-sum-exps (two passes each, torch's `logsumexp`); value and
  gradient (torch autograd through its last iteration).

Modes: `value` (the loss) and `grad` (value and gradient with respect to all
four batches; not for POT). "per it" is the time of K iterations minus
the time of 1 iteration, divided by K - 1 (GeomLoss: its two counts, shown
in the "its" column): the loop alone, without the cost
matrices and the gradient. Two floors of one iteration, from
bench/limits.py's JSON (--limits): the exp floor `2 * 6 * n^2 / exp_per_s`
(two log-sum-exp passes over the six `n x n` matrices, one exp per entry
each: a log-domain iteration's bound on CPU) and the read floor
`2 * 6 * n^2 * 4 / read_bytes_per_s` (each float32 entry read twice: the
bound of a scaling iteration, ours). Prints a markdown table, writes it (--md) and JSON (--out).
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np
from ott.geometry import costs
from ott.geometry import pointcloud
from ott.solvers import linear

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from otgan_jax import losses

EPSILON = 0.002
WEIGHTS = (1.0, 1.0, 1.0, 1.0, -2.0, -2.0)
IMPLS = ("ours", "ours_ott", "ott", "pot_np", "pot_jax", "geomloss")

_NS = flags.DEFINE_list("ns", ["512", "2048"], "Batch sizes n.")
_DS = flags.DEFINE_list("ds", ["64"], "Feature dimensions d.")
_ITERS = flags.DEFINE_integer("iterations", 50, "Fixed Sinkhorn iterations K.")
_IMPLS = flags.DEFINE_list("impls", ["ours", "ours_ott", "ott", "pot_np",
                                     "pot_jax", "geomloss"],
                           f"Implementations, of {IMPLS}.")
_MODES = flags.DEFINE_list("modes", ["value", "grad"], "value | grad.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls (median).")
_POT_MAX_N = flags.DEFINE_integer(
    "pot_max_n", 2048, "Skip the POT rows above this n (they are slow).")
_TINY = flags.DEFINE_bool("tiny", False, "n=32, d=8, 5 iterations, 1 repeat.")
_LIMITS = flags.DEFINE_string("limits", limits_lib.DEFAULT_OUT,
                              "bench/limits.py's JSON (for the floor).")
_OUT = flags.DEFINE_string("out", "bench/out/sinkhorn_peers.json", "JSON.")
_MD = flags.DEFINE_string("md", "bench/out/sinkhorn_peers.md", "Markdown.")


def pairs(x, xp, y, yp):
  return [(x, y), (x, yp), (xp, y), (xp, yp), (x, xp), (y, yp)]


def ours_fn(iters, solver="auto"):
  def f(x, xp, y, yp):
    return losses.minibatch_energy_distance(
        x, xp, y, yp, epsilon=EPSILON, num_iterations=iters,
        threshold=None, solver=solver)[0]
  return f


def ours_ott_fn(iters):
  return ours_fn(iters, solver="ott")


def ott_fn(iters):
  def w(a, b):
    geom = pointcloud.PointCloud(a, b, cost_fn=costs.Cosine(),
                                 epsilon=EPSILON)
    geom_sg = pointcloud.PointCloud(jax.lax.stop_gradient(a),
                                    jax.lax.stop_gradient(b),
                                    cost_fn=costs.Cosine(), epsilon=EPSILON)
    out = linear.solve(geom_sg, lse_mode=True, min_iterations=iters,
                       max_iterations=iters,
                       inner_iterations=losses.inner_iterations(iters))
    return jnp.sum(jax.lax.stop_gradient(out.matrix) * geom.cost_matrix)

  def f(x, xp, y, yp):
    return sum(wt * w(a, b) for wt, (a, b) in zip(WEIGHTS, pairs(x, xp, y, yp)))
  return f


def _cosine_np(a, b):
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  b = b / np.linalg.norm(b, axis=1, keepdims=True)
  return 1.0 - a @ b.T


def pot_np_fn(iters):
  import ot  # pylint: disable=g-import-not-at-top

  def f(x, xp, y, yp):
    total = 0.0
    for wt, (a, b) in zip(WEIGHTS, pairs(x, xp, y, yp)):
      c = _cosine_np(a, b)
      n, m = c.shape
      p = ot.bregman.sinkhorn_log(np.full(n, 1 / n, np.float32),
                                  np.full(m, 1 / m, np.float32), c, EPSILON,
                                  numItermax=iters, stopThr=0.0)
      total += wt * float(np.sum(p * c))
    return total
  return f


def pot_jax_fn(iters):
  import ot  # pylint: disable=g-import-not-at-top
  cost = jax.jit(lambda a, b: losses.cost_matrix(a, b, "cosine"))

  def f(x, xp, y, yp):
    total = 0.0
    for wt, (a, b) in zip(WEIGHTS, pairs(x, xp, y, yp)):
      c = cost(a, b)
      n, m = c.shape
      p = ot.bregman.sinkhorn_log(jnp.full(n, 1 / n), jnp.full(m, 1 / m), c,
                                  EPSILON, numItermax=iters, stopThr=0.0)
      total += wt * float(jnp.sum(p * c))
    return total
  return f


def geomloss_schedule(iters, diameter=2.0):
  """GeomLoss's `scaling` that makes its loop run `iters` iterations.

  GeomLoss's tensorized Sinkhorn runs one initial pair of soft-min passes,
  one pair per temperature in `epsilon_schedule(p, diameter, blur,
  scaling)` (from `diameter**p` down to `blur**p`) and one final pair, each
  pair a log-sum-exp over the `n x m` costs and one over their transpose:
  the same work as one of our iterations. Returns `(scaling, count)` with
  `count` the iterations that scaling really gives (at least 5).
  """
  from geomloss._legacy import sinkhorn_divergence  # pylint: disable=g-import-not-at-top
  blur = EPSILON**0.5
  steps = max(iters - 4, 1)  # Elements of the arange in the schedule.
  scaling = float(np.exp(np.log(blur / diameter) / (steps - 0.5)))
  count = len(sinkhorn_divergence.epsilon_schedule(2, diameter, blur,
                                                   scaling)) + 2
  return scaling, count


def geomloss_fn(iters, grad=False):
  """GeomLoss's tensorized `SamplesLoss("sinkhorn")` on the six pairs.

  GeomLoss anneals epsilon (no fixed-count option), so the iteration count
  is set through `scaling` (`geomloss_schedule`) and reported on the
  function (`f.iterations`); per-iteration time then compares like with
  like. p=2 on unit-norm inputs gives GeomLoss's cost `||a - b||^2 / 2 = 1 -
  cos(a, b)`, our cosine cost, and `blur = epsilon^(1/2)` its final
  temperature epsilon. The six pairs run as one batch `[6, n, d]`; torch uses
  the threads this process may run on. Its value is GeomLoss's dual
  objective (with the entropy), not `sum(P * C)`: equal only in the limit.
  """
  import geomloss  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  scaling, count = geomloss_schedule(iters)
  loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=EPSILON**0.5,
                              diameter=2.0, scaling=scaling,
                              backend="tensorized", debias=False)
  weights = torch.tensor(WEIGHTS)

  def f(x, xp, y, yp):
    ts = [torch.from_numpy(v / np.linalg.norm(v, axis=1, keepdims=True))
          .requires_grad_(grad) for v in (x, xp, y, yp)]
    ab = list(zip(*pairs(*ts)))
    value = (weights * loss(torch.stack(ab[0]), torch.stack(ab[1]))).sum()
    if grad:
      value.backward()
    return float(value)

  f.iterations = count
  return f


def _median_time(fn, args, repeats):
  out = jax.block_until_ready(fn(*args))  # Warm-up (compiles).
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), out


def run_impl(impl, mode, n, d, iters, repeats):
  """{'t_k', 't_1', 'per_it_s', 'value'} for one implementation and mode."""
  keys = jax.random.split(jax.random.key(0), 4)
  args = [jax.random.normal(k, (n, d), jnp.float32) for k in keys]
  makers = {"ours": ours_fn, "ours_ott": ours_ott_fn, "ott": ott_fn,
            "pot_np": pot_np_fn,
            "pot_jax": pot_jax_fn, "geomloss": geomloss_fn}
  jitted = impl in ("ours", "ours_ott", "ott")
  if mode == "grad" and not jitted and impl != "geomloss":
    return None
  if not jitted:
    args = [np.asarray(a) for a in args] if impl != "pot_jax" else args

  def build(k):
    if impl == "geomloss":
      return geomloss_fn(k, grad=mode == "grad")
    f = makers[impl](k)
    if not jitted:
      return f
    if mode == "grad":
      f = jax.value_and_grad(f, argnums=(0, 1, 2, 3))
    return jax.jit(f)

  if impl == "geomloss":  # Its shortest schedule runs 5 iterations.
    f_k, f_1 = build(max(iters, 10)), build(5)
  else:
    f_k, f_1 = build(iters), build(1)
  # GeomLoss cannot run exactly K (or 1) iterations; it reports its counts.
  k_hi, k_lo = (getattr(f_k, "iterations", iters),
                getattr(f_1, "iterations", 1))
  t_k, out = _median_time(f_k, args, repeats)
  t_1, _ = _median_time(f_1, args, repeats)
  value = out[0] if mode == "grad" and jitted else out
  return {"t_k": t_k, "t_1": t_1, "k_hi": k_hi, "k_lo": k_lo,
          "per_it_s": max(t_k - t_1, 0.0) / max(k_hi - k_lo, 1),
          "value": float(value)}


def available(impl):
  try:
    if impl in ("pot_np", "pot_jax"):
      import ot  # pylint: disable=g-import-not-at-top,unused-import
    if impl == "geomloss":
      import geomloss  # pylint: disable=g-import-not-at-top,unused-import
      import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    return f"{type(e).__name__}: {e}"
  return None


def table(rows, iters):
  lines = [f"K = {iters} fixed iterations, six n x n problems, cosine cost, "
           f"epsilon {EPSILON}.", "",
           "| n | d | impl | mode | its | total K it (s) | 1 it (s) | "
           "per it (ms) | exp floor (ms) | / exp floor | read floor (ms) | "
           "/ read floor | vs ours | value |",
           "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
           "---:|"]
  ours = {(r["n"], r["d"], r["mode"]): r for r in rows
          if r["impl"] == "ours" and "per_it_s" in r}
  for r in rows:
    if "skipped" in r:
      lines.append(f"| {r['n']} | {r['d']} | {r['impl']} | {r['mode']} | "
                   f"| skipped: {r['skipped']} | | | | | | | | |")
      continue
    floor, read = r.get("floor_s"), r.get("read_floor_s")
    fmt = lambda v: "-" if v is None else format(1e3 * v, ".2f")
    share = lambda v: "-" if v is None else format(r["per_it_s"] / v, ".2f")
    base = ours.get((r["n"], r["d"], r["mode"]))
    rel = (f"{r['per_it_s'] / base['per_it_s']:.2f}" if base and
           base["per_it_s"] > 0 else "-")
    lines.append(
        f"| {r['n']} | {r['d']} | {r['impl']} | {r['mode']} | "
        f"{r.get('k_hi', iters)}/{r.get('k_lo', 1)} | {r['t_k']:.3f} "
        f"| {r['t_1']:.3f} | {1e3 * r['per_it_s']:.2f} | "
        f"{fmt(floor)} | {share(floor)} | {fmt(read)} | {share(read)} | "
        f"{rel} | {r['value']:.5f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  tiny = _TINY.value
  ns = [32] if tiny else [int(v) for v in _NS.value]
  ds = [8] if tiny else [int(v) for v in _DS.value]
  iters = 5 if tiny else _ITERS.value
  repeats = 1 if tiny else _REPEATS.value
  saved = limits_lib.load_limits(_LIMITS.value)
  exp_per_s = saved["limits"]["exp_per_s_xla"] if saved else None
  read_per_s = (saved["limits"]["bandwidth_bytes_per_s_xla_read"] if saved
                else None)
  if exp_per_s is None:
    print(f"no {_LIMITS.value}: run bench/limits.py first for the floor")
  rows = []
  for n in ns:
    for d in ds:
      for impl in _IMPLS.value:
        missing = available(impl)
        for mode in _MODES.value:
          row = {"n": n, "d": d, "impl": impl, "mode": mode,
                 "iterations": iters}
          if missing:
            row["skipped"] = missing
          elif impl.startswith("pot") and n > _POT_MAX_N.value:
            row["skipped"] = f"n > --pot_max_n={_POT_MAX_N.value}"
          else:
            result = run_impl(impl, mode, n, d, iters, repeats)
            if result is None:
              continue  # No gradient for this implementation.
            row.update(result)
            if exp_per_s:
              row["floor_s"] = 2 * 6 * n * n / exp_per_s
              row["read_floor_s"] = 2 * 6 * n * n * 4 / read_per_s
          rows.append(row)
          print(row, flush=True)
  md = table(rows, iters)
  print("\n" + md)
  for path, text in ((_OUT.value, None), (_MD.value, md)):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      if text is None:
        json.dump({"machine": limits_lib.machine(), "limits": saved,
                   "iterations": iters, "epsilon": EPSILON, "rows": rows}, f,
                  indent=2)
      else:
        f.write(text + "\n")
  print(f"wrote {_OUT.value} and {_MD.value}")


if __name__ == "__main__":
  app.run(main)

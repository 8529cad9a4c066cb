r"""Benchmark: the paper-scale numbers only an accelerator can give, in one run.

  bash bench/accelerator.sh              # on one GPU: limits, this, Inception
  python bench/accelerator.py --tiny --out=/tmp/a.json --md=/tmp/a.md  # CPU smoke

Parts, each written to --out as soon as it is measured (a run stopped by its
time limit keeps what it had; --budget_s skips the parts that would start
after that many seconds):
1. `sinkhorn`: time per Sinkhorn iteration of OT-GAN's loss (six n x n
   problems, cosine cost, epsilon 0.002) at n = 1000, 4000 and 8000: (time
   of K iterations - time of K0) / (K - K0), value only (at n = 1000 an
   iteration reads 48 MB: a fixed cost per iteration, such as the host's
   wait for the loop's predicate, shows there). Its floor: each iteration
   reads every kernel entry twice (two scaling halves; a log-domain loop
   reads the costs as often), 2 * 6 * n^2 * 4 bytes at the read bandwidth of
   bench/limits.py's JSON (--limits).
2. `loss_grad`: value and gradient of the loss at n = 4000, d = 32768 (the
   paper's critic features), 500 iterations, the cost matrices' products
   in float32 (`ot.precision`'s default, "highest"); `loss_grad_tf32`: the
   same with "tensorfloat32", which prices the default.
3. `step_float32`, `step_bfloat16`: configs/otgan_cifar10.py's train step
   (1 critic + 3 generator updates, X, X', Y, Y' of n each) on random
   CIFAR-shaped images, chunked (otgan.chunk_size=500), float32 and
   bfloat16 networks (`model.dtype`): compile time, median step time, XLA's
   flop count over that time, XLA's memory analysis and the device's peak
   memory (the process's, so bench/accelerator.sh runs each in its own).
   With --profile_dir, the float32 step's warm-up runs under JAX's
   profiler and its top operations join the table (bench/trace_summary.py);
   a warm-up still running after --profile_stop_s has its trace stopped
   there, and the operations recorded until then are reported at once.
4. `sinkhorn_share`: the share of the step in Sinkhorn (the step with 1
   iteration instead of 500).
5. `memory`: the largest batch with and without chunking, from XLA's
   compiled memory analysis only (nothing run): the analysis at three
   sizes, a quadratic fit in n, and the predicted largest n compiled to
   check it fits the device's `bytes_limit` (or --limit_gib), refitted
   and stepped down while it does not.
6. `lowered` (not run by default; no device needed): the step lowered for
   --lowering_platform (cuda): its convolutions by dilation (a strided
   layer's gradients are dilated), its dots by precision, loops,
   conditionals (those that choose at run time apart from the platform
   choices XLA folds away) and custom calls. The counts are of the lowered
   text, where a function JAX emits once and calls several times counts
   once, so they depend on JAX's version (the paper's step at n = 4000:
   51 convolutions with jax 0.10.2, 115 with 0.11.2, from the same jaxpr
   of 86); the run-time conditionals come from the jaxpr.
--parts picks parts; --append keeps what --out holds from other runs.
Prints a markdown table and writes it (--md) and JSON (--out).
"""

import collections
import json
import os
import re
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from bench import trace_summary
from configs import otgan_cifar10
from otgan_jax import device_memory
from otgan_jax import experiment
from otgan_jax import losses
from otgan_jax.data import base as data_base

FLAGS = flags.FLAGS


def _define_flags():
  """Defines the flags; run only as a script (tests import the parts, and
  absl's one registry may already hold `--out` from launch.tables)."""
  flags.DEFINE_bool("tiny", False, "Tiny sizes: a CPU smoke test.")
  flags.DEFINE_string("limits", limits_lib.DEFAULT_OUT,
                      "bench/limits.py's JSON (read bandwidth).")
  flags.DEFINE_float("budget_s", 400.0, "Start no part after this.")
  flags.DEFINE_string("out", "bench/out/accelerator.json", "JSON.")
  flags.DEFINE_string("md", "bench/out/accelerator.md", "Markdown.")
  flags.DEFINE_string("inception_json", "",
                      "bench/inception.py's JSON, added to the table.")
  flags.DEFINE_list("parts", list(PARTS),
                    "Parts to run (they run in the order of this default); "
                    "'lowered' (no device needed) lowers the step for "
                    "--lowering_platform and counts what it is made of.")
  flags.DEFINE_string("lowering_platform", "cuda",
                      "Platform the 'lowered' part lowers the step for.")
  flags.DEFINE_float("limit_gib", 0.0, "Memory the largest batch must fit "
                     "(0: the device's bytes_limit; set it on CPU).")
  flags.DEFINE_integer("step_n", 4000, "Batch (X, X', Y, Y' each) of the "
                       "step parts (sinkhorn_share too); not with --tiny.")
  flags.DEFINE_integer("step_repeats", 3, "Timed steps after the warm-up.")
  flags.DEFINE_bool("append", False,
                    "Keep what --out already holds (runs of other parts).")
  flags.DEFINE_string("profile_dir", "", "If set, step_float32 profiles its "
                      "warm-up step into it and adds its top operations.")
  flags.DEFINE_float("profile_stop_s", 50.0, "Stop the warm-up's trace after "
                     "this many seconds if the step still runs, and report "
                     "the operations recorded until then.")


CIFAR = data_base.DatasetInfo("cifar10", (32, 32, 3), 0, 255, 50_000, 10)


def _median(fn, *args, repeats=3):
  return limits_lib.median_time(fn, *args, repeats=repeats)


def _features(n, d, seed=0):
  keys = jax.random.split(jax.random.key(seed), 4)
  return [jax.random.normal(k, (n, d), jnp.float32) for k in keys]


def _loss(iters, precision="highest"):
  return lambda *f: losses.minibatch_energy_distance(
      *f, epsilon=0.002, num_iterations=iters, threshold=None,
      precision=precision)[0]


def sinkhorn(ns, k0, k, read_bw):
  rows = []
  for n in ns:
    feats = _features(n, 64)
    t0 = _median(jax.jit(_loss(k0)), *feats)
    t1 = _median(jax.jit(_loss(k)), *feats)
    per_it = (t1 - t0) / (k - k0)
    floor = 2 * 6 * n * n * 4 / read_bw if read_bw else None
    rows.append({"n": n, "k0": k0, "k": k, "per_it_s": per_it,
                 "floor_s": floor,
                 "vs_floor": per_it / floor if floor else None})
  return rows


def loss_grad(n, d, iters, precision="highest"):
  feats = _features(n, d)
  fn = jax.jit(jax.value_and_grad(_loss(iters, precision),
                                  argnums=(0, 1, 2, 3)))
  return {"n": n, "d": d, "iterations": iters, "precision": precision,
          "seconds": _median(fn, *feats)}


def _config(n, chunk, dtype, iters, tiny):
  c = otgan_cifar10.get_config("smoke" if tiny else None)
  c.batch_size = n
  c.otgan.chunk_size = chunk
  c.model.dtype = dtype
  c.ot.num_iterations = iters
  c.evals.metrics = ""
  return c


def _step_parts(c):
  """(jitted step, abstract args, concrete-args maker) on random images."""
  exp = experiment.Experiment(c, info=CIFAR, devices=jax.devices()[:1])
  step = exp.jit_train_step()
  spec = exp.batch_spec
  shape = (spec.num_updates, spec.draws, c.batch_size) + CIFAR.shape
  abstract = exp.abstract_state()
  batch_abs = {"x": jax.ShapeDtypeStruct(shape, jnp.float32,
                                         sharding=exp.batch_sharding())}

  def concrete():
    num = c.model.init_batch_size
    state = exp.init_state(jax.random.uniform(
        jax.random.key(1), (num,) + CIFAR.shape, minval=-1, maxval=1))
    x = jax.device_put(jax.random.uniform(jax.random.key(2), shape,
                                          minval=-1, maxval=1),
                       exp.batch_sharding())
    return state, {"x": x}

  return step, (abstract, batch_abs, jax.random.key(3), None), concrete


def _flops(compiled):
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  return None if not cost else cost.get("flops")


def _compiled_bytes(c):
  step, args, _ = _step_parts(c)
  return device_memory.compiled_bytes(step.lower(*args).compile())


_error = trace_summary.error_line


def _warm_up(compiled, state, batch, rng, profile_dir, stop_after_s=50.0):
  """The step's first call; with `profile_dir`, under JAX's profiler
  (`trace_summary.StoppableTrace`, stopped after `stop_after_s` if the step
  still runs: a step that never finishes inside its part's time limit, as
  on the H200 of 2026-12-04, still says where its time went).

  The warm-up is not timed into the median, so profiling it costs no extra
  step, and its top operations are printed before the timed steps start.
  Returns `(state, seconds, info)`; `info` holds "profile" (the top
  operations) or "profile_error".
  """
  trace = (trace_summary.StoppableTrace(profile_dir, stop_after_s,
                                        "the warm-up step")
           if profile_dir else None)
  t0 = time.perf_counter()
  try:
    state, _ = compiled(state, batch, rng, None)
    jax.block_until_ready(state)
  finally:
    seconds = time.perf_counter() - t0
    info = trace.finish(seconds) if trace else {}
  print(f"  warm-up step {seconds:.1f} s"
        f"{' (profiled)' if 'profile' in info else ''}", flush=True)
  return state, seconds, info


def time_step(c, repeats, profile_dir="", profile_stop_s=50.0):
  """Compiles the step once (timed), then times `repeats` calls after a
  warm-up: the median, XLA's flop count and memory analysis, and the
  device's peak. With `profile_dir` the warm-up runs under JAX's profiler
  and its top operations are added (`_warm_up`, bench/trace_summary.py)."""
  step, args, concrete = _step_parts(c)
  t0 = time.perf_counter()
  compiled = step.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  print(f"  compiled in {compile_s:.0f} s", flush=True)
  t0 = time.perf_counter()
  state, batch = concrete()
  jax.block_until_ready(state)
  print(f"  initialised in {time.perf_counter() - t0:.0f} s", flush=True)
  rng = jax.random.key(3)
  state, warm_up_s, info = _warm_up(compiled, state, batch, rng, profile_dir,
                                    profile_stop_s)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch, rng, None)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
    print(f"  step {len(times)}: {times[-1]:.3f} s", flush=True)
  stats = jax.devices()[0].memory_stats() or {}
  seconds = float(np.median(times))
  flops = _flops(compiled)
  return {"seconds": seconds, "compile_s": compile_s, "warm_up_s": warm_up_s,
          "compiled_bytes": device_memory.compiled_bytes(compiled),
          "flops": flops, "flop_per_s": flops / seconds if flops else None,
          "peak_bytes": stats.get("peak_bytes_in_use"), **info}


def largest_batch(chunk, sizes, limit, tiny, iters, deadline, multiple):
  """The largest batch whose step fits `limit` bytes by XLA's compiled
  memory analysis (nothing run): the analysis at `sizes`, a quadratic fit
  in n (features grow as n, the Sinkhorn matrices as n^2), the predicted
  largest n rounded down to `multiple`, then compiled to check; while it
  does not fit (until `deadline`), a refit through the three nearest
  sizes, stepping down at least a tenth."""
  points = []
  for n in sizes:
    points.append((n, _compiled_bytes(_config(n, chunk, "float32", iters,
                                              tiny))))
  out = {"chunk": chunk, "points": points, "limit_bytes": limit}
  if not limit or any(b is None for _, b in points):
    return out
  root = _largest_root(points, limit)
  if root is None:
    return out
  n = int(root // multiple * multiple)
  out["predicted"] = n
  while n >= multiple and time.time() < deadline:
    b = _compiled_bytes(_config(n, chunk, "float32", iters, tiny))
    out.setdefault("checked", []).append((n, b))
    if b is not None and b <= limit:
      out["largest"] = n
      break
    # Refit through the three sizes nearest this one (the growth is steeper
    # than the small sizes said), and step down at least a tenth.
    near = sorted(points + out["checked"], key=lambda p: abs(p[0] - n))[:3]
    refit = _largest_root(near, limit)
    n = int(min(refit or n, 0.9 * n) // multiple * multiple)
  return out


def lowered_ops(c, platform):
  """What the step is made of, lowered for `platform` (no device needed):
  counts of its StableHLO operations, its dots by precision, and its
  convolutions by window (dilations: a gradient of a strided layer)."""
  step, args, _ = _step_parts(c)
  traced = step.trace(*args)
  text = traced.lower(lowering_platforms=(platform,)).as_text()
  ops = collections.Counter(re.findall(r"stablehlo\.(\w+)", text))
  dots = collections.Counter(re.findall(
      r"stablehlo\.dot_general[^\n]*precision = \[(\w+),", text))
  windows = collections.Counter(
      "lhs_dilate " + (m.group(1) or "1") + ", rhs_dilate "
      + (m.group(2) or "1") for m in re.finditer(
          r"stablehlo\.convolution[^\n]*?(?:lhs_dilate = \[(\d+)[^\n]*?)?"
          r"(?:rhs_dilate = \[(\d+)[^\n]*)?$", text, re.M))
  return {"platform": platform, "n": c.batch_size,
          "convolution": ops["convolution"], "dot_general": ops["dot_general"],
          "while": ops["while"], "case": ops["case"],
          **_conditionals(traced.jaxpr.jaxpr),
          "custom_call": ops["custom_call"], "dots_by_precision": dict(dots),
          "convolutions_by_dilation": dict(windows)}


def _conditionals(jaxpr):
  """`cond`s in a jaxpr and those inside it, split into the ones that choose
  at run time (on a GPU the host reads each one's branch index) and the
  platform choices (`jax.lax.platform_dependent`: in the lowered program a
  `case` on a constant, which XLA folds away when it compiles)."""
  counts = {"conditionals_at_run_time": 0, "platform_choices": 0}
  platform_index = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "platform_index":
      platform_index.update(eqn.outvars)
    elif eqn.primitive.name == "cond":
      key = ("platform_choices" if eqn.invars[0] in platform_index
             else "conditionals_at_run_time")
      counts[key] += 1
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        inner = getattr(sub, "jaxpr", None)
        if inner is not None:
          for k, v in _conditionals(getattr(inner, "jaxpr", inner)).items():
            counts[k] += v
  return counts


def _largest_root(points, limit):
  """The smallest positive n where a polynomial fit (quadratic from three
  points) of bytes(n) reaches `limit`, or None. A quadratic that bends
  down before the limit (timing-free, but small sizes can give it a
  negative n^2 term) falls back to the line through the two largest n."""
  points = sorted(points)
  for fit in (points, points[-2:]):
    ns, bs = np.array(fit, dtype=np.float64).T
    coef = np.polyfit(ns, bs, min(2, len(ns) - 1))
    roots = np.roots(coef - np.eye(len(coef))[-1] * limit)
    real = [r.real for r in roots if abs(r.imag) < 1e-6 and r.real > 0]
    if real:
      return min(real)
  return None


def device_bytes():
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("bytes_limit")


def table(result):
  lines = [f"Machine: {result['machine']['device_kind']} "
           f"({result['machine']['backend']}), jax {result['machine']['jax']}"
           f", {result['date']}.", "",
           "| what | value | note |", "|---|---:|---|"]
  gb = lambda b: "-" if b is None else f"{b / 2**30:.1f} GiB"
  for r in result.get("sinkhorn", []):
    floor = ("-" if r["floor_s"] is None else
             f"floor {1e3 * r['floor_s']:.3f} ms, {r['vs_floor']:.2f}x it")
    lines.append(f"| Sinkhorn per iteration, n={r['n']} | "
                 f"{1e3 * r['per_it_s']:.3f} ms | six problems; {floor} |")
  for key in ("loss_grad", "loss_grad_tf32"):
    if key in result:
      r = result[key]
      lines.append(f"| loss value and grad, n={r['n']}, d={r['d']} | "
                   f"{r['seconds']:.3f} s | {r['iterations']} iterations; "
                   f"cost products {r.get('precision', 'default')} |")
  for key, r in sorted(result.get("step", {}).items()):
    rate = ("" if not r.get("flop_per_s") else
            f"; {r['flop_per_s'] / 1e12:.1f} TFLOP/s by XLA's count")
    lines.append(f"| CIFAR-10 step, {key} | {r['seconds']:.3f} s | peak "
                 f"{gb(r.get('peak_bytes'))}, XLA's analysis "
                 f"{gb(r.get('compiled_bytes'))}, compile "
                 f"{r.get('compile_s', 0):.0f} s{rate} |")
  if "sinkhorn_share" in result:
    lines.append(f"| share of the step in Sinkhorn | "
                 f"{100 * result['sinkhorn_share']:.0f}% | "
                 f"{result.get('sinkhorn_share_iterations', 500)} vs 1 "
                 "iteration, chunked f32 |")
  for key, r in sorted(result.get("largest_batch", {}).items()):
    pts = ", ".join(f"n={n}: {gb(b)}" for n, b in r.get("points", []))
    lines.append(f"| largest batch, {key} | {r.get('largest', '-')} | fits "
                 f"{gb(r.get('limit_bytes'))} by XLA's analysis (compiled, "
                 f"not run); fit predicted {r.get('predicted', '-')}; {pts} |")
  low = result.get("lowered")
  if low:
    by = lambda d: ", ".join(f"{k}: {v}" for k, v in sorted(d.items()))
    lines.append(
        f"| CIFAR-10 step lowered for {low['platform']}, n={low['n']} | "
        f"{low['convolution']} convolutions | {low['dot_general']} dots "
        f"({by(low['dots_by_precision'])}); convolutions by dilation: "
        f"{by(low['convolutions_by_dilation'])}; {low['while']} while loops, "
        f"{low['case']} conditionals ({low['conditionals_at_run_time']} at "
        f"run time, {low['platform_choices']} platform choices, each two "
        f"cases on a constant), {low['custom_call']} custom calls |")
  inc = result.get("inception")
  if inc:
    lines.append(f"| Inception images/s | {inc} | bench/inception.py |")
  for name, err in result.get("errors", {}).items():
    lines.append(f"| {name} failed | - | {err[:200]} |")
  for key, r in sorted(result.get("step", {}).items()):
    if r.get("profile_error"):
      lines.append(f"| profile of {key} failed | - | "
                   f"{r['profile_error'][:200]} |")
    if r.get("profile"):
      prof = r["profile"]
      what = (f"the warm-up step ran past {prof['step_s']:.1f} s: the "
              "operations until then" if prof.get("partial") else
              f"the traced warm-up step {prof['step_s']:.3f} s")
      lines += ["", f"Where the profiled step's time went ({key}; {what}):",
                "", trace_summary.table(prof)]
  return "\n".join(lines)


PARTS = ("sinkhorn", "loss_grad", "loss_grad_tf32", "step_float32",
         "step_bfloat16", "sinkhorn_share", "memory")
# `lowered` needs no device: not in the default --parts.
ALL_PARTS = PARTS + ("lowered",)


def main(argv):
  del argv
  start = time.time()
  tiny = FLAGS.tiny
  parts = set(FLAGS.parts)
  if parts - set(ALL_PARTS):
    raise app.UsageError(f"--parts: unknown {sorted(parts - set(ALL_PARTS))}"
                         f"; choose from {ALL_PARTS}.")
  saved = limits_lib.load_limits(FLAGS.limits)
  read_bw = (saved or {}).get("limits", {}).get(
      "bandwidth_bytes_per_s_xla_read")
  result = {}
  if FLAGS.append and os.path.exists(FLAGS.out):
    with open(FLAGS.out) as f:
      result = json.load(f)
  result.update({"machine": limits_lib.machine(), "limits": saved,
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
  result.setdefault("skipped", [])

  if FLAGS.inception_json and os.path.exists(FLAGS.inception_json):
    with open(FLAGS.inception_json) as f:
      inc = json.load(f)
    best = max((r.get("images_per_s", 0) for r in inc.get("rows", [])),
               default=None)
    result["inception"] = None if best is None else f"{best:.0f}"

  def save():
    limits_lib.save_tables(result, FLAGS.out, FLAGS.md, table(result))

  def part(name, fn):
    if time.time() - start > FLAGS.budget_s:
      result["skipped"].append(name)
      print(f"skipped {name}: past --budget_s", flush=True)
      return
    t0 = time.time()
    try:
      fn()
      result.get("errors", {}).pop(name, None)
    except Exception as e:  # pylint: disable=broad-except
      result.setdefault("errors", {})[name] = _error(e)
      print(f"{name} failed: {type(e).__name__}: {e}"[:2000], flush=True)
    print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    save()

  n = 32 if tiny else 4000
  ns = (16, 32) if tiny else (1000, 4000, 8000)
  chunk = 8 if tiny else 500
  iters = 20 if tiny else 500
  repeats = 1 if tiny else FLAGS.step_repeats
  step_n = n if tiny else FLAGS.step_n
  steps = result.setdefault("step", {})
  if "sinkhorn" in parts:
    part("sinkhorn", lambda: result.__setitem__(
        "sinkhorn", sinkhorn(ns, 10, 20 if tiny else 110, read_bw)))
  for name, precision in (("loss_grad", "highest"),
                          ("loss_grad_tf32", "tensorfloat32")):
    if name in parts:
      part(name, lambda name=name, precision=precision: result.__setitem__(
          name, loss_grad(n, 64 if tiny else 32768, 20 if tiny else 500,
                          precision)))
  for dtype in ("float32", "bfloat16"):
    if f"step_{dtype}" in parts:
      part(f"step_{dtype}", lambda dtype=dtype: steps.__setitem__(
          f"n={step_n} chunk={chunk} {dtype}",
          time_step(_config(step_n, chunk, dtype, iters, tiny), repeats,
                    FLAGS.profile_dir if dtype == "float32" else "",
                    FLAGS.profile_stop_s)))

  def share():
    one = time_step(_config(step_n, chunk, "float32", 1, tiny), repeats)
    steps[f"n={step_n} chunk={chunk} float32, 1 iteration"] = one
    full = steps.get(f"n={step_n} chunk={chunk} float32")
    if full:
      result["sinkhorn_share"] = max(0.0, 1 - one["seconds"] / full["seconds"])
      result["sinkhorn_share_iterations"] = iters
  if "sinkhorn_share" in parts:
    part("sinkhorn_share", share)

  if "lowered" in parts:
    part("lowered", lambda: result.__setitem__("lowered", lowered_ops(
        _config(step_n, chunk, "float32", iters, tiny),
        FLAGS.lowering_platform)))

  if "memory" in parts:
    limit = (int(FLAGS.limit_gib * 2**30) if FLAGS.limit_gib
             else device_bytes())
    if tiny:
      plans = ((0, (n, 2 * n, 4 * n), 8),
               (chunk, (2 * chunk, 4 * chunk, 8 * chunk), chunk))
    else:
      plans = ((0, (1000, 2000, 4000), 500), (chunk, (4000, 8000, 16000),
                                              chunk))
    for ch, sizes, multiple in plans:
      part(f"memory_chunk{ch}", lambda ch=ch, sizes=sizes, m=multiple:
           result.setdefault("largest_batch", {}).__setitem__(
               f"chunk={ch}", largest_batch(
                   ch, sizes, limit, tiny, iters,
                   start + FLAGS.budget_s, m)))
  save()
  print(table(result))
  print(f"wrote {FLAGS.out} and {FLAGS.md} in {time.time() - start:.0f} s")


if __name__ == "__main__":
  _define_flags()
  app.run(main)

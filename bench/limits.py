r"""Benchmark: this machine's limits, the yardsticks of the other benchmarks.

  python bench/limits.py                        # writes bench/out/limits.json
  python bench/limits.py --tiny --out=/tmp/limits.json   # seconds, for tests

Measures, on the default JAX backend (and numpy on the host):
- float32 matrix-multiply peak: `jnp.dot` of two `[m, m]` float32 matrices at
  precision "highest" (XLA), and numpy's BLAS (`np.dot`), 2 m^3 flop each;
- exp throughput, elements per second: `sum(exp(x))` over float32 arrays of
  2^18 (cache-resident), --exp_elements (default 2^22 = 16 MiB, one
  2048 x 2048 matrix) and --elements (default 2^25 = 128 MiB, streamed from
  memory), the fastest of the three being `exp_per_s_xla`, the yardstick of
  a Sinkhorn iteration (two log-sum-exp passes over every cost entry); and
  `exp(x)` stored to a new array (`exp_per_s_xla_stored`, which also pays for
  writing, and first touching, the output);
- memory bandwidth: `sum(x * y)` (XLA, 2 arrays read, nothing stored: the
  read bandwidth), `x + y` (XLA, 2 read, 1 written to a fresh buffer) and a
  numpy copy into an existing array (2 arrays moved), all of --elements.
Each figure is the BEST of --repeats timed calls after a warm-up (a peak, not
a typical time: on a machine shared with other jobs the best call is the one
least disturbed). Prints a table and writes JSON that `load_limits` reads.
"""

import json
import os
import platform
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                           "limits.json")

# Flags only when run as a script: the other benchmarks import this module.
if __name__ == "__main__":
  _OUT = flags.DEFINE_string("out", DEFAULT_OUT, "JSON output.")
  _TINY = flags.DEFINE_bool("tiny", False, "Tiny sizes (a smoke test).")
  _REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls (the best counts).")
  _MATMUL = flags.DEFINE_integer("matmul_size", 2048, "m of the [m, m] matmul.")
  _ELEMENTS = flags.DEFINE_integer("elements", 2**25,
                                   "float32 elements for bandwidth, streamed exp.")
  _EXP_ELEMENTS = flags.DEFINE_integer("exp_elements", 2**22,
                                       "float32 elements for the mid-sized exp.")


def machine() -> dict[str, object]:
  dev = jax.devices()[0]
  return {"node": platform.node(), "processor": platform.processor(),
          "platform": platform.platform(), "cpu_count": os.cpu_count(),
          "backend": jax.default_backend(), "device_kind": dev.device_kind,
          "device_count": jax.device_count(), "jax": jax.__version__,
          "numpy": np.__version__}


def best_time(fn, *args, repeats: int) -> float:
  """Best wall time of `fn(*args)` (blocked until ready) after one warm-up."""
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t0)
  return best


def median_time(fn, *args, repeats: int) -> float:
  """Median wall time of `fn(*args)` (blocked until ready) after one warm-up
  (a typical call, where `best_time` gives the peak)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def measure(*, matmul_size: int, elements: int, exp_elements: int,
            repeats: int) -> dict[str, float]:
  m = matmul_size
  rng = np.random.default_rng(0)
  a = rng.standard_normal((m, m), dtype=np.float32)
  b = rng.standard_normal((m, m), dtype=np.float32)
  xa, xb = jax.device_put(a), jax.device_put(b)
  dot = jax.jit(lambda p, q: jnp.dot(p, q, precision="highest"))
  t_xla = best_time(dot, xa, xb, repeats=repeats)
  t_np = best_time(np.dot, a, b, repeats=repeats)
  flop = 2.0 * m**3
  extra = {}
  if jax.default_backend() != "cpu":
    # What the networks' matmuls and convolutions get on an accelerator:
    # the default precision (TF32 on NVIDIA GPUs since Ampere, bf16 passes
    # on TPUs) and bfloat16 inputs (`model.dtype`).
    t_default = best_time(jax.jit(jnp.dot), xa, xb, repeats=repeats)
    ha, hb = xa.astype(jnp.bfloat16), xb.astype(jnp.bfloat16)
    t_bf16 = best_time(jax.jit(jnp.dot), ha, hb, repeats=repeats)
    extra = {"matmul_flops_xla_default_precision": flop / t_default,
             "matmul_flops_xla_bf16": flop / t_bf16}

  # Inputs in [-10, 0]: the range of the shifted exponents of a log-sum-exp.
  exp_sum = jax.jit(lambda v: jnp.sum(jnp.exp(v)))
  exp_rates = {}
  for size in sorted({min(2**18, exp_elements), exp_elements, elements}):
    v = jax.device_put(-10.0 * rng.random(size, dtype=np.float32))
    exp_rates[size] = size / best_time(exp_sum, v, repeats=repeats)
  x = jax.device_put(-10.0 * rng.random(elements, dtype=np.float32))
  y = jax.device_put(rng.random(elements, dtype=np.float32))
  t_stored = best_time(jax.jit(jnp.exp), x, repeats=repeats)
  t_read = best_time(jax.jit(lambda p, q: jnp.sum(p * q)), x, y,
                     repeats=repeats)
  t_add = best_time(jax.jit(jnp.add), x, y, repeats=repeats)
  host = np.asarray(x)
  dst = np.empty_like(host)
  t_copy = best_time(lambda: np.copyto(dst, host), repeats=repeats)
  nbytes = 4.0 * elements
  return {
      "matmul_size": m, "elements": elements, "exp_elements": exp_elements,
      "repeats": repeats,
      "matmul_flops_xla": flop / t_xla,
      "matmul_flops_numpy": flop / t_np,
      "exp_per_s_xla": max(exp_rates.values()),
      "exp_per_s_xla_by_size": {str(k): r for k, r in exp_rates.items()},
      "exp_per_s_xla_stored": elements / t_stored,
      "bandwidth_bytes_per_s_xla_read": 2 * nbytes / t_read,
      "bandwidth_bytes_per_s_xla_add": 3 * nbytes / t_add,
      "bandwidth_bytes_per_s_numpy_copy": 2 * nbytes / t_copy,
      **extra,
  }


def save_tables(result: object, json_path: str, md_path: str,
                md_text: str) -> None:
  """Writes a benchmark's result as JSON and its markdown table (folders
  made as needed)."""
  for path, body in ((json_path, json.dumps(result, indent=2)),
                     (md_path, md_text)):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      f.write(body + "\n")


def load_limits(path: str = DEFAULT_OUT) -> dict[str, object] | None:
  """The saved limits (`{"machine": ..., "limits": ...}`), or None if absent."""
  if not path or not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def main(argv):
  del argv
  tiny = _TINY.value
  limits = measure(matmul_size=128 if tiny else _MATMUL.value,
                   elements=2**16 if tiny else _ELEMENTS.value,
                   exp_elements=2**14 if tiny else _EXP_ELEMENTS.value,
                   repeats=2 if tiny else _REPEATS.value)
  info = machine()
  print(" ".join(f"{k}={v}" for k, v in info.items()))
  print("\n| limit | value | how |")
  print("|---|---:|---|")
  m = limits["matmul_size"]
  print(f"| f32 matmul, XLA | {limits['matmul_flops_xla'] / 1e9:.1f} GFLOP/s | "
        f"jnp.dot [{m},{m}] precision highest |")
  print(f"| f32 matmul, numpy BLAS | {limits['matmul_flops_numpy'] / 1e9:.1f} "
        f"GFLOP/s | np.dot [{m},{m}] |")
  for key, what in (
      ("matmul_flops_xla_default_precision", "default precision"),
      ("matmul_flops_xla_bf16", "bfloat16 inputs")):
    if key in limits:
      print(f"| matmul, XLA | {limits[key] / 1e9:.1f} GFLOP/s | jnp.dot "
            f"[{m},{m}] {what} (accelerators only) |")
  for size, rate in limits["exp_per_s_xla_by_size"].items():
    print(f"| exp, XLA | {rate / 1e9:.2f} G elem/s | sum(exp(x)), "
          f"{int(size):,} f32 |")
  print(f"| exp stored, XLA | {limits['exp_per_s_xla_stored'] / 1e9:.2f} "
        f"G elem/s | exp(x) to a new array, {limits['elements']:,} f32 |")
  print(f"| read bandwidth, XLA | "
        f"{limits['bandwidth_bytes_per_s_xla_read'] / 1e9:.1f} GB/s | "
        "sum(x * y), 2 arrays read |")
  print(f"| bandwidth, XLA add | "
        f"{limits['bandwidth_bytes_per_s_xla_add'] / 1e9:.1f} GB/s | "
        "x + y to a new array, 3 arrays moved |")
  print(f"| bandwidth, numpy copy | "
        f"{limits['bandwidth_bytes_per_s_numpy_copy'] / 1e9:.1f} GB/s | "
        "np.copyto, 2 arrays moved |")
  out = _OUT.value
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w") as f:
    json.dump({"machine": info, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                      time.gmtime()),
               "limits": limits}, f, indent=2)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)

r"""Benchmark: one half-iteration of our Sinkhorn loop, pass by pass.

  python bench/sinkhorn_passes.py                 # n = 4096, six problems
  python bench/sinkhorn_passes.py --n=512 --limits=/tmp/limits.json

Where does a Sinkhorn iteration's time go? At settled potentials (30
iterations first), times (median of 5, after a compiling call, in ms) over
the six stacked `[n, n]` cosine costs (d = 64):

- `scaling col` / `scaling row`: `losses.sinkhorn.scaling_half`, the pass
  the loop runs almost always (a matrix-vector product on the absorbed
  kernel, the check, a division);
- `log-domain col` / `log-domain row`: `losses.sinkhorn.log_domain_half`,
  the exact half that also absorbs (max pass, exp pass writing the kernel);
  the loop runs it a few times per solve;
- `exp-sum rows`: `sum(exp(S + 1), axis=2)`, the simplest fused exp pass
  over the same array (what a one-exp-per-entry log-domain half costs at
  best);
- `sum rows`: `sum(K, axis=2)`, the simplest read of the kernel.

Two floors per half-iteration from bench/limits.py's JSON (--limits): the
exp floor `6 n^2 / exp_per_s` and the read floor `6 n^2 * 4 / read_bytes_per_s`.
Prints the table.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from otgan_jax.losses import sinkhorn as sk

if __name__ == "__main__":
  _N = flags.DEFINE_integer("n", 4096, "Points per batch (n = m).")
  _LIMITS = flags.DEFINE_string("limits", limits_lib.DEFAULT_OUT,
                                "bench/limits.py's JSON (for the floor).")

EPSILON = 0.002
PROBLEMS = 6


def _median_ms(fn, *args):
  return 1e3 * limits_lib.median_time(fn, *args, repeats=5)


def measure(n):
  """{pass name: ms} at settled potentials."""
  ka, kb = jax.random.split(jax.random.key(0))
  unit = lambda k: (lambda v: v / jnp.linalg.norm(v, axis=-1, keepdims=True))(
      jax.random.normal(k, (PROBLEMS, n, 64)))
  costs = jax.jit(lambda a, b: 1 - jnp.einsum("pid,pjd->pij", a, b))(
      unit(ka), unit(kb))
  sol = jax.block_until_ready(
      jax.jit(lambda c: sk.solve(c, EPSILON, 30))(costs))
  u, v = sol.potentials()
  scaled = jax.block_until_ready(jax.jit(lambda c: -c / EPSILON)(costs))
  half = lambda axis: jax.jit(
      lambda k, su, sv: sk.scaling_half(k, su, sv, axis))
  log_half = lambda axis: jax.jit(
      lambda s, u, v: sk.log_domain_half(s, u, v, axis))
  return {
      "scaling col": _median_ms(half(1), sol.kernel, sol.su, sol.sv),
      "scaling row": _median_ms(half(2), sol.kernel, sol.su, sol.sv),
      "log-domain col": _median_ms(log_half(1), scaled, u, v),
      "log-domain row": _median_ms(log_half(2), scaled, u, v),
      "exp-sum rows": _median_ms(jax.jit(
          lambda s: jnp.sum(jnp.exp(s + 1.0), axis=2)), scaled),
      "sum rows": _median_ms(jax.jit(lambda k: jnp.sum(k, axis=2)),
                             sol.kernel),
  }


def main(argv):
  del argv
  n = _N.value
  saved = limits_lib.load_limits(_LIMITS.value)
  limits = saved["limits"] if saved else {}
  entries = PROBLEMS * n * n
  floors = {
      "exp": (1e3 * entries / limits["exp_per_s_xla"]
              if limits.get("exp_per_s_xla") else None),
      "read": (1e3 * 4 * entries / limits["bandwidth_bytes_per_s_xla_read"]
               if limits.get("bandwidth_bytes_per_s_xla_read") else None)}
  rows = measure(n)
  fmt = lambda v: "-" if v is None else format(v, ".1f")
  print(f"n = {n}, {PROBLEMS} problems; per half-iteration: exp floor "
        f"{fmt(floors['exp'])} ms, read floor {fmt(floors['read'])} ms\n")
  print("| pass | ms | / exp floor | / read floor |\n|---|---:|---:|---:|")
  for name, ms in rows.items():
    ratio = lambda f: "-" if f is None else f"{ms / f:.2f}"
    print(f"| {name} | {ms:.1f} | {ratio(floors['exp'])} | "
          f"{ratio(floors['read'])} |")


if __name__ == "__main__":
  app.run(main)

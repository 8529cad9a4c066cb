r"""Benchmark: one half-iteration of our Sinkhorn loop, pass by pass.

  python bench/sinkhorn_passes.py                 # n = 4096, six problems
  python bench/sinkhorn_passes.py --n=512 --limits=/tmp/limits.json

Where does a Sinkhorn iteration's time go beyond the exp floor? At converged
potentials (30 iterations first, so the one-pass branch runs), times
(median of 5, after a compiling call, in ms) over the six stacked `[n, n]`
cosine costs (d = 64):

- `row half` / `col half`: `losses.sinkhorn._half` reducing over the
  contiguous axis / over the other one (the column update);
- `col half on transposed`: the column update on a stored transpose of
  `-C / eps` (reducing over the contiguous axis; twice the cost memory);
- `raw row` / `raw col`: the bare `sum(exp(S + (v - s)))` of each, without
  the safety check and the log;
- `exp-sum rows`: `sum(exp(S + 1), axis=2)`, the simplest fused pass over
  the same array (one add, one exp, one row sum per entry).

The floor of a half-iteration is `6 n^2 / exp_per_s` with `exp_per_s` from
bench/limits.py's JSON (--limits). Prints the table.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

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
  """{pass name: ms} at converged potentials."""
  ka, kb = jax.random.split(jax.random.key(0))
  unit = lambda k: (lambda v: v / jnp.linalg.norm(v, axis=-1, keepdims=True))(
      jax.random.normal(k, (PROBLEMS, n, 64)))
  costs = jax.jit(lambda a, b: 1 - jnp.einsum("pid,pjd->pij", a, b))(
      unit(ka), unit(kb))
  u, v = jax.jit(lambda c: sk.sinkhorn_potentials(c, EPSILON, 30))(costs)
  scaled = jax.block_until_ready(jax.jit(lambda c: -c / EPSILON)(costs))
  scaled_t = jax.block_until_ready(
      jax.jit(lambda s: jnp.swapaxes(s, 1, 2).copy())(scaled))
  log_marginal = -float(np.log(n))

  def raw_row(s, v, shift):
    return jnp.sum(jnp.exp(s + (v[:, None, :] - shift[:, :, None])), axis=2)

  def raw_col(s, u, shift):
    return jnp.sum(jnp.exp(s + (u[:, :, None] - shift[:, None, :])), axis=1)

  return {
      "row half": _median_ms(jax.jit(lambda s, u, v: sk._half(  # pylint: disable=protected-access
          s, v, u, log_marginal, axis=2)), scaled, u, v),
      "col half": _median_ms(jax.jit(lambda s, u, v: sk._half(  # pylint: disable=protected-access
          s, u, v, log_marginal, axis=1)), scaled, u, v),
      "col half on transposed": _median_ms(jax.jit(
          lambda s, u, v: sk._half(s, u, v, log_marginal, axis=2)),  # pylint: disable=protected-access
                                           scaled_t, u, v),
      "raw row": _median_ms(jax.jit(raw_row), scaled, v, u),
      "raw col": _median_ms(jax.jit(raw_col), scaled, u, v),
      "exp-sum rows": _median_ms(jax.jit(
          lambda s: jnp.sum(jnp.exp(s + 1.0), axis=2)), scaled),
  }


def main(argv):
  del argv
  n = _N.value
  saved = limits_lib.load_limits(_LIMITS.value)
  exp_per_s = saved["limits"]["exp_per_s_xla"] if saved else None
  floor_ms = None if not exp_per_s else 1e3 * PROBLEMS * n * n / exp_per_s
  rows = measure(n)
  print(f"n = {n}, {PROBLEMS} problems; floor per half-iteration "
        f"{'-' if floor_ms is None else format(floor_ms, '.1f')} ms\n")
  print("| pass | ms | / floor |\n|---|---:|---:|")
  for name, ms in rows.items():
    ratio = "-" if floor_ms is None else f"{ms / floor_ms:.2f}"
    print(f"| {name} | {ms:.1f} | {ratio} |")


if __name__ == "__main__":
  app.run(main)

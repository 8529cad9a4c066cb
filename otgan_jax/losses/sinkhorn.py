"""A fixed-count Sinkhorn over a stack of cost matrices: stabilised scaling
with absorption, one matrix-vector product per half-iteration.

OT-GAN runs a FIXED number of Sinkhorn iterations (500 in the official code)
on six n x n problems per step. ott-jax's log-domain solver (kept for early
stopping and as the test oracle) takes two passes over the n x n entries and
one exp per entry in every half-iteration. This loop computes the same
iterates (the column potential first, as ott) with the stabilised scaling
algorithm (Schmitzer, "Stabilized sparse scaling algorithms for entropy
regularized transport problems", SIAM J. Sci. Comput. 2019, section 3):

- Absorption: a log-domain half-iteration (the exact two-pass log-sum-exp)
  also leaves behind the kernel `K = exp(-C / eps + u0 + v0)` it
  exponentiated, with the potentials `u0`, `v0` (in units of eps) absorbed
  into it; every entry of `K` is at most 1.
- Scaling: the next half-iterations are plain Sinkhorn scalings on that
  kernel, `sv = b / (K^T su)` and `su = a / (K sv)`, the potentials being
  `u = u0 + log su`, `v = v0 + log sv`. Each is one matrix-vector product:
  no exp, each entry read once (memory-bound, where the log-domain pass is
  bound by the exp's throughput on CPU).
- Safety: a scaling half is accepted only if every sum it divides by stays
  in `[max(TINY, REL_TINY * |s|_1), marginal * HUGE]`, `s` being the scaling
  it multiplies. Then the kernel entries float32 flushes to zero (below
  ~1.2e-38) change no sum by more than ~1e-14 relatively, and no scaling
  over- or underflows. Otherwise that half runs in the log domain and
  re-absorbs (the first half-iterations, from zero potentials, always do;
  at OT-GAN's epsilon 0.002 a few absorptions cover 500 iterations).
- The stack is solved as one batched problem (not `vmap`), so the check is
  one scalar for all problems, the loops stay loops and the kernel is never
  copied: the scaling halves run in an inner `while_loop` that only reads
  it, until a half fails the check or the count is reached.
- One whole iteration (column half, then row half) per turn of that loop,
  with no conditional inside: on a GPU, XLA copies each `while` predicate
  and each `cond` branch index to the host and waits for it, so the loop
  costs one such wait per iteration instead of four (a `while` and a
  `cond` per half).
- The plan is `diag(su) K diag(sv)`, from the kernel already stored: no
  exp at the end.

Per iteration the floor is two reads of the `P x n x m` kernel at the
memory bandwidth (bench/sinkhorn_peers.py reports it beside the exp floor
of a log-domain iteration).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

# A scaling half is accepted when each sum `S_i` it divides by satisfies
# max(TINY, REL_TINY * |s|_1) <= S_i <= marginal * HUGE (see the module
# docstring): 1e-24 leaves 1e-14 relative room above the flushed entries.
TINY = 1e-30
REL_TINY = 1e-24
HUGE = 1e30
# The matrix-vector products in float32 on every backend (a TPU's default
# would round the kernel to bfloat16). They are memory-bound (at the HBM
# floor on an H200, bench/RESULTS.md), so the precision should not show in
# their time.
_HIGHEST = jax.lax.Precision.HIGHEST


class Solution(NamedTuple):
  """The loop's state after the last half-iteration.

  kernel: `[P, n, m]` `exp(-C / eps + u0 + v0)` from the last absorption.
  u0, v0: `[P, n]`, `[P, m]` potentials absorbed in it (units of eps).
  su, sv: scalings since: the potentials are `u0 + log su`, `v0 + log sv`.
  halves: half-iterations run (twice the iteration count).
  log_domain_halves: how many of them ran in the log domain (absorptions).
  """
  kernel: Array
  u0: Array
  v0: Array
  su: Array
  sv: Array
  halves: Array
  log_domain_halves: Array

  def potentials(self) -> tuple[Array, Array]:
    return self.u0 + jnp.log(self.su), self.v0 + jnp.log(self.sv)

  def plans(self) -> Array:
    return self.su[:, :, None] * self.kernel * self.sv[:, None, :]


def _lse_parts(z: Array, axis: int) -> tuple[Array, Array, Array]:
  """`(top, exp(z - top), sum)`: the two-pass log-sum-exp's pieces."""
  top = jnp.max(z, axis=axis, keepdims=True)
  top = jnp.where(jnp.isfinite(top), top, 0.0)
  e = jnp.exp(z - top)
  return jnp.squeeze(top, axis), e, jnp.sum(e, axis=axis)


def _accept(sums: Array, other: Array, marginal: float) -> Array:
  l1 = jnp.sum(other, axis=-1, keepdims=True)
  low = jnp.maximum(TINY, REL_TINY * l1)
  return jnp.all((sums >= low) & (sums <= marginal * HUGE))


def log_domain_half(scaled: Array, u: Array, v: Array, axis: int
                    ) -> tuple[Array, Array, Array, Array, Array]:
  """The exact half-iteration (two-pass log-sum-exp) that also absorbs.

  scaled: `[P, n, m]` `-C / eps`; u, v: the potentials (units of eps).
  axis=1 updates v (the column potential), axis=2 updates u. Returns the
  new `(kernel, u0, v0, su, sv)`: the kernel's entries are
  `exp(scaled + u0 + v0)` (at most 1) and the potentials `u0 + log su`,
  `v0 + log sv`, equal to the log-domain update.
  """
  p, n, m = scaled.shape
  if axis == 1:
    top, e, sums = _lse_parts(scaled + u[:, :, None], 1)
    return e, u, -top, jnp.ones_like(u), (1.0 / m) / sums
  top, e, sums = _lse_parts(scaled + v[:, None, :], 2)
  return e, -top, v, (1.0 / n) / sums, jnp.ones_like(v)


def scaling_half(kernel: Array, su: Array, sv: Array, axis: int
                 ) -> tuple[Array, Array, Array]:
  """One scaling half on an absorbed kernel: `(su, sv, accepted)`, the
  updated scaling (axis=1: sv, axis=2: su) replaced only if accepted."""
  p, n, m = kernel.shape
  if axis == 1:
    sums = jnp.einsum("pnm,pn->pm", kernel, su, precision=_HIGHEST)
    ok = _accept(sums, su, 1.0 / m)
    return su, jnp.where(ok, (1.0 / m) / sums, sv), ok
  sums = jnp.einsum("pnm,pm->pn", kernel, sv, precision=_HIGHEST)
  ok = _accept(sums, sv, 1.0 / n)
  return jnp.where(ok, (1.0 / n) / sums, su), sv, ok


def solve(costs: Array, epsilon: float, num_iterations: int) -> Solution:
  """Exactly `num_iterations` iterations (column, then row), uniform
  marginals, from zero potentials.

  Args:
    costs: `[P, n, m]` cost matrices (no gradient is taken through this).
    epsilon: absolute entropic regularisation.
    num_iterations: at least 1.
  """
  if int(num_iterations) < 1:
    raise ValueError(f"num_iterations must be at least 1, got {num_iterations}.")
  costs = jax.lax.stop_gradient(costs)
  p, n, m = costs.shape
  scaled = -costs / epsilon
  total = 2 * int(num_iterations)

  def absorb(s: Solution) -> Solution:
    """One log-domain half at `s.halves`, then scaling halves until one
    fails the check or the count is reached."""
    u, v = s.potentials()
    kernel, u0, v0, su, sv = jax.lax.cond(
        s.halves % 2 == 0, lambda _: log_domain_half(scaled, u, v, 1),
        lambda _: log_domain_half(scaled, u, v, 2), None)
    half = s.halves + 1

    def row_half(state):
      su, sv, half = state
      su, sv, ok = scaling_half(kernel, su, sv, 2)
      return su, sv, half + ok.astype(half.dtype), ok

    # After a column absorption the next half is a row half: run it here,
    # so the loop below always starts on a column half.
    su, sv, half, ok = jax.lax.cond(
        (half % 2 == 1) & (half < total), row_half,
        lambda state: (*state, jnp.array(True)), (su, sv, half))

    def iteration(state):
      """A column half, then a row half, each kept only if it passes the
      check (the row half also needs the column half to have passed)."""
      su, sv, half, _ = state
      _, sv, ok_col = scaling_half(kernel, su, sv, 1)
      su_row, _, ok_row = scaling_half(kernel, su, sv, 2)
      ok_row = ok_col & ok_row
      su = jnp.where(ok_row, su_row, su)
      return (su, sv, half + ok_col.astype(half.dtype)
              + ok_row.astype(half.dtype), ok_row)

    su, sv, half, _ = jax.lax.while_loop(
        lambda state: state[3] & (state[2] < total), iteration,
        (su, sv, half, ok))
    return Solution(kernel, u0, v0, su, sv, half, s.log_domain_halves + 1)

  dtype = costs.dtype
  start = Solution(
      kernel=jnp.zeros_like(scaled), u0=jnp.zeros((p, n), dtype),
      v0=jnp.zeros((p, m), dtype), su=jnp.ones((p, n), dtype),
      sv=jnp.ones((p, m), dtype), halves=jnp.zeros((), jnp.int32),
      log_domain_halves=jnp.zeros((), jnp.int32))
  return jax.lax.while_loop(lambda s: s.halves < total, absorb, start)


def sinkhorn_potentials(costs: Array, epsilon: float, num_iterations: int
                        ) -> tuple[Array, Array]:
  """`num_iterations` Sinkhorn iterations, uniform marginals, from zero.

  Args:
    costs: `[P, n, m]` cost matrices (no gradient is taken through this).
    epsilon: absolute entropic regularisation.
    num_iterations: exactly this many iterations (each: column potential,
      then row potential).

  Returns:
    `(u, v)`: `[P, n]` and `[P, m]` potentials in units of epsilon
    (`f / eps`, `g / eps`).
  """
  return solve(costs, epsilon, num_iterations).potentials()


def sinkhorn_plans(costs: Array, epsilon: float, num_iterations: int
                   ) -> tuple[Array, Array]:
  """Plans `[P, n, m]` after exactly `num_iterations` iterations, and each
  plan's marginal L1 error `[P]` (as losses.otgan reports it)."""
  plans = solve(costs, epsilon, num_iterations).plans()
  n, m = costs.shape[1:]
  err = (jnp.abs(plans.sum(2) - 1.0 / n).sum(1)
         + jnp.abs(plans.sum(1) - 1.0 / m).sum(1))
  return plans, err

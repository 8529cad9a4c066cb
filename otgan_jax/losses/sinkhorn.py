"""A fixed-count log-domain Sinkhorn over a stack of cost matrices, one
exp per entry per half-iteration.

OT-GAN runs a FIXED number of Sinkhorn iterations (500 in the official code)
on six n x n problems per step. ott-jax's solver (kept for early stopping and
as the test oracle) evaluates each log-sum-exp in two passes over the n x n
entries, a max and then a sum of exps, and solves the six problems under
`vmap`. This loop does the same updates, in the same order (the column
potential first, as ott), but:

- Single pass: each log-sum-exp is stabilised by the value the previous
  iteration's potential predicts instead of by the row maximum. At
  convergence `LSE_j((g_j - C_ij) / eps) = log(1/n) - f_i / eps`, so
  `sum_j exp((g_j - C_ij) / eps - s_i)` with `s_i = log(1/n) - f_i / eps`
  stays near 1; one pass reads each entry once and takes one exp. A
  half-iteration whose sums leave `[SAFE_LOW, SAFE_HIGH]` anywhere (the first
  iterations, from zero potentials, always do) is recomputed with the exact
  two-pass log-sum-exp under `lax.cond`, so the result is the two-pass
  result whenever the one-pass one could have lost precision.
- The stack is solved as one batched problem (not `vmap`), so that check is
  one scalar for all problems and `cond` stays a branch, not a select.
- `-C / eps` is formed once, not once per pass.

Per iteration this is the floor bench/sinkhorn_peers.py states: two exps
per entry, each entry read twice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# Accept a one-pass sum in [SAFE_LOW, SAFE_HIGH]: inside it every term the
# row maximum keeps at float32 precision (within 2^-24 of it) is a normal
# float, so the one-pass and two-pass results agree to float32 rounding.
SAFE_LOW = 1e-12
SAFE_HIGH = 1e30


def _lse_two_pass(z: Array, axis: int) -> Array:
  top = jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
  top = jnp.where(jnp.isfinite(top), top, 0.0)
  return jnp.squeeze(top, axis) + jnp.log(jnp.sum(jnp.exp(z - top), axis=axis))


def _half(scaled: Array, other: Array, own: Array, log_marginal: float,
          axis: int, one_pass: bool = True) -> Array:
  """New potential (in units of eps) along the axis not reduced.

  scaled: [P, n, m] = -C / eps. other: the potential on the reduced axis
  ([P, m] for axis=2, [P, n] for axis=1). own: the current potential being
  replaced, whose implied log-sum-exp stabilises the one-pass sum.
  """
  other_b = jnp.expand_dims(other, 1 if axis == 2 else 2)
  if not one_pass:
    return log_marginal - _lse_two_pass(scaled + other_b, axis)
  shift = log_marginal - own                     # predicted LSE
  shift_b = jnp.expand_dims(shift, axis)
  # Keep this order: (scaled + other) - shift rounded the exponent badly
  # enough that a 1-device step differed from an 8-device one by 1e-4
  # (tests/test_sharding.py); scaled + (other - shift) agrees to 6e-6.
  sums = jnp.sum(jnp.exp(scaled + (other_b - shift_b)), axis=axis)
  ok = jnp.all((sums >= SAFE_LOW) & (sums <= SAFE_HIGH))

  def exact(_):
    return log_marginal - _lse_two_pass(scaled + other_b, axis)

  return jax.lax.cond(ok, lambda _: log_marginal - (shift + jnp.log(sums)),
                      exact, None)


def sinkhorn_potentials(costs: Array, epsilon: float, num_iterations: int,
                        one_pass: bool = True) -> tuple[Array, Array]:
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
  costs = jax.lax.stop_gradient(costs)
  p, n, m = costs.shape
  scaled = -costs / epsilon
  log_a, log_b = -jnp.log(float(n)), -jnp.log(float(m))

  def body(_, uv):
    u, v = uv
    v = _half(scaled, u, v, log_b, axis=1, one_pass=one_pass)
    u = _half(scaled, v, u, log_a, axis=2, one_pass=one_pass)
    return u, v

  zeros = (jnp.zeros((p, n), costs.dtype), jnp.zeros((p, m), costs.dtype))
  return jax.lax.fori_loop(0, int(num_iterations), body, zeros)


def sinkhorn_plans(costs: Array, epsilon: float, num_iterations: int,
                   one_pass: bool = True) -> tuple[Array, Array]:
  """Plans `[P, n, m]` after exactly `num_iterations` iterations, and each
  plan's marginal L1 error `[P]` (as losses.otgan reports it)."""
  costs = jax.lax.stop_gradient(costs)
  u, v = sinkhorn_potentials(costs, epsilon, num_iterations, one_pass)
  plans = jnp.exp(u[:, :, None] + v[:, None, :] - costs / epsilon)
  n, m = costs.shape[1:]
  err = (jnp.abs(plans.sum(2) - 1.0 / n).sum(1)
         + jnp.abs(plans.sum(1) - 1.0 / m).sum(1))
  return plans, err

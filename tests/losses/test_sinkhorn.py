"""losses.sinkhorn: the one-pass fixed-count loop against ott-jax (oracle)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax import losses
from otgan_jax.losses import otgan as otgan_loss
from otgan_jax.losses import sinkhorn


def _costs(n=40, m=40, d=8, spread=1.0, seed=0):
  keys = jax.random.split(jax.random.key(seed), 4)
  a = [jax.random.normal(k, (n, d)) for k in keys[:2]]
  b = [spread * jax.random.normal(k, (m, d)) + 0.5 for k in keys[2:]]
  return jnp.stack([losses.cost_matrix(x, y) for x in a for y in b])


def _ott(costs, eps, iters):
  return jax.vmap(lambda c: otgan_loss._solve(
      otgan_loss.geometry.Geometry(cost_matrix=c, epsilon=eps), iters,
      None)[0])(costs)


@pytest.mark.parametrize("eps,iters", [(0.002, 1), (0.002, 7), (0.002, 60),
                                       (0.05, 30), (1.0, 10)])
def test_plans_equal_ott_at_a_fixed_count(eps, iters):
  costs = _costs(n=40, m=24)
  ours, errs = sinkhorn.sinkhorn_plans(costs, eps, iters)
  want = _ott(costs, eps, iters)
  np.testing.assert_allclose(ours, want, atol=1e-6 / 40, rtol=2e-3)
  # The reported marginal error is the plan's own.
  n, m = costs.shape[1:]
  own = (jnp.abs(ours.sum(2) - 1 / n).sum(1)
         + jnp.abs(ours.sum(1) - 1 / m).sum(1))
  np.testing.assert_allclose(errs, own, rtol=1e-5)


def test_one_pass_is_taken_once_potentials_settle_and_equals_two_pass():
  # After some iterations the potential-predicted stabiliser keeps every
  # one-pass sum inside the safe band, so the fast branch is the one taken;
  # its result equals the exact two-pass log-sum-exp.
  costs = _costs(n=64, m=64, d=16)
  eps = 0.002
  u, v = sinkhorn.sinkhorn_potentials(costs, eps, 40)
  scaled = -costs / eps
  log_a = -jnp.log(64.0)
  shift = log_a - u
  sums = jnp.sum(jnp.exp(scaled + v[:, None, :] - shift[:, :, None]), axis=2)
  assert bool(jnp.all((sums >= sinkhorn.SAFE_LOW) & (sums <= sinkhorn.SAFE_HIGH)))
  one_pass = sinkhorn._half(scaled, v, u, log_a, axis=2)
  exact = log_a - sinkhorn._lse_two_pass(scaled + v[:, None, :], axis=2)
  np.testing.assert_allclose(one_pass, exact, rtol=1e-5, atol=1e-3)


def test_first_iteration_falls_back_to_two_pass():
  # From zero potentials the predicted stabiliser is far off (cosine costs
  # over 0.002 underflow every term): the sums leave the band, the exact
  # branch runs, and the result is finite and equals the reference.
  costs = _costs()
  scaled = -costs / 0.002
  u0 = jnp.zeros(costs.shape[:2])
  v0 = jnp.zeros((costs.shape[0], costs.shape[2]))
  sums = jnp.sum(jnp.exp(scaled + u0[:, :, None] - (-jnp.log(40.0))), axis=1)
  assert not bool(jnp.all(sums >= sinkhorn.SAFE_LOW))
  v1 = sinkhorn._half(scaled, u0, v0, -jnp.log(40.0), axis=1)
  exact = -jnp.log(40.0) - sinkhorn._lse_two_pass(scaled + u0[:, :, None], 1)
  assert bool(jnp.all(jnp.isfinite(v1)))
  np.testing.assert_allclose(v1, exact, rtol=1e-6)


def test_solvers_agree_on_the_loss_and_bad_solver_raises():
  keys = jax.random.split(jax.random.key(3), 4)
  feats = [jax.random.normal(k, (32, 8)) for k in keys]
  ours = losses.minibatch_energy_distance(*feats, num_iterations=50,
                                          solver="ours")[0]
  ott = losses.minibatch_energy_distance(*feats, num_iterations=50,
                                         solver="ott")[0]
  auto = losses.minibatch_energy_distance(*feats, num_iterations=50)[0]
  np.testing.assert_allclose(ours, ott, rtol=1e-4, atol=1e-6)
  assert float(auto) == float(ours)
  with pytest.raises(ValueError, match="fixed iteration count"):
    losses.minibatch_energy_distance(*feats, threshold=1e-3, solver="ours")
  with pytest.raises(ValueError, match="Unknown solver"):
    losses.minibatch_energy_distance(*feats, solver="fast")
  plan, iters, _ = losses.sinkhorn_plan(feats[0], feats[1], num_iterations=13)
  want, _, _ = losses.sinkhorn_plan(feats[0], feats[1], num_iterations=13,
                                    solver="ott")
  assert int(iters) == 13
  np.testing.assert_allclose(plan, want, atol=1e-8, rtol=2e-3)


def test_gradient_flows_through_the_costs_only():
  keys = jax.random.split(jax.random.key(4), 4)
  feats = [jax.random.normal(k, (16, 4)) for k in keys]
  g_ours = jax.grad(lambda y: losses.minibatch_energy_distance(
      feats[0], feats[1], y, feats[3], num_iterations=20, solver="ours")[0])(
          feats[2])
  g_ott = jax.grad(lambda y: losses.minibatch_energy_distance(
      feats[0], feats[1], y, feats[3], num_iterations=20, solver="ott")[0])(
          feats[2])
  np.testing.assert_allclose(g_ours, g_ott, rtol=1e-3, atol=1e-6)

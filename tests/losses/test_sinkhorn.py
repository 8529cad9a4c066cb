"""losses.sinkhorn: the stabilised-scaling fixed-count loop against ott-jax
(oracle) and the textbook log-domain loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

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
      otgan_loss._ott_geometry(c, eps), iters, None)[0])(costs)


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


def _log_domain_f64(costs, eps, iters):
  """The textbook log-domain loop in float64 numpy, as a reference."""
  s = -np.asarray(costs, np.float64) / eps
  n, m = s.shape[1:]
  u, v = np.zeros(s.shape[:2]), np.zeros((s.shape[0], m))
  for _ in range(iters):
    v = -np.log(m) - special.logsumexp(s + u[:, :, None], axis=1)
    u = -np.log(n) - special.logsumexp(s + v[:, None, :], axis=2)
  return u, v


@pytest.mark.parametrize("eps,iters,tight", [
    (0.002, 1, False), (0.002, 60, False), (1e-4, 40, False),
    (0.002, 60, True)])
def test_potentials_equal_the_float64_log_domain_loop(eps, iters, tight,
                                                      monkeypatch):
  # Scaling halves on an absorbed kernel give the log-domain iterates, closer
  # to float64 than a float32 log-domain loop (whose exps of ~1e3-sized
  # exponents lose ~6e-6 relative; this loop exponentiates once per
  # absorption). With a tight check ("tight": sums must stay within 1e3 of
  # the scalings' scale) most halves run in the log domain and re-absorb,
  # and the result is the same.
  if tight:
    monkeypatch.setattr(sinkhorn, "REL_TINY", 1e-3)
    monkeypatch.setattr(sinkhorn, "HUGE", 1e3)
  costs = _costs(n=48, m=32, d=16)
  sol = jax.jit(lambda c: sinkhorn.solve(c, eps, iters))(costs)
  u, v = sol.potentials()
  want_u, want_v = _log_domain_f64(costs, eps, iters)
  scale = float(np.max(np.abs(want_u)))
  np.testing.assert_allclose(u, want_u, rtol=0, atol=1e-6 * scale)
  np.testing.assert_allclose(v, want_v, rtol=0, atol=1e-6 * scale)
  assert int(sol.halves) == 2 * iters
  assert 1 <= int(sol.log_domain_halves) <= 2 * iters
  if tight:
    assert int(sol.log_domain_halves) > 20, int(sol.log_domain_halves)


def test_scaling_halves_carry_the_loop_once_potentials_settle():
  # At OT-GAN's epsilon the first halves run in the log domain (from zero
  # potentials every exp underflows) and a handful of absorptions cover the
  # rest: the loop is matrix-vector products, not exps.
  costs = _costs(n=64, m=64, d=16)
  sol = sinkhorn.solve(costs, 0.002, 200)
  assert 1 <= int(sol.log_domain_halves) <= 12, int(sol.log_domain_halves)
  assert float(jnp.max(sol.kernel)) <= 1.0
  plans = sol.plans()
  np.testing.assert_allclose(plans.sum(2), 1 / 64, rtol=1e-4)


def test_the_check_rejects_sums_that_lose_precision_or_overflow():
  other = jnp.full((1, 4), 0.25)
  ok = lambda sums: bool(sinkhorn._accept(jnp.asarray([sums]), other, 0.25))
  assert ok([1.0, 1e-3, 1e-20, 5.0])
  assert not ok([1.0, 1.0, 1e-25, 1.0])            # below REL_TINY * |s|_1
  assert not ok([1.0, 1.0, 0.0, 1.0])              # every kernel entry flushed
  assert not ok([1.0, 1.0, 0.25 * 2e30, 1.0])      # the scaling underflows
  assert not ok([1.0, jnp.nan, 1.0, 1.0])
  assert not ok([1.0, jnp.inf, 1.0, 1.0])
  with pytest.raises(ValueError, match="at least 1"):
    sinkhorn.solve(_costs(), 0.002, 0)


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


def _loops(jaxpr):
  """The `while`/`cond` nesting of a jaxpr, e.g. [('while', [...]), ...]."""
  found = []
  for eqn in jaxpr.eqns:
    inner = []
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        if hasattr(sub, "jaxpr"):
          inner += _loops(sub.jaxpr)
    if eqn.primitive.name in ("while", "cond"):
      found.append((eqn.primitive.name, inner))
    else:
      found += inner
  return found


def test_the_scaling_loop_has_no_conditional_inside():
  # On a GPU, XLA waits for the host to read every `while` predicate and
  # every `cond` branch index: the scaling loop (what runs in almost every
  # iteration) is one `while` per whole iteration with no `cond` inside;
  # the conditionals run once per absorption.
  jaxpr = jax.make_jaxpr(lambda c: sinkhorn.solve(c, 0.002, 10))(
      jnp.zeros((6, 16, 16)))
  ((outer, absorb),) = _loops(jaxpr.jaxpr)
  assert outer == "while"
  assert [name for name, _ in absorb] == ["cond", "cond", "while"]
  assert absorb[2][1] == []

"""The mini-batch energy distance against an independent float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from otgan_jax import losses

import lowered  # tests/lowered.py


def np_cost(a, b, cost):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if cost == "cosine":
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1.0 - an @ bn.T
  d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
  return d2 / (2.0 * a.shape[1])


def np_sinkhorn(c, eps, iters):
  """Log-domain Sinkhorn with uniform marginals, float64, plain numpy.

  Updates the column potential first, as ott-jax does: unconverged plans at a
  fixed iteration count depend on that order.
  """
  n, m = c.shape
  log_a, log_b = np.full(n, -np.log(n)), np.full(m, -np.log(m))
  f, g = np.zeros(n), np.zeros(m)
  for _ in range(iters):
    g = eps * log_b - eps * logsumexp((f[:, None] - c) / eps, axis=0)
    f = eps * log_a - eps * logsumexp((g[None, :] - c) / eps, axis=1)
  return np.exp((f[:, None] + g[None, :] - c) / eps)


def np_energy_distance(x, xp, y, yp, eps, iters, cost):
  w = lambda a, b: float((np_sinkhorn(np_cost(a, b, cost), eps, iters)
                          * np_cost(a, b, cost)).sum())
  return (w(x, y) + w(x, yp) + w(xp, y) + w(xp, yp)
          - 2 * w(x, xp) - 2 * w(y, yp)), w


def features(n=48, d=16, seed=0, shift=0.5):
  rng = np.random.default_rng(seed)
  x, xp = rng.normal(size=(2, n, d))
  y, yp = rng.normal(size=(2, n, d)) + shift
  return [np.asarray(a, np.float32) for a in (x, xp, y, yp)]


@pytest.mark.parametrize("cost,eps,iters", [("cosine", 0.002, 500),
                                            ("cosine", 0.05, 100),
                                            ("sqeuclidean", 0.02, 300)])
def test_matches_float64_numpy_sinkhorn(cost, eps, iters):
  x, xp, y, yp = features()
  loss, aux = jax.jit(lambda *a: losses.minibatch_energy_distance(
      *a, epsilon=eps, num_iterations=iters, cost=cost))(x, xp, y, yp)
  ref, w = np_energy_distance(x, xp, y, yp, eps, iters, cost)
  np.testing.assert_allclose(float(aux["w/xy"]), w(x, y), rtol=2e-4, atol=1e-5)
  np.testing.assert_allclose(float(aux["w/yyp"]), w(y, yp), rtol=2e-4,
                             atol=1e-5)
  np.testing.assert_allclose(float(loss), ref, rtol=2e-3, atol=2e-4)
  assert int(aux["sinkhorn_iters"]) == iters
  assert float(aux["marginal_error"]) < 0.05


@pytest.mark.parametrize("iters", [1, 5, 13, 25])
def test_every_iteration_count_runs_exactly(iters):
  # ott runs whole blocks of inner_iterations (10 by default): 5 iterations
  # used to run none (an all-zero plan, loss exactly 0) and 25 ran 20.
  x, _, y, _ = features(n=24, d=8)
  c = np_cost(x, y, "cosine")
  plan, n_iters, _ = losses.sinkhorn_plan(
      x, y, cost="cosine", epsilon=0.002, num_iterations=iters,
      threshold=None)
  assert int(n_iters) == iters
  np.testing.assert_allclose(np.asarray(plan), np_sinkhorn(c, 0.002, iters),
                             rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("cost,scale", [("cosine", 1.0),
                                        ("sqeuclidean", 2.0 * 16)])
def test_cost_matrix_is_ott_point_cloud_cost_values_and_gradients(cost, scale):
  # Written out so that a run need not import ott-jax; ott-jax is the oracle.
  from ott.geometry import costs  # pylint: disable=g-import-not-at-top
  from ott.geometry import pointcloud  # pylint: disable=g-import-not-at-top
  cost_fn = {"cosine": costs.Cosine(), "sqeuclidean": costs.SqEuclidean()}
  x, _, y, _ = features(n=24, d=16)
  y = y[:20]  # Not square.

  def ours(a, b):
    return losses.cost_matrix(a, b, cost)

  def ott(a, b):
    return pointcloud.PointCloud(a, b, cost_fn=cost_fn[cost],
                                 scale_cost=scale).cost_matrix

  weights = np.random.default_rng(1).normal(size=(24, 20)).astype(np.float32)
  for fn in (ours, ott):
    assert jax.jit(fn)(x, y).shape == (24, 20)
  np.testing.assert_allclose(jax.jit(ours)(x, y), jax.jit(ott)(x, y),
                             rtol=1e-6, atol=1e-6)
  grad = lambda fn: jax.jit(jax.grad(
      lambda a, b: jnp.sum(weights * fn(a, b)), argnums=(0, 1)))(x, y)
  for g_ours, g_ott in zip(grad(ours), grad(ott)):
    np.testing.assert_allclose(g_ours, g_ott, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jax.jit(ours)(x, y), np_cost(x, y, cost),
                             rtol=1e-5, atol=1e-5)


def test_plan_matches_reference_and_is_a_coupling():
  x, _, y, _ = features(n=32)
  plan, iters, err = losses.sinkhorn_plan(jnp.asarray(x), jnp.asarray(y),
                                          epsilon=0.002, num_iterations=500)
  ref = np_sinkhorn(np_cost(x, y, "cosine"), 0.002, 500)
  np.testing.assert_allclose(np.asarray(plan), ref, atol=2e-5)
  np.testing.assert_allclose(np.asarray(plan).sum(), 1.0, rtol=1e-5)
  assert int(iters) == 500 and float(err) < 1e-2


def test_gradient_matches_finite_differences_with_plan_frozen():
  x, xp, y, yp = [np.asarray(a, np.float64) for a in features(n=12, d=5)]
  eps, iters = 0.05, 200
  grad = jax.grad(lambda y_: losses.minibatch_energy_distance(
      x, xp, y_, yp, epsilon=eps, num_iterations=iters)[0])(
          jnp.asarray(y, jnp.float32))
  # With the plans frozen at their values at y, L is linear in the costs.
  plans = {name: np_sinkhorn(np_cost(a, b, "cosine"), eps, iters)
           for name, (a, b) in {"xy": (x, y), "xpy": (xp, y),
                                "yyp": (y, yp)}.items()}

  def frozen_loss(y_):
    return ((plans["xy"] * np_cost(x, y_, "cosine")).sum()
            + (plans["xpy"] * np_cost(xp, y_, "cosine")).sum()
            - 2 * (plans["yyp"] * np_cost(y_, yp, "cosine")).sum())

  h = 1e-6
  fd = np.zeros_like(y)
  for idx in np.ndindex(*y.shape):
    e = np.zeros_like(y)
    e[idx] = h
    fd[idx] = (frozen_loss(y + e) - frozen_loss(y - e)) / (2 * h)
  np.testing.assert_allclose(np.asarray(grad), fd, rtol=2e-3, atol=2e-4)


def test_same_distribution_near_zero_and_different_positive():
  kw = dict(epsilon=0.05, num_iterations=100)
  x, xp, y, yp = features(n=128, shift=0.0)
  same, _ = losses.minibatch_energy_distance(x, xp, y, yp, **kw)
  _, _, y2, yp2 = features(n=128, shift=1.0)
  apart, _ = losses.minibatch_energy_distance(x, xp, y2, yp2, **kw)
  assert float(apart) > 0.1
  assert abs(float(same)) < 0.1 * float(apart)
  # Symmetric in the roles of X and X', and of Y and Y'.
  swapped, _ = losses.minibatch_energy_distance(xp, x, yp2, y2, **kw)
  np.testing.assert_allclose(float(swapped), float(apart), rtol=1e-3)


def test_random_matching_is_a_permutation_energy_distance():
  x, xp, y, yp = features(n=20)
  rng = jax.random.key(3)
  loss, aux = losses.minibatch_energy_distance(x, xp, y, yp,
                                               matching="random", rng=rng)
  plan = np.asarray(losses.random_plan(jax.random.split(rng, 6)[0], 20))
  np.testing.assert_allclose(plan.sum(0), 1 / 20)
  np.testing.assert_allclose(plan.sum(1), 1 / 20)
  assert set(np.unique(plan * 20)) == {0.0, 1.0}
  ref = (np_cost(x, y, "cosine") * plan).sum()
  np.testing.assert_allclose(float(aux["w/xy"]), ref, rtol=1e-5)
  assert int(aux["sinkhorn_iters"]) == 0 and np.isfinite(float(loss))
  with pytest.raises(ValueError, match="rng"):
    losses.minibatch_energy_distance(x, xp, y, yp, matching="random")


def test_callable_cost_and_threshold():
  x, xp, y, yp = features(n=24)
  l1 = lambda a, b: jnp.abs(a[:, None, :] - b[None, :, :]).mean(-1)
  loss, aux = losses.minibatch_energy_distance(
      x, xp, y, yp, cost=l1, epsilon=0.05, num_iterations=1000,
      threshold=1e-4)
  c = np.abs(x[:, None] - y[None]).mean(-1).astype(np.float64)
  ref = (np_sinkhorn(c, 0.05, 1000) * c).sum()
  np.testing.assert_allclose(float(aux["w/xy"]), ref, rtol=1e-3)
  assert 0 < int(aux["sinkhorn_iters"]) < 1000
  assert float(aux["marginal_error"]) < 1e-3


def test_bad_arguments_raise_clear_errors():
  x, xp, y, yp = features(n=8)
  with pytest.raises(ValueError, match="Unknown cost"):
    losses.minibatch_energy_distance(x, xp, y, yp, cost="l7")
  with pytest.raises(ValueError, match="Unknown matching"):
    losses.minibatch_energy_distance(x, xp, y, yp, matching="greedy")
  with pytest.raises(ValueError, match="same shape"):
    losses.minibatch_energy_distance(x, xp, y[:4], yp)


def test_conditional_loss_is_algorithm_2():
  # L = W(x, y') + W(x', y) - W(x, x') - W(y, y') against the float64
  # reference; the cross pairs are those with independent labels.
  x, xp, y, yp = features(seed=3)
  eps, iters = 0.05, 100
  loss, aux = jax.jit(lambda *a: losses.conditional_energy_distance(
      *a, epsilon=eps, num_iterations=iters))(x, xp, y, yp)
  _, w = np_energy_distance(x, xp, y, yp, eps, iters, "cosine")
  ref = w(x, yp) + w(xp, y) - w(x, xp) - w(y, yp)
  np.testing.assert_allclose(float(loss), ref, rtol=2e-3, atol=2e-4)
  assert sorted(k for k in aux if k.startswith("w/")) == [
      "w/xpy", "w/xxp", "w/xyp", "w/yyp"]
  # Same distributions give about 0, shifted ones a positive value.
  same, _ = losses.conditional_energy_distance(x, xp, *features(seed=4,
                                                                shift=0)[:2],
                                               epsilon=eps,
                                               num_iterations=iters)
  assert abs(float(same)) < 0.3 * float(loss)


@pytest.mark.parametrize("conditional", [False, True])
def test_products_are_float32_on_every_backend(conditional):
  # XLA:CPU computes every f32 dot in f32, but a GPU's default precision
  # rounds the features to TF32 and a TPU's to bfloat16: against epsilon
  # 0.002 that moves the plans (bench/RESULTS.md). So every product of the
  # loss and its gradient asks for HIGHEST; `precision` trades the cost
  # matrices' products only (the Sinkhorn's and L's stay float32).
  fn = (losses.conditional_energy_distance if conditional
        else losses.minibatch_energy_distance)
  x, xp, y, yp = features(n=8, d=5)
  for precision, cost_products in (("highest", "HIGHEST"),
                                   ("tensorfloat32", "HIGH"),
                                   ("default", "DEFAULT")):
    kwargs = {} if precision == "highest" else {"precision": precision}
    dots = lowered.dot_precisions(jax.value_and_grad(
        lambda *f, kw=kwargs: fn(*f, num_iterations=3, **kw)[0],
        argnums=(0, 1, 2, 3)), x, xp, y, yp)
    features_dots = [p for shapes, p in dots if "8x5x" in shapes]
    other = [p for shapes, p in dots if "8x5x" not in shapes]
    # The cost matrices, and their gradients (one per side of each pair).
    pairs = 4 if conditional else 6
    assert len(features_dots) == 3 * pairs, dots
    assert set(features_dots) == {cost_products}, (precision, dots)
    assert other and set(other) == {"HIGHEST"}, (precision, dots)
  with pytest.raises(ValueError, match="Unknown precision 'tf32'"):
    fn(x, xp, y, yp, num_iterations=3, precision="tf32")


def test_sinkhorn_plan_and_transport_cost_take_the_precision():
  x, _, y, _ = features(n=8, d=5)
  plan = jnp.ones((8, 8)) / 64
  for precision in ("highest", "default"):
    cost_products = precision.upper()
    dots = lowered.dot_precisions(
        lambda a, b, p=precision: losses.sinkhorn_plan(
            a, b, num_iterations=3, precision=p)[0], x, y)
    assert {p for shapes, p in dots if "8x5x" in shapes} == {cost_products}
    assert {p for shapes, p in dots if "8x5x" not in shapes} == {"HIGHEST"}
    dots = lowered.dot_precisions(
        lambda a, b, p=precision: losses.transport_cost(
            a, b, plan, precision=p), x, y)
    assert {p for _, p in dots} == {cost_products}

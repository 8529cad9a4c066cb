"""The assignment method's losses: exact assignment, the assigner's
objective, and Theorem 3.3 (equal shares make the assignment optimal)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.evaluation import transport  # Sets POT's backend flags first.
from otgan_jax.losses import assignment

import ot  # pylint: disable=g-bad-import-order

import lowered  # tests/lowered.py

del transport


def _problem(n=40, m=13, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3, 2)).astype(np.float32)
  y = rng.normal(size=(m, 3, 2)).astype(np.float32)
  psi = rng.normal(size=(m,)).astype(np.float32)
  return x, y, psi


@pytest.mark.parametrize("cost", ["sqeuclidean", "psnr"])
def test_assign_is_the_brute_force_argmin_over_all_reals(cost):
  x, y, psi = _problem()
  mse = ((x.reshape(40, 1, -1) - y.reshape(1, 13, -1)) ** 2).mean(-1)
  c = mse if cost == "sqeuclidean" else np.log(mse + 1e-8)
  want = (c + psi).argmin(1)
  # Chunks of 5 reals: 13 is not a multiple, the padding is never chosen.
  index, value = jax.jit(lambda *a: assignment.assign(
      *a, cost=cost, chunk_size=5))(x, y, psi)
  np.testing.assert_array_equal(np.asarray(index), want)
  np.testing.assert_allclose(np.asarray(value), (c + psi).min(1), rtol=1e-4,
                             atol=1e-4)


def test_assigner_gradient_raises_psi_at_over_assigned_reals():
  counts = jnp.array([5.0, 0.0, 1.0, 2.0])
  psi = jnp.zeros(4)
  grad = jax.grad(assignment.assigner_loss)(psi, counts)
  np.testing.assert_allclose(np.asarray(grad),
                             1 / 4 - np.asarray(counts) / 8, atol=1e-7)
  # Descending the loss raises psi where n_j exceeds the share (real 0).
  assert float(grad[0]) < 0 < float(grad[1])


def test_equal_shares_give_an_optimal_transport_map():
  # Theorem 3.3 on a small problem: drive psi (a free vector here) to equal
  # shares by descending the assigner's loss; the assignment's mean cost is
  # then the exact OT cost (POT's network simplex).
  rng = np.random.default_rng(0)
  m, share = 6, 3
  n = m * share
  x = rng.normal(size=(n, 2)).astype(np.float32)
  y = rng.normal(size=(m, 2)).astype(np.float32)
  assign = jax.jit(lambda psi: assignment.assign(x, y, psi, chunk_size=4))
  grad = jax.jit(jax.grad(assignment.assigner_loss))
  psi = jnp.zeros(m)
  for t in range(5000):
    index, _ = assign(psi)
    counts = assignment.assignment_counts(index, m)
    if np.all(np.asarray(counts) == share):
      break
    psi = psi - 0.5 / np.sqrt(t + 1) * grad(psi, counts)
  assert np.all(np.asarray(counts) == share), counts
  cost = np.asarray(assignment.pairwise_cost(x, y), np.float64)
  mean_cost = cost[np.arange(n), np.asarray(index)].mean()
  exact = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), cost)
  np.testing.assert_allclose(mean_cost, exact, rtol=1e-5)


def test_elementwise_costs():
  x, y, _ = _problem(n=4, m=4)
  mse = ((x - y) ** 2).reshape(4, -1).mean(1)
  np.testing.assert_allclose(
      np.asarray(assignment.elementwise_cost(x, y)), mse, rtol=1e-5)
  np.testing.assert_allclose(
      np.asarray(assignment.elementwise_cost(x, y, "psnr")),
      np.log(mse + 1e-8), rtol=1e-5)
  img = jnp.asarray(np.random.default_rng(1).uniform(
      -1, 1, size=(2, 16, 16, 1)), jnp.float32)
  same = assignment.elementwise_cost(img, img, "ssim")
  np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-4)
  other = assignment.elementwise_cost(img, img[::-1], "ssim")
  assert float(other.min()) > 1.0
  with pytest.raises(ValueError, match="Unknown assigner cost"):
    assignment.pairwise_cost(x, y, "ssim")


def test_assignment_products_are_float32_on_every_backend():
  # A TPU's default dot rounds to bfloat16, which would move the argmin.
  x, y, psi = _problem()
  precisions = {p for _, p in lowered.dot_precisions(
      lambda a, b, p: assignment.assign(a, b, p, chunk_size=5), x, y, psi)}
  assert precisions == {"HIGHEST"}

"""Exact W1 and assignment variance on problems with known answers."""

import numpy as np
import pytest
from scipy import stats

from otgan_jax.evaluation import transport


def test_w1_matches_sorted_matching_in_1d_with_unequal_sizes():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=37), rng.exponential(size=53)
  expected = stats.wasserstein_distance(x, y)  # quantile (sorted) matching
  assert transport.exact_w1(x[:, None], y[:, None]) == pytest.approx(
      expected, rel=1e-9)


def test_w1_of_a_shift_is_the_shift_length():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(30, 2, 2))  # "images": flattened inside
  shift = np.array([[0.3, -0.4], [0.0, 0.0]])
  y = np.concatenate([x, x]) + shift  # the same measure, 60 points, shifted
  assert transport.exact_w1(x, y) == pytest.approx(0.5, rel=1e-9)
  assert transport.exact_w1(x, x) == pytest.approx(0.0, abs=1e-6)


def test_w1_subsampling_and_non_convergence():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(80, 3)), rng.normal(size=(90, 3)) + 2.0
  sub = transport.exact_w1(x, y, max_points=50, rng=0)
  assert 1.0 < sub < 5.0
  with pytest.raises(ValueError, match="rng"):
    transport.exact_w1(x, y, max_points=50)
  with pytest.raises(RuntimeError, match="did not converge"):
    transport.exact_w1(x, y, num_iter_max=3)


def test_assignment_variance_even_and_collapsed():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(20, 4))
  even = np.repeat(real, 10, axis=0) + 1e-3 * rng.normal(size=(200, 4))
  m = transport.assignment_variance(even, real, batch_size=64)
  assert m["assignment_variance"] == 0.0 and m["count_variance"] == 0.0
  assert m["ratio"] == 10 and (m["counts"] == 10).all()
  collapsed = np.repeat(real[:1], 200, axis=0)
  m = transport.assignment_variance(collapsed, real, cost="euclidean")
  # Real 0 gets 200 (|200 - 10|), the 19 others 0 (|0 - 10| each).
  assert m["assignment_variance"] == pytest.approx((190 + 19 * 10) / 20)
  assert m["unassigned_fraction"] == pytest.approx(19 / 20)


def test_assignment_with_potential_and_callable_cost():
  real = np.array([[0.0], [1.0]])
  gen = np.array([[0.1], [0.2], [0.9], [1.1]])
  assert (transport.assign_to_reals(gen, real) == [0, 0, 1, 1]).all()
  # A higher psi at an over-assigned real pushes points away from it.
  shifted = transport.assign_to_reals(gen, real, potential=[1.0, 0.0])
  assert (shifted == [1, 1, 1, 1]).all()
  l1 = lambda x, y: np.abs(x[:, None, :] - y[None, :, :]).sum(-1)
  assert (transport.assign_to_reals(gen, real, cost=l1, batch_size=3) ==
          [0, 0, 1, 1]).all()


def test_random_baseline_matches_multinomial_counts():
  rng = np.random.default_rng(4)
  real = rng.normal(size=(500, 3))
  m = transport.assignment_variance(rng.normal(size=(5000, 3)), real)
  counts = rng.multinomial(5000, np.full(500, 1 / 500), size=200)
  simulated = np.abs(counts - 10).mean()
  assert m["random_baseline"] == pytest.approx(simulated, rel=0.02)
  assert m["random_baseline"] == pytest.approx(np.sqrt(20 / np.pi), rel=0.05)

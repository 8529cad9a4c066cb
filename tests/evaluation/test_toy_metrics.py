"""Mode metrics and the Parzen reverse KL on hand-made point sets."""

import functools

import numpy as np
import pytest

from otgan_jax.data import mode_centers
from otgan_jax.evaluation.toy import mixture_log_density
from otgan_jax.evaluation.toy import mode_metrics
from otgan_jax.evaluation.toy import reverse_kl_parzen


def test_all_modes_vs_collapse():
  centers = mode_centers(8, 2.0)
  rng = np.random.default_rng(0)
  full = centers[rng.integers(0, 8, 2500)] + 0.2 * rng.normal(size=(2500, 2))
  m = mode_metrics(full, centers, 0.2)
  assert m["modes_covered"] == 8 and m["high_quality_fraction"] > 0.95
  collapsed = centers[rng.integers(0, 3, 2500)] + 0.02 * rng.normal(
      size=(2500, 2))
  m = mode_metrics(collapsed, centers, 0.2)
  assert m["modes_covered"] == 3 and m["high_quality_fraction"] == 1.0
  assert m["counts"].sum() == 2500 and (m["counts"][3:] == 0).all()


def test_far_points_are_low_quality():
  centers = mode_centers(8, 2.0)
  m = mode_metrics(np.zeros((10, 2)), centers, 0.2)  # the ring's centre
  assert m["modes_covered"] == 0 and m["high_quality_fraction"] == 0.0


def _ring(rng, n, modes=8):
  centers = mode_centers(8, 2.0)
  return centers[rng.integers(0, modes, n)] + 0.2 * rng.normal(size=(n, 2))


def test_mixture_log_density_matches_scipy():
  from scipy import stats  # pylint: disable=g-import-not-at-top
  centers = mode_centers(8, 2.0)
  points = np.random.default_rng(0).normal(size=(20, 2))
  expected = np.log(np.mean([
      stats.multivariate_normal(c, 0.04 * np.eye(2)).pdf(points)
      for c in centers], axis=0))
  np.testing.assert_allclose(mixture_log_density(points, centers, 0.2),
                             expected, rtol=1e-10)


def test_reverse_kl_parzen_same_distribution_vs_dropped_modes():
  rng = np.random.default_rng(1)
  real, same, dropped = (_ring(rng, 1000), _ring(rng, 1000),
                         _ring(rng, 1000, modes=3))
  assert abs(reverse_kl_parzen(same, real, bandwidth=0.1)) < 0.05
  # Equal mass on 3 of 8 separated modes: KL = log(8/3).
  assert reverse_kl_parzen(dropped, real, bandwidth=0.1) == pytest.approx(
      np.log(8 / 3), abs=0.12)
  exact = functools.partial(mixture_log_density, centers=mode_centers(8, 2.0),
                            std=np.hypot(0.2, 0.1))
  assert abs(reverse_kl_parzen(same, exact, bandwidth=0.1)) < 0.08
  assert reverse_kl_parzen(dropped, exact, bandwidth=0.1) == pytest.approx(
      np.log(8 / 3), abs=0.12)


def test_reverse_kl_parzen_batching_and_gaussian_shift():
  # Two 1-D unit Gaussians at distance 1: KL = 1/2; the KDE with a small
  # bandwidth gets close, and batch size does not matter.
  rng = np.random.default_rng(2)
  gen, real = rng.normal(size=(1500, 1)) + 1.0, rng.normal(size=(1500, 1))
  a = reverse_kl_parzen(gen, real, bandwidth=0.2, batch_size=97)
  assert a == pytest.approx(reverse_kl_parzen(gen, real, bandwidth=0.2))
  assert a == pytest.approx(0.5, abs=0.1)

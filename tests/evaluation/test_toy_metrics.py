"""Mode metrics on hand-made point sets."""

import numpy as np

from otgan_jax.data import mode_centers
from otgan_jax.evaluation.toy import mode_metrics


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

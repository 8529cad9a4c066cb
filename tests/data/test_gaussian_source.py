"""Tests of the 2-D Gaussian-mixture data."""

import ml_collections
import numpy as np
import pytest

from otgan_jax import data


def _config(num_examples=0, num_modes=8, radius=2.0, std=0.2):
  return ml_collections.ConfigDict({
      "name": "gaussians", "source": "embedded", "data_dir": "",
      "split": "train",
      "gaussians": {"num_modes": num_modes, "radius": radius, "std": std,
                    "num_examples": num_examples}})


def test_mode_centers_on_circle():
  centers = data.mode_centers(8, 2.0)
  assert centers.shape == (8, 2) and centers.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
  np.testing.assert_allclose(centers[0], [2.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(centers[2], [0.0, 2.0], atol=1e-6)
  with pytest.raises(ValueError):
    data.mode_centers(0, 1.0)


def test_infinite_source_modes_and_std():
  source = data.build_source(_config(), seed=0)
  assert source.info == data.DatasetInfo("gaussians", (2,), None, None, None,
                                         8)
  assert not source.info.is_image
  batch = source.sample(0, 20000)
  x, labels = batch["x"], batch["label"]
  assert x.shape == (20000, 2) and x.dtype == np.float32
  assert labels.dtype == np.int32
  counts = np.bincount(labels, minlength=8)
  np.testing.assert_allclose(counts / 20000, 1 / 8, atol=0.015)
  centers = data.mode_centers(8, 2.0)
  for k in range(8):
    points = x[labels == k]
    np.testing.assert_allclose(points.mean(0), centers[k], atol=0.02)
    np.testing.assert_allclose(points.std(0), 0.2, rtol=0.08)
  # Every point is nearest to its own mode's centre.
  nearest = np.argmin(
      np.linalg.norm(x[:, None] - centers[None], axis=-1), axis=1)
  assert np.mean(nearest == labels) > 0.999


def test_infinite_source_deterministic_per_step_and_shard():
  a = data.build_source(_config(), seed=4)
  b = data.build_source(_config(), seed=4)
  np.testing.assert_array_equal(a.sample(9, 32)["x"], b.sample(9, 32)["x"])
  np.testing.assert_array_equal(
      a.sample(9, 32, shard_index=1, num_shards=2)["x"],
      b.sample(9, 32, shard_index=1, num_shards=2)["x"])
  assert not np.array_equal(a.sample(9, 32)["x"], a.sample(10, 32)["x"])
  assert not np.array_equal(
      a.sample(9, 32, shard_index=0, num_shards=2)["x"],
      a.sample(9, 32, shard_index=1, num_shards=2)["x"])
  expected = np.random.default_rng([4, 9, 1])
  labels = expected.integers(8, size=16)
  np.testing.assert_array_equal(
      a.sample(9, 32, shard_index=1, num_shards=2)["label"], labels)
  with pytest.raises(ValueError, match="divisible"):
    a.sample(0, 31, num_shards=2)


def test_finite_source_is_fixed_dataset():
  source = data.build_source(_config(num_examples=100), seed=0)
  assert source.info.num_examples == 100
  assert isinstance(source, data.ArraySource)
  epoch = source.sample(0, 100)["x"]
  other_seed = data.build_source(_config(num_examples=100), seed=1)
  # The same points, visited in a different order.
  np.testing.assert_array_equal(
      np.sort(epoch, axis=0), np.sort(other_seed.sample(0, 100)["x"], axis=0))
  assert not np.array_equal(epoch, other_seed.sample(0, 100)["x"])
  np.testing.assert_array_equal(
      np.concatenate([source.sample(0, 100, shard_index=k, num_shards=4)["x"]
                      for k in range(4)]), epoch)


def test_negative_num_examples_rejected():
  with pytest.raises(ValueError, match="num_examples"):
    data.build_source(_config(num_examples=-1), seed=0)

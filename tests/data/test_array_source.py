"""Tests of the deterministic epoch stream of finite data sets."""

import ml_collections
import numpy as np
import pytest

from otgan_jax import data


def _digits_config():
  return ml_collections.ConfigDict({
      "name": "digits", "source": "embedded", "data_dir": "", "split": "train",
      "gaussians": {"num_modes": 8, "radius": 2.0, "std": 0.2,
                    "num_examples": 0}})


def _toy_source(n=10, seed=3):
  info = data.DatasetInfo("toy", (1,), 0.0, 255.0, n, None)
  x = np.arange(n, dtype=np.uint8)[:, None]
  return data.ArraySource(info, x, np.arange(n), seed=seed)


@pytest.fixture(scope="module")
def digits():
  return data.build_source(_digits_config(), seed=0)


def test_digits_read_from_the_wheel_equal_sklearn_s_loader(monkeypatch):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from otgan_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  reference = datasets.load_digits()
  # The fast path is taken (else scikit-learn moved or changed its file).
  assert synthetic._digits_table() is not None, (
      "sklearn/datasets/data/digits.csv.gz not found as expected")
  # Both the direct read and the fallback (a moved file) give sklearn's data.
  for table in (synthetic._digits_table, lambda: None):
    monkeypatch.setattr(synthetic, "_digits_table", table)
    images, labels = synthetic.load_digits()
    np.testing.assert_array_equal(images[..., 0], reference.images)
    np.testing.assert_array_equal(labels, reference.target)
    assert images.dtype == np.uint8 and labels.dtype == np.int32


def test_digits_shape_range_count(digits):
  assert digits.info == data.DatasetInfo(
      "digits", (8, 8, 1), 0.0, 16.0, 1797, 10)
  assert digits.info.is_image
  batch = digits.sample(0, 1797)
  assert batch["x"].shape == (1797, 8, 8, 1)
  assert batch["x"].dtype == np.uint8
  assert batch["label"].dtype == np.int32
  assert batch["x"].min() == 0 and batch["x"].max() == 16
  assert set(np.unique(batch["label"])) == set(range(10))
  normalized = data.normalize(batch["x"], digits.info)
  assert normalized.min() == -1.0 and normalized.max() == 1.0


def test_same_step_same_batch_across_builds(digits):
  other = data.build_source(_digits_config(), seed=0)
  for step in (0, 1, 7, 1000):
    a, b = digits.sample(step, 64), other.sample(step, 64)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["label"], b["label"])
  # Order of calls does not matter (resume from the middle).
  np.testing.assert_array_equal(other.sample(3, 64)["x"],
                                data.build_source(_digits_config(), seed=0)
                                .sample(3, 64)["x"])


def test_different_seeds_and_steps_differ(digits):
  other = data.build_source(_digits_config(), seed=1)
  assert not np.array_equal(digits.sample(0, 64)["x"], other.sample(0, 64)["x"])
  assert not np.array_equal(digits.sample(0, 64)["x"],
                            digits.sample(1, 64)["x"])


@pytest.mark.parametrize("num_shards", [1, 2, 4, 8])
def test_shards_concatenate_to_global_batch(digits, num_shards):
  step, num = 5, 64
  full = digits.sample(step, num)
  parts = [digits.sample(step, num, shard_index=k, num_shards=num_shards)
           for k in range(num_shards)]
  assert all(p["x"].shape == (num // num_shards, 8, 8, 1) for p in parts)
  for key in ("x", "label"):
    np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]),
                                  full[key])


def test_epoch_covers_every_example_once():
  source = _toy_source(n=10)
  # Batch size 4 does not divide 10: batches straddle epoch boundaries.
  stream = np.concatenate([source.sample(s, 4)["x"][:, 0] for s in range(10)])
  for epoch in range(4):
    np.testing.assert_array_equal(np.sort(stream[epoch * 10:epoch * 10 + 10]),
                                  np.arange(10))
  # Epochs are shuffled differently.
  assert not np.array_equal(stream[:10], stream[10:20])
  # The stream is the concatenation of the documented permutations.
  expected = np.concatenate(
      [np.random.default_rng([3, e]).permutation(10) for e in range(4)])
  np.testing.assert_array_equal(stream, expected)


def test_digits_epoch_coverage(digits):
  stream = np.concatenate(
      [digits.stream_indices(s * 100, 100) for s in range(18)])[:1797]
  np.testing.assert_array_equal(np.sort(stream), np.arange(1797))


def test_batch_larger_than_dataset():
  source = _toy_source(n=10)
  batch = source.sample(1, 25, shard_index=1, num_shards=5)
  assert batch["x"].shape == (5, 1)
  # Global batch 1 is stream positions 25..49, spanning epochs 2..4.
  full = source.sample(1, 25)["x"][:, 0]
  np.testing.assert_array_equal(np.sort(full[5:15]), np.arange(10))
  np.testing.assert_array_equal(batch["x"][:, 0], full[5:10])


def test_labels_follow_examples():
  source = _toy_source(n=10)
  batch = source.sample(2, 6)
  np.testing.assert_array_equal(batch["label"], batch["x"][:, 0])


def test_permutation_cache_is_bounded():
  source = _toy_source(n=10)
  for step in range(50):
    source.sample(step, 7)
  assert len(source._perms) <= 2  # pylint: disable=protected-access


def test_large_step_numbers_are_exact():
  source = _toy_source(n=10)
  step = 2**40
  np.testing.assert_array_equal(
      source.sample(np.int32(7), 4)["x"], source.sample(7, 4)["x"])
  batch = source.sample(step, 4)["x"][:, 0]
  start = step * 4
  expected = [np.random.default_rng([3, p // 10]).permutation(10)[p % 10]
              for p in range(start, start + 4)]
  np.testing.assert_array_equal(batch, expected)


@pytest.mark.parametrize("kwargs, match", [
    ({"step": 0, "num": 10, "num_shards": 3}, "divisible"),
    ({"step": -1, "num": 4}, "step"),
    ({"step": 0, "num": 0}, "num"),
    ({"step": 0, "num": 4, "shard_index": 2, "num_shards": 2}, "shard_index"),
])
def test_invalid_sample_arguments(kwargs, match):
  source = _toy_source()
  step, num = kwargs.pop("step"), kwargs.pop("num")
  with pytest.raises(ValueError, match=match):
    source.sample(step, num, **kwargs)


def test_array_source_validates_inputs():
  info = data.DatasetInfo("toy", (1,), 0.0, 255.0, 3, None)
  with pytest.raises(ValueError, match="labels"):
    data.ArraySource(info, np.zeros((3, 1), np.uint8), np.zeros(2), seed=0)
  with pytest.raises(ValueError, match="shape"):
    data.ArraySource(info, np.zeros((3, 2), np.uint8), np.zeros(3), seed=0)
  with pytest.raises(ValueError, match="seed"):
    data.ArraySource(info, np.zeros((3, 1), np.uint8), np.zeros(3), seed=-1)

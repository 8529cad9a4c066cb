"""Tests of the TFDS path with mocked data (no download)."""

import ml_collections
import numpy as np
import pytest

from otgan_jax import data


@pytest.fixture(name="tfds")
def _tfds():
  # Imported here, not at collection time: TensorFlow is slow to import.
  pytest.importorskip("tensorflow")
  return pytest.importorskip("tensorflow_datasets")


def _config(name, split="train"):
  return ml_collections.ConfigDict({
      "name": name, "source": "tfds", "data_dir": "", "split": split,
      "gaussians": {"num_modes": 8, "radius": 2.0, "std": 0.2,
                    "num_examples": 0}})


@pytest.mark.parametrize("name, shape, split", [
    ("mnist", (28, 28, 1), "train"),
    ("cifar10", (32, 32, 3), "test"),
])
def test_tfds_mock(tfds, name, shape, split):
  with tfds.testing.mock_data(num_examples=8):
    source = data.build_source(_config(name, split), seed=0)
  assert source.info == data.DatasetInfo(name, shape, 0.0, 255.0, 8, 10)
  batch = source.sample(0, 8, shard_index=1, num_shards=2)
  assert batch["x"].shape == (4,) + shape and batch["x"].dtype == np.uint8
  assert batch["label"].dtype == np.int32
  assert ((batch["label"] >= 0) & (batch["label"] < 10)).all()
  # Two epochs of the 8 mocked examples still cover each one once.
  stream = np.concatenate([source.stream_indices(0, 8),
                           source.stream_indices(8, 8)])
  np.testing.assert_array_equal(np.sort(stream[:8]), np.arange(8))
  np.testing.assert_array_equal(np.sort(stream[8:]), np.arange(8))

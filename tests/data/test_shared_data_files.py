"""Checks of the readers on the real official files, when they are present.

The folder comes from $OTGAN_SHARED_DATA (default: ../shared/data next to the
repository); the tests skip when it is absent.
"""

import ml_collections
import numpy as np
import pytest

from otgan_jax import data

_MNIST_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                       5949]


def _source(name, data_dir, split="train"):
  if not data_dir.is_dir():
    pytest.skip(f"{data_dir} not present")
  config = ml_collections.ConfigDict({
      "name": name, "source": "files", "data_dir": str(data_dir),
      "split": split,
      "gaussians": {"num_modes": 8, "radius": 2.0, "std": 0.2,
                    "num_examples": 0}})
  return data.build_source(config, seed=0)


def _all_examples(source):
  n = source.info.num_examples
  batch = source.sample(0, n)
  order = np.argsort(source.stream_indices(0, n))
  return batch["x"][order], batch["label"][order]


def test_mnist_train(shared_data_dir):
  source = _source("mnist", shared_data_dir / "mnist")
  assert source.info.num_examples == 60000
  assert source.info.shape == (28, 28, 1)
  x, labels = _all_examples(source)
  np.testing.assert_array_equal(np.bincount(labels), _MNIST_LABEL_COUNTS)
  assert abs(x.mean() - 33.32) < 0.01


def test_mnist_test_split(shared_data_dir):
  source = _source("mnist", shared_data_dir / "mnist", "test")
  assert source.info.num_examples == 10000


def test_fashion_mnist_train(shared_data_dir):
  # data_dir may also be the parent folder holding fashion_mnist/.
  source = _source("fashion_mnist", shared_data_dir)
  assert source.info.num_examples == 60000
  x, labels = _all_examples(source)
  np.testing.assert_array_equal(np.bincount(labels), [6000] * 10)
  assert abs(x.mean() - 72.94) < 0.01


def test_cifar10_train(shared_data_dir):
  source = _source("cifar10", shared_data_dir / "cifar10")
  assert source.info.num_examples == 50000
  assert source.info.shape == (32, 32, 3)
  x, labels = _all_examples(source)
  np.testing.assert_array_equal(np.bincount(labels), [5000] * 10)
  means = x.reshape(-1, 3).mean(axis=0, dtype=np.float64)
  np.testing.assert_allclose(means, [125.31, 122.95, 113.87], atol=0.01)


def test_cifar10_test_first1000(shared_data_dir):
  folder = shared_data_dir / "cifar10" / "cifar-10-batches-bin"
  source = _source("cifar10", folder, "test")
  expected = 10000 if (folder / "test_batch.bin").is_file() else 1000
  assert source.info.num_examples == expected

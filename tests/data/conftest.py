"""Data test fixtures: tiny files in the official formats."""

import gzip
import pathlib

import numpy as np
import pytest


def write_idx(path: pathlib.Path, array: np.ndarray, *, compress=True) -> None:
  """Writes a uint8 array as an IDX file (gzip-compressed by default)."""
  array = np.asarray(array, dtype=np.uint8)
  header = bytes([0, 0, 0x08, array.ndim])
  header += np.asarray(array.shape, dtype=">u4").tobytes()
  payload = header + array.tobytes()
  if compress:
    payload = gzip.compress(payload)
  path.write_bytes(payload)


def write_cifar_batch(path: pathlib.Path, images: np.ndarray,
                      labels: np.ndarray) -> None:
  """Writes HWC uint8 images as CIFAR-10 binary records (label, R, G, B)."""
  planes = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(
      len(images), -1)
  records = np.concatenate(
      [np.asarray(labels, np.uint8)[:, None], planes], axis=1)
  path.write_bytes(records.tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
  """A folder with tiny MNIST-format train and test files; returns arrays."""
  rng = np.random.default_rng(0)
  arrays = {}
  for prefix, n in (("train", 12), ("t10k", 5)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    arrays[prefix] = (images, labels)
  return tmp_path, arrays


@pytest.fixture
def tiny_cifar(tmp_path):
  """A `cifar-10-batches-bin` folder with tiny batches; returns arrays."""
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  rng = np.random.default_rng(1)
  train = []
  for i in range(1, 6):
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=3)
    write_cifar_batch(folder / f"data_batch_{i}.bin", images, labels)
    train.append((images, labels))
  test_images = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
  test_labels = rng.integers(0, 10, size=4)
  write_cifar_batch(folder / "test_batch_first1000.bin", test_images,
                    test_labels)
  train_images = np.concatenate([t[0] for t in train])
  train_labels = np.concatenate([t[1] for t in train])
  return folder, {"train": (train_images, train_labels),
                  "test": (test_images, test_labels)}


@pytest.fixture
def idx_writer():
  """The IDX writer, for tests that build their own files."""
  return write_idx


@pytest.fixture
def cifar_writer():
  """The CIFAR-10 batch writer, for tests that build their own files."""
  return write_cifar_batch

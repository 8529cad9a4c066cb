"""Tests of the IDX and CIFAR-10 readers on tiny files in official formats."""

import gzip

import ml_collections
import numpy as np
import pytest

from otgan_jax import data
from otgan_jax.data import readers


def _config(name, data_dir, split="train"):
  return ml_collections.ConfigDict({
      "name": name, "source": "files", "data_dir": str(data_dir),
      "split": split,
      "gaussians": {"num_modes": 8, "radius": 2.0, "std": 0.2,
                    "num_examples": 0}})


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("split, prefix", [("train", "train"),
                                           ("test", "t10k")])
def test_idx_dataset(tiny_mnist, name, split, prefix):
  folder, arrays = tiny_mnist
  images, labels = arrays[prefix]
  source = data.build_source(_config(name, folder, split), seed=0)
  n = len(images)
  assert source.info == data.DatasetInfo(name, (28, 28, 1), 0.0, 255.0, n, 10)
  stream = source.stream_indices(0, n)
  batch = source.sample(0, n)
  assert batch["x"].dtype == np.uint8 and batch["label"].dtype == np.int32
  np.testing.assert_array_equal(batch["x"][..., 0], images[stream])
  np.testing.assert_array_equal(batch["label"], labels[stream])


def test_idx_found_in_named_subfolder(tiny_mnist, tmp_path_factory):
  folder, arrays = tiny_mnist
  parent = tmp_path_factory.mktemp("parent")
  (parent / "mnist").symlink_to(folder, target_is_directory=True)
  images, _ = readers.load_idx_dataset(str(parent), "mnist", "train")
  np.testing.assert_array_equal(images[..., 0], arrays["train"][0])


def test_read_idx_uncompressed(tmp_path, idx_writer):
  array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  idx_writer(tmp_path / "a", array, compress=False)
  np.testing.assert_array_equal(readers.read_idx(str(tmp_path / "a")), array)


def test_idx_wrong_magic(tmp_path):
  path = tmp_path / "train-images-idx3-ubyte.gz"
  path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + bytes(16)))
  with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*magic"):
    readers.read_idx(str(path))


def test_idx_truncated_data(tmp_path, idx_writer):
  path = tmp_path / "x.gz"
  idx_writer(path, np.zeros((4, 28, 28), np.uint8), compress=False)
  path.write_bytes(gzip.compress(path.read_bytes()[:-10]))
  with pytest.raises(ValueError, match="x.gz.*truncated"):
    readers.read_idx(str(path))


def test_idx_truncated_gzip(tiny_mnist):
  folder, _ = tiny_mnist
  path = folder / "train-images-idx3-ubyte.gz"
  path.write_bytes(path.read_bytes()[:100])
  with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
    data.build_source(_config("mnist", folder), seed=0)


def test_idx_count_mismatch(tiny_mnist, idx_writer):
  folder, _ = tiny_mnist
  idx_writer(folder / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
  with pytest.raises(ValueError, match="12 images.*3 labels"):
    data.build_source(_config("mnist", folder), seed=0)


@pytest.mark.parametrize("use_parent", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10(tiny_cifar, use_parent, split):
  folder, arrays = tiny_cifar
  data_dir = folder.parent if use_parent else folder
  source = data.build_source(_config("cifar10", data_dir, split), seed=0)
  images, labels = arrays[split]
  n = len(images)
  assert source.info == data.DatasetInfo("cifar10", (32, 32, 3), 0.0, 255.0,
                                         n, 10)
  stream = source.stream_indices(0, n)
  batch = source.sample(0, n)
  np.testing.assert_array_equal(batch["x"], images[stream])
  np.testing.assert_array_equal(batch["label"], labels[stream])


def test_cifar10_record_layout(tmp_path):
  # One record: label 7, then R plane all 1, G plane all 2, B plane all 3,
  # except pixel (row 0, col 1) whose red value is 200.
  planes = np.stack([np.full((32, 32), c, np.uint8) for c in (1, 2, 3)])
  planes[0, 0, 1] = 200
  (tmp_path / "b.bin").write_bytes(bytes([7]) + planes.tobytes())
  images, labels = readers.read_cifar10_batch(str(tmp_path / "b.bin"))
  assert images.shape == (1, 32, 32, 3) and labels.tolist() == [7]
  np.testing.assert_array_equal(images[0, 5, 5], [1, 2, 3])
  np.testing.assert_array_equal(images[0, 0, 1], [200, 2, 3])


def test_cifar10_full_test_batch_preferred(tiny_cifar, cifar_writer):
  folder, arrays = tiny_cifar
  images = arrays["train"][0][:2]
  cifar_writer(folder / "test_batch.bin", images, np.array([1, 2]))
  loaded, labels = readers.load_cifar10(str(folder), "test")
  np.testing.assert_array_equal(loaded, images)
  assert labels.tolist() == [1, 2]


def test_cifar10_truncated(tiny_cifar):
  folder, _ = tiny_cifar
  path = folder / "data_batch_3.bin"
  path.write_bytes(path.read_bytes()[:-1])
  with pytest.raises(ValueError, match="data_batch_3.bin.*3073"):
    data.build_source(_config("cifar10", folder), seed=0)


def test_missing_mnist_files_message(tmp_path):
  with pytest.raises(data.DataError) as info:
    data.build_source(_config("mnist", tmp_path), seed=0)
  message = str(info.value)
  assert isinstance(info.value, FileNotFoundError)
  for part in (str(tmp_path), "train-images-idx3-ubyte.gz",
               "train-labels-idx1-ubyte.gz", "--config.data.data_dir",
               "--config.data.source=tfds"):
    assert part in message
  with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz"):
    data.build_source(_config("fashion_mnist", tmp_path, "test"), seed=0)


def test_missing_cifar_files_message(tiny_mnist):
  folder, _ = tiny_mnist  # A folder with the wrong data set in it.
  with pytest.raises(data.DataError) as info:
    data.build_source(_config("cifar10", folder), seed=0)
  message = str(info.value)
  for part in (str(folder), "data_batch_1.bin", "data_batch_5.bin",
               "--config.data.data_dir"):
    assert part in message
  with pytest.raises(data.DataError, match="test_batch.bin"):
    data.build_source(_config("cifar10", folder, "test"), seed=0)


def test_nonexistent_folder_message(tmp_path):
  missing = tmp_path / "nope"
  with pytest.raises(data.DataError, match="nope.*does not exist"):
    data.build_source(_config("mnist", missing), seed=0)


def test_empty_data_dir_message():
  with pytest.raises(data.DataError, match="data_dir is empty"):
    data.build_source(_config("cifar10", ""), seed=0)

"""Loaders of whole image data sets: the official files, or TFDS.

MNIST and Fashion-MNIST come as gzip-compressed IDX files; CIFAR-10 as the
"binary version" (`cifar-10-binary.tar.gz`, extracted), whose records are one
label byte followed by 3072 pixel bytes (the R, G and B planes, each 32x32,
row-major). All loaders return whole data sets as numpy arrays in memory.

TFDS and TensorFlow are imported lazily, only when `load_tfds` is used: the
import is slow, and TensorFlow is an optional dependency. TensorFlow is kept
off the GPUs so that it does not take accelerator memory away from JAX.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from otgan_jax.data import base

IDX_DATASETS = ("mnist", "fashion_mnist")
TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10")
_TFDS_CHUNK = 10_000
_IDX_UBYTE = 0x08
_CIFAR_RECORD_BYTES = 1 + 32 * 32 * 3
_CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST_FILES = ("test_batch.bin", "test_batch_first1000.bin")
_CIFAR_SUBDIR = "cifar-10-batches-bin"
_NUM_CLASSES = 10
_WHAT_TO_DO = ("Pass --config.data.data_dir=DIR pointing at the folder with "
               "the official files, or use --config.data.source=tfds.")


def _missing_files_error(
    name: str, split: str, folders: list[str],
    expected: tuple[str, ...] | list[str]) -> base.DataError:
  where = " or ".join(repr(f) for f in folders)
  return base.DataError(
      f"Cannot find the {name} {split!r} files in {where}: expected "
      f"{', '.join(expected)}. {_WHAT_TO_DO}")


def _check_data_dir(data_dir: str, name: str) -> str:
  if not data_dir:
    raise base.DataError(
        f"data.data_dir is empty, but data.source='files' needs the folder "
        f"with the official {name} files. Set --config.data.data_dir=DIR, or "
        "use --config.data.source=tfds.")
  data_dir = os.path.expanduser(data_dir)
  if not os.path.isdir(data_dir):
    raise base.DataError(
        f"The data folder {data_dir!r} for {name} does not exist or is not a "
        f"folder. {_WHAT_TO_DO}")
  return data_dir


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file of unsigned bytes (gzip-compressed or not).

  Args:
    path: File name; gzip compression is detected from the content.

  Returns:
    uint8 array whose shape is given by the file header, e.g. [N, 28, 28] for
    images or [N] for labels.

  Raises:
    ValueError: If the file is corrupt, truncated or not a ubyte IDX file.
  """
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError(
          f"{path}: corrupt or truncated gzip file ({e}); download it again."
      ) from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
    raise ValueError(
        f"{path}: not an IDX file of unsigned bytes (magic number "
        f"{raw[:4].hex() or 'missing'}, expected 0000080N).")
  ndim = raw[3]
  header_bytes = 4 + 4 * ndim
  if ndim == 0 or len(raw) < header_bytes:
    raise ValueError(f"{path}: truncated or invalid IDX header.")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  expected = int(np.prod(shape))
  if len(raw) - header_bytes != expected:
    raise ValueError(
        f"{path}: IDX header announces shape {shape} ({expected} bytes of "
        f"data) but the file holds {len(raw) - header_bytes}; the file is "
        "truncated or corrupt.")
  return np.frombuffer(raw, np.uint8, expected, offset=header_bytes).reshape(
      shape)


def _find_idx_file(folder: str, stem: str) -> str | None:
  for file_name in (stem + ".gz", stem):
    path = os.path.join(folder, file_name)
    if os.path.isfile(path):
      return path
  return None


def load_idx_dataset(data_dir: str, name: str,
                     split: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads MNIST or Fashion-MNIST from the official IDX files.

  Looks in `data_dir` and then in `data_dir/<name>` for
  `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz` (split
  'train') or `t10k-*` (split 'test'); uncompressed copies without `.gz` are
  accepted too.

  Args:
    data_dir: Folder with the official files.
    name: 'mnist' or 'fashion_mnist' (only used in messages and for the
      subfolder).
    split: 'train' or 'test'.

  Returns:
    (images uint8 [N, 28, 28, 1], labels int32 [N]).

  Raises:
    DataError: If the folder or the files are missing.
    ValueError: If a file is corrupt or images and labels do not match.
  """
  data_dir = _check_data_dir(data_dir, name)
  prefix = "train" if split == "train" else "t10k"
  stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
  folders = [data_dir, os.path.join(data_dir, name)]
  for folder in folders:
    paths = [_find_idx_file(folder, stem) for stem in stems]
    if all(paths):
      break
  else:
    raise _missing_files_error(name, split, folders, [s + ".gz" for s in stems])
  images, labels = read_idx(paths[0]), read_idx(paths[1])
  if images.ndim != 3:
    raise ValueError(f"{paths[0]}: expected a 3-D image array, got shape "
                     f"{images.shape}.")
  if labels.ndim != 1:
    raise ValueError(f"{paths[1]}: expected a 1-D label array, got shape "
                     f"{labels.shape}.")
  if len(images) != len(labels) or not len(images):
    raise ValueError(
        f"{paths[0]} holds {len(images)} images but {paths[1]} holds "
        f"{len(labels)} labels.")
  if labels.max() >= _NUM_CLASSES:
    raise ValueError(f"{paths[1]}: label {labels.max()} out of range.")
  return images[..., None], labels.astype(np.int32)


def read_cifar10_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one CIFAR-10 binary batch file.

  Args:
    path: A file such as `data_batch_1.bin`.

  Returns:
    (images uint8 [N, 32, 32, 3] HWC, labels int32 [N]).

  Raises:
    ValueError: If the file size is not a positive multiple of 3073 bytes or a
      label is out of range.
  """
  raw = np.fromfile(path, dtype=np.uint8)
  if raw.size == 0 or raw.size % _CIFAR_RECORD_BYTES:
    raise ValueError(
        f"{path}: size {raw.size} bytes is not a positive multiple of the "
        f"CIFAR-10 record size {_CIFAR_RECORD_BYTES}; the file is truncated "
        "or not a CIFAR-10 binary batch.")
  records = raw.reshape(-1, _CIFAR_RECORD_BYTES)
  labels = records[:, 0].astype(np.int32)
  if labels.max() >= _NUM_CLASSES:
    raise ValueError(f"{path}: label {labels.max()} out of range; the file is "
                     "not a CIFAR-10 binary batch.")
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels


def _cifar10_files(folder: str, split: str) -> list[str] | None:
  if split == "train":
    paths = [os.path.join(folder, f) for f in _CIFAR_TRAIN_FILES]
    return paths if all(os.path.isfile(p) for p in paths) else None
  for file_name in _CIFAR_TEST_FILES:
    path = os.path.join(folder, file_name)
    if os.path.isfile(path):
      return [path]
  return None


def load_cifar10(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads CIFAR-10 from the extracted official binary version.

  `data_dir` may be the `cifar-10-batches-bin` folder itself, its parent, or
  a folder holding `cifar10/cifar-10-batches-bin`.
  Split 'train' reads `data_batch_1.bin` ... `data_batch_5.bin`; split 'test'
  reads `test_batch.bin`, or `test_batch_first1000.bin` if only that exists.

  Args:
    data_dir: Folder with the files, or its parent.
    split: 'train' or 'test'.

  Returns:
    (images uint8 [N, 32, 32, 3] HWC, labels int32 [N]).

  Raises:
    DataError: If the folder or the files are missing.
    ValueError: If a file is corrupt.
  """
  data_dir = _check_data_dir(data_dir, "cifar10")
  folders = [data_dir, os.path.join(data_dir, _CIFAR_SUBDIR),
             os.path.join(data_dir, "cifar10", _CIFAR_SUBDIR)]
  for folder in folders:
    paths = _cifar10_files(folder, split)
    if paths:
      break
  else:
    expected = (_CIFAR_TRAIN_FILES if split == "train" else
                [f"{_CIFAR_TEST_FILES[0]} (or {_CIFAR_TEST_FILES[1]})"])
    raise _missing_files_error("cifar10", split, folders, expected)
  batches = [read_cifar10_batch(p) for p in paths]
  if len(batches) == 1:
    return batches[0]
  return (np.concatenate([b[0] for b in batches]),
          np.concatenate([b[1] for b in batches]))


def _hide_gpus_from_tensorflow() -> None:
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "data.source='tfds' needs TensorFlow: pip install 'otgan_jax[tfds]', "
        "or use --config.data.source=files with the official files.") from e

  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:
    # TensorFlow was already initialized by someone else; its device setup
    # can no longer change.
    pass


def load_tfds(name: str, split: str,
              data_dir: str = "") -> tuple[np.ndarray, np.ndarray]:
  """Reads a whole TFDS split into memory.

  Args:
    name: TFDS name, one of TFDS_DATASETS.
    split: TFDS split, e.g. 'train' or 'test'.
    data_dir: TFDS data folder; '' means the TFDS default (~/tensorflow_datasets
      or $TFDS_DATA_DIR).

  Returns:
    (images uint8 [N, H, W, C], labels int32 [N]).

  Raises:
    ValueError: If `name` is not supported or the split is empty.
  """
  if name not in TFDS_DATASETS:
    raise ValueError(f"Unsupported TFDS data set {name!r}; valid names: "
                     f"{', '.join(TFDS_DATASETS)}.")
  _hide_gpus_from_tensorflow()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  ds = tfds.load(name, split=split, data_dir=data_dir or None,
                 shuffle_files=False)
  # Read in fixed-size chunks rather than with batch_size=-1: the latter
  # batches by the recorded split size, which is unknown for mocked data.
  images, labels = [], []
  for batch in tfds.as_numpy(ds.batch(_TFDS_CHUNK)):
    images.append(np.asarray(batch["image"], dtype=np.uint8))
    labels.append(np.asarray(batch["label"], dtype=np.int32))
  if not images:
    raise ValueError(f"TFDS split {name}/{split} is empty.")
  return np.concatenate(images), np.concatenate(labels)

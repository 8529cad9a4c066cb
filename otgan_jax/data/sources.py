"""Deterministic training-batch sources and their construction from a config.

A finite data set is served as an endless stream: the concatenation of one
random permutation of the data per epoch, the permutation of epoch e drawn
from `np.random.default_rng([seed, e])`. The global batch of `num` examples at
step s is stream positions [s * num, (s + 1) * num), and shard k of n takes the
k-th contiguous part of it. Batches therefore depend only on (seed, step), which
makes resumed runs bit-exact, and each epoch visits every example once.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import numpy as np

from otgan_jax.data import base
from otgan_jax.data import readers
from otgan_jax.data import synthetic

Source = base.Source

# Valid `data.source` values for each `data.name`.
VALID_SOURCES = {
    "digits": ("embedded",),
    "gaussians": ("embedded",),
    synthetic.BALL_NAME: ("embedded",),
    "mnist": ("files", "tfds"),
    "fashion_mnist": ("files", "tfds"),
    "cifar10": ("files", "tfds"),
}
VALID_SPLITS = ("train", "test")
_IMAGE_RANGE = (0.0, 255.0)
# Epoch permutations kept per source: enough for a batch that straddles an
# epoch boundary.
_CACHED_EPOCHS = 2


class ArraySource:
  """Serves an in-memory data set as a deterministic stream of epochs.

  Attributes:
    info: Description of the data.
  """

  def __init__(self, info: base.DatasetInfo, x: np.ndarray, labels: np.ndarray,
               *, seed: int):
    """Initializes the source.

    Args:
      info: Description of the data; `info.shape` must match `x`.
      x: All examples, [N, *info.shape], raw dtype.
      labels: Integer labels, [N].
      seed: Non-negative seed of the epoch permutations.
    """
    if seed < 0:
      raise ValueError(f"seed must be >= 0, got {seed}.")
    if not len(x):
      raise ValueError(f"Data set {info.name!r} is empty.")
    if len(x) != len(labels):
      raise ValueError(f"Data set {info.name!r}: {len(x)} examples but "
                       f"{len(labels)} labels.")
    if tuple(x.shape[1:]) != tuple(info.shape):
      raise ValueError(f"Data set {info.name!r}: examples of shape "
                       f"{x.shape[1:]}, but info.shape is {info.shape}.")
    self.info = info
    self._x = x
    self._labels = np.asarray(labels, dtype=np.int32)
    self._seed = seed
    self._perms: collections.OrderedDict[int, np.ndarray] = (
        collections.OrderedDict())
    self._lock = threading.Lock()

  @property
  def num_examples(self) -> int:
    """Number of examples in one epoch."""
    return len(self._x)

  def epoch_permutation(self, epoch: int) -> np.ndarray:
    """Order in which epoch `epoch` visits the examples, int64 [N]."""
    with self._lock:
      perm = self._perms.get(epoch)
      if perm is None:
        perm = np.random.default_rng([self._seed, epoch]).permutation(
            self.num_examples)
        self._perms[epoch] = perm
        while len(self._perms) > _CACHED_EPOCHS:
          self._perms.popitem(last=False)
      return perm

  def stream_indices(self, start: int, count: int) -> np.ndarray:
    """Example indices at stream positions [start, start + count), int64."""
    size = self.num_examples
    epoch, offset = divmod(start, size)
    pieces = []
    while count > 0:
      take = min(size - offset, count)
      pieces.append(self.epoch_permutation(epoch)[offset:offset + take])
      count -= take
      epoch, offset = epoch + 1, 0
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

  def sample(self, step: int, num: int, *, shard_index: int = 0,
             num_shards: int = 1) -> dict[str, np.ndarray]:
    """See `base.Source.sample`."""
    step, num = int(step), int(num)  # Python ints: no overflow.
    shard_index, num_shards = int(shard_index), int(num_shards)
    size = base.shard_size(step, num, shard_index, num_shards)
    indices = self.stream_indices(step * num + shard_index * size, size)
    return {"x": self._x[indices], "label": self._labels[indices]}


def _get(config: Any, key: str, default: Any) -> Any:
  value = config.get(key, default) if hasattr(config, "get") else default
  return default if value is None else value


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
  if value not in valid:
    raise ValueError(f"Unknown {what} {value!r}; valid values: "
                     f"{', '.join(repr(v) for v in valid)}.")


def _load_image_arrays(name: str, source: str, data_dir: str,
                       split: str) -> tuple[np.ndarray, np.ndarray]:
  if source == "tfds":
    return readers.load_tfds(name, split, data_dir)
  if name == "cifar10":
    return readers.load_cifar10(data_dir, split)
  return readers.load_idx_dataset(data_dir, name, split)


def _build_gaussians(config: Any, seed: int) -> base.Source:
  gauss = _get(config, "gaussians", {})
  num_modes = int(_get(gauss, "num_modes", 8))
  radius = float(_get(gauss, "radius", 2.0))
  std = float(_get(gauss, "std", 0.2))
  num_examples = int(_get(gauss, "num_examples", 0))
  if num_examples < 0:
    raise ValueError(
        f"data.gaussians.num_examples must be >= 0 (0 = infinite), got "
        f"{num_examples}.")
  if not num_examples:
    return synthetic.GaussianMixtureSource(num_modes, radius, std, seed=seed)
  x, labels = synthetic.make_gaussians_dataset(num_examples, num_modes, radius,
                                               std)
  return ArraySource(synthetic.gaussians_info(num_modes, num_examples), x,
                     labels, seed=seed)


def digits_split(holdout: int, split: str) -> tuple[np.ndarray, np.ndarray]:
  """The digits of `split`: the last `holdout` are the test split.

  The 1,797 digits come in a fixed order, so the split is the same on every
  machine; with `holdout = 0` (the default) "train" is all of them and there
  is no test split.
  """
  x, labels = synthetic.load_digits()
  if not 0 <= holdout < len(x):
    raise ValueError(f"data.holdout must be in [0, {len(x)}), got {holdout}.")
  if split == "test":
    if not holdout:
      raise ValueError("The digits have no test split unless some are held "
                       "out: set --config.data.holdout (e.g. 297).")
    return x[-holdout:], labels[-holdout:]
  keep = len(x) - holdout
  return x[:keep], labels[:keep]


def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
  """`[out, in]` weights of PIL's bilinear filter along one axis.

  Half-pixel centres; the triangle kernel is stretched by the scale when
  shrinking (anti-aliased, as PIL) and the weights are renormalised at the
  borders, which for enlarging equals clamping to the edge pixel.
  """
  scale = in_size / out_size
  support = max(scale, 1.0)
  centers = (np.arange(out_size) + 0.5) * scale
  src = np.arange(in_size) + 0.5
  w = np.maximum(0.0, 1.0 - np.abs(src[None, :] - centers[:, None]) / support)
  return w / w.sum(axis=1, keepdims=True)


def resize_bilinear(images: np.ndarray, height: int, width: int
                    ) -> np.ndarray:
  """uint8 images `[n, h, w, c]` resized bilinearly to `[n, height, width, c]`.

  What paper 004's code did with `scipy.misc.imresize(image, (32, 32))`
  (PIL's bilinear resize of a uint8 image): separable half-pixel bilinear
  interpolation, rounded back to uint8. Computed in float64; PIL's 8-bit
  fixed point may differ by one grey level on a few pixels.
  """
  if images.ndim != 4:
    raise ValueError(f"resize needs [n, h, w, c] images, got {images.shape}.")
  rows = _bilinear_matrix(height, images.shape[1])
  cols = _bilinear_matrix(width, images.shape[2])
  out = np.einsum("ph,nhwc,qw->npqc", rows, images.astype(np.float64), cols,
                  optimize=True)
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def build_source(data_config: Any, *, seed: int) -> base.Source:
  """Builds the training-batch source described by `data_config`.

  Args:
    data_config: ConfigDict (or mapping) with keys `name` ('digits' |
      'gaussians' | 'gaussian_ball_3d' | 'mnist' | 'fashion_mnist' |
      'cifar10'), `holdout` (digits: the last `holdout` form the test
      split and are left out of the train split), `num_examples` (image
      files: only the first N of the split, 0 = all), `resize` (image
      files: bilinear resize to `resize x resize`, 0 = native), `source`
      ('embedded' for digits and gaussians; 'files' or 'tfds' for the
      others), `data_dir` (folder of the official files for 'files'; optional
      TFDS data folder for 'tfds', '' = TFDS default), `split` ('train' |
      'test') and `gaussians` (`num_modes`, `radius`, `std`, `num_examples`,
      0 = fresh points every step).
    seed: Non-negative seed of the example order (and of the fresh Gaussian
      points).

  Returns:
    A `Source`; images are uint8 [N, H, W, C] with `info.low`/`info.high` set,
    Gaussian points float32 [N, 2] with an unbounded range.

  Raises:
    ValueError: On an unknown name, source or split, or corrupt files.
    DataError: If the data folder or files are missing (source 'files').
  """
  name = str(_get(data_config, "name", ""))
  _check_choice("data.name", name, tuple(VALID_SOURCES))
  source = str(_get(data_config, "source", ""))
  _check_choice(f"data.source for data.name={name!r}", source,
                VALID_SOURCES[name])
  split = str(_get(data_config, "split", "train"))
  _check_choice("data.split", split, VALID_SPLITS)
  if seed < 0:
    raise ValueError(f"seed must be >= 0, got {seed}.")

  if name == "gaussians":
    return _build_gaussians(data_config, seed)
  if name == synthetic.BALL_NAME:
    return synthetic.GaussianBallSource(seed=seed)
  if name == "digits":
    x, labels = digits_split(int(_get(data_config, "holdout", 0)), split)
    return ArraySource(synthetic.digits_info(len(x)), x, labels, seed=seed)
  data_dir = str(_get(data_config, "data_dir", ""))
  x, labels = _load_image_arrays(name, source, data_dir, split)
  num_examples = int(_get(data_config, "num_examples", 0))
  if num_examples < 0 or num_examples > len(x):
    raise ValueError(f"data.num_examples must be in [0, {len(x)}] (0 = all "
                     f"of {name}/{split}), got {num_examples}.")
  if num_examples:  # The first N in the official files' order (paper 004).
    x, labels = x[:num_examples], labels[:num_examples]
  size = int(_get(data_config, "resize", 0))
  if size < 0:
    raise ValueError(f"data.resize must be >= 0 (0 = native), got {size}.")
  if size and (size, size) != tuple(x.shape[1:3]):
    x = resize_bilinear(x, size, size)
  low, high = _IMAGE_RANGE
  info = base.DatasetInfo(name=name, shape=tuple(x.shape[1:]), low=low,
                          high=high, num_examples=len(x), num_classes=10)
  return ArraySource(info, x, labels, seed=seed)

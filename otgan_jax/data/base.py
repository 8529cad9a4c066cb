"""Shared data types: dataset metadata, value scaling and the source protocol.

Every data source yields raw examples (uint8 images, float32 vectors) together
with a `DatasetInfo` that records the raw value range. Models work on values in
[-1, 1]; `normalize` and `denormalize` convert between the two.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")


class DataError(FileNotFoundError):
  """A data set's files are missing, or its data folder is wrong or unset."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static description of a data set.

  Attributes:
    name: Data set name, e.g. 'mnist'.
    shape: Shape of one example: (H, W, C) for images, (D,) for vectors.
    low: Smallest raw value (e.g. 0 for uint8 images); None for unbounded
      vector data, which is then used unscaled.
    high: Largest raw value (e.g. 255, or 16 for the sklearn digits); None
      exactly when `low` is None.
    num_examples: Number of examples; None for infinite synthetic sources.
    num_classes: Number of label values; None when the data has no labels.
  """

  name: str
  shape: tuple[int, ...]
  low: float | None
  high: float | None
  num_examples: int | None
  num_classes: int | None

  def __post_init__(self):
    if (self.low is None) != (self.high is None):
      raise ValueError(
          f"DatasetInfo {self.name!r}: low and high must both be set or both "
          f"be None, got low={self.low}, high={self.high}.")
    if self.low is not None and not self.high > self.low:
      raise ValueError(
          f"DatasetInfo {self.name!r}: need high > low, got low={self.low}, "
          f"high={self.high}.")

  @property
  def is_image(self) -> bool:
    """Whether examples are images of shape (H, W, C)."""
    return len(self.shape) == 3


def _as_float32(x):
  if not hasattr(x, "astype"):
    x = np.asarray(x)
  return x.astype(np.float32)


def normalize(x: ArrayT, info: DatasetInfo) -> ArrayT:
  """Maps raw values to float32 in [-1, 1].

  Works on numpy and jax arrays (the result has the same array type).

  Args:
    x: Raw data, [..., *info.shape], any numeric dtype, values in
      [info.low, info.high].
    info: Description of the data set.

  Returns:
    float32 array of the same shape, in [-1, 1]; for unbounded data
    (`info.low is None`) just `x` cast to float32.
  """
  x = _as_float32(x)
  if info.low is None:
    return x
  scale = 2.0 / (info.high - info.low)
  return (x - info.low) * scale - 1.0


def denormalize(y: ArrayT, info: DatasetInfo) -> ArrayT:
  """Inverse of `normalize`: maps [-1, 1] back to the raw value range.

  Values are not clipped or rounded; callers that write images should clip to
  [info.low, info.high] and round themselves.

  Args:
    y: Normalized data, [..., *info.shape].
    info: Description of the data set.

  Returns:
    float32 array of the same shape in the data's own range (identity cast
    for unbounded data).
  """
  y = _as_float32(y)
  if info.low is None:
    return y
  scale = (info.high - info.low) / 2.0
  return (y + 1.0) * scale + info.low


class Source(Protocol):
  """A deterministic stream of training batches.

  Attributes:
    info: Description of the examples.
  """

  info: DatasetInfo

  def sample(self, step: int, num: int, *, shard_index: int = 0,
             num_shards: int = 1) -> dict[str, np.ndarray]:
    """Returns this shard's part of the global batch drawn at `step`.

    The global batch holds `num` examples; shard `shard_index` gets its
    contiguous slice of `num // num_shards` examples. The result depends only
    on (seed, step, num, shard_index, num_shards), so a resumed run sees
    exactly the batches of an uninterrupted one.

    Args:
      step: Training step, >= 0.
      num: Global batch size, > 0 and divisible by `num_shards`.
      shard_index: Which shard to return, in [0, num_shards).
      num_shards: Number of equal parts the global batch is split into.

    Returns:
      {'x': [num // num_shards, *info.shape] in the raw dtype (uint8 for
      images, float32 for vectors), 'label': int32 [num // num_shards]}.

    Raises:
      ValueError: On invalid arguments, e.g. `num % num_shards != 0`.
    """
    ...


def shard_size(step: int, num: int, shard_index: int, num_shards: int) -> int:
  """Validates `Source.sample` arguments and returns the per-shard batch size.

  Args:
    step: Training step.
    num: Global batch size.
    shard_index: Requested shard.
    num_shards: Number of shards.

  Returns:
    `num // num_shards`.

  Raises:
    ValueError: If an argument is out of range or `num % num_shards != 0`.
  """
  if step < 0:
    raise ValueError(f"step must be >= 0, got {step}.")
  if num <= 0:
    raise ValueError(f"The batch size num must be > 0, got {num}.")
  if num_shards <= 0:
    raise ValueError(f"num_shards must be > 0, got {num_shards}.")
  if not 0 <= shard_index < num_shards:
    raise ValueError(
        f"shard_index must be in [0, {num_shards}), got {shard_index}.")
  if num % num_shards:
    raise ValueError(
        f"The global batch size {num} is not divisible by num_shards="
        f"{num_shards}; choose a batch size that is a multiple of the number "
        "of shards (devices or hosts).")
  return num // num_shards

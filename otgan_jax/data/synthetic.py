"""Small built-in data sets: Gaussian toy data and the sklearn 8x8 digits.

None needs files: the 2-D Gaussian mixture (the ring) and the 3-D Gaussian
ball (`N3(0, I)`, POT-GAN's "3-D Gaussian ball learned from 2-D noise") are
generated, and the 1,797 digits ship inside the scikit-learn wheel.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from otgan_jax.data import base

DIGITS_LOW = 0.0
DIGITS_HIGH = 16.0
# Seed key of the fixed finite Gaussian-mixture training set; it does not
# depend on the training seed, so runs with different seeds see the same data.
_GAUSSIANS_DATA_KEY = 0x6A055


BALL_NAME = "gaussian_ball_3d"
BALL_DIM = 3


def ball_centers() -> np.ndarray:
  """The 3-D ball as a one-component mixture: its mean, float32 [1, 3]."""
  return np.zeros((1, BALL_DIM), np.float32)


def mode_centers(num_modes: int, radius: float) -> np.ndarray:
  """Means of the Gaussian mixture: equally spaced points on a circle.

  Mode k sits at angle 2 * pi * k / num_modes.

  Args:
    num_modes: Number of mixture components, > 0.
    radius: Radius of the circle.

  Returns:
    float32 [num_modes, 2].
  """
  if num_modes <= 0:
    raise ValueError(f"num_modes must be > 0, got {num_modes}.")
  angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
  return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(
      np.float32)


def sample_gaussian_mixture(rng: np.random.Generator, num: int, num_modes: int,
                            radius: float,
                            std: float) -> tuple[np.ndarray, np.ndarray]:
  """Draws points from the equal-weight mixture of isotropic Gaussians.

  Args:
    rng: Random generator.
    num: Number of points.
    num_modes: Number of modes, centred as in `mode_centers`.
    radius: Radius of the circle of means.
    std: Standard deviation of every coordinate of every mode.

  Returns:
    (points float32 [num, 2], mode indices int32 [num]).
  """
  labels = rng.integers(num_modes, size=num).astype(np.int32)
  noise = rng.standard_normal((num, 2))
  points = mode_centers(num_modes, radius)[labels] + std * noise
  return points.astype(np.float32), labels


def gaussians_info(num_modes: int,
                   num_examples: int | None) -> base.DatasetInfo:
  """`DatasetInfo` of the Gaussian mixture (unbounded 2-D vectors)."""
  return base.DatasetInfo(name="gaussians", shape=(2,), low=None, high=None,
                          num_examples=num_examples, num_classes=num_modes)


def make_gaussians_dataset(num_examples: int, num_modes: int, radius: float,
                           std: float) -> tuple[np.ndarray, np.ndarray]:
  """A fixed finite training set drawn from the Gaussian mixture.

  The points depend only on the arguments, not on any training seed.

  Args:
    num_examples: Number of points, > 0.
    num_modes: Number of modes.
    radius: Radius of the circle of means.
    std: Standard deviation of each mode.

  Returns:
    (points float32 [num_examples, 2], mode indices int32 [num_examples]).
  """
  rng = np.random.default_rng(
      np.random.SeedSequence(0, spawn_key=(_GAUSSIANS_DATA_KEY,)))
  return sample_gaussian_mixture(rng, num_examples, num_modes, radius, std)


def ball_info() -> base.DatasetInfo:
  """`DatasetInfo` of the 3-D Gaussian ball (unbounded 3-D vectors)."""
  return base.DatasetInfo(name=BALL_NAME, shape=(BALL_DIM,), low=None,
                          high=None, num_examples=None, num_classes=1)


class GaussianBallSource:
  """Infinite source: fresh `N3(0, I)` points at every step.

  Shard k's points at step s come from `np.random.default_rng([seed, s, k])`,
  as in `GaussianMixtureSource`.
  """

  def __init__(self, *, seed: int):
    if seed < 0:
      raise ValueError(f"seed must be >= 0, got {seed}.")
    self.info = ball_info()
    self._seed = seed

  def sample(self, step: int, num: int, *, shard_index: int = 0,
             num_shards: int = 1) -> dict[str, np.ndarray]:
    """See `base.Source.sample`; x is float32 [num // num_shards, 3]."""
    step, num = int(step), int(num)
    shard_index, num_shards = int(shard_index), int(num_shards)
    size = base.shard_size(step, num, shard_index, num_shards)
    rng = np.random.default_rng([self._seed, step, shard_index])
    return {"x": rng.standard_normal((size, BALL_DIM)).astype(np.float32),
            "label": np.zeros((size,), np.int32)}


class GaussianMixtureSource:
  """Infinite source: fresh Gaussian-mixture points at every step.

  The points of shard k at step s come from
  `np.random.default_rng([seed, s, k])`, so they are reproducible, but the
  global batch depends on the number of shards.

  Attributes:
    info: Description of the data (num_examples None).
  """

  def __init__(self, num_modes: int, radius: float, std: float, *, seed: int):
    if num_modes <= 0:
      raise ValueError(f"num_modes must be > 0, got {num_modes}.")
    if std < 0:
      raise ValueError(f"std must be >= 0, got {std}.")
    if seed < 0:
      raise ValueError(f"seed must be >= 0, got {seed}.")
    self.info = gaussians_info(num_modes, None)
    self._num_modes = num_modes
    self._radius = radius
    self._std = std
    self._seed = seed

  def sample(self, step: int, num: int, *, shard_index: int = 0,
             num_shards: int = 1) -> dict[str, np.ndarray]:
    """See `base.Source.sample`; x is float32 [num // num_shards, 2]."""
    step, num = int(step), int(num)  # Python ints: no overflow.
    shard_index, num_shards = int(shard_index), int(num_shards)
    size = base.shard_size(step, num, shard_index, num_shards)
    rng = np.random.default_rng([self._seed, step, shard_index])
    x, labels = sample_gaussian_mixture(rng, size, self._num_modes,
                                        self._radius, self._std)
    return {"x": x, "label": labels}


def digits_info(num_examples: int = 1797) -> base.DatasetInfo:
  """`DatasetInfo` of the sklearn digits: 8x8x1 images with values 0..16."""
  return base.DatasetInfo(name="digits", shape=(8, 8, 1), low=DIGITS_LOW,
                          high=DIGITS_HIGH, num_examples=num_examples,
                          num_classes=10)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
  """Loads the 1,797 8x8 handwritten digits shipped with scikit-learn.

  The data set has no train/test split; callers get all of it. The file in
  the wheel (`sklearn/datasets/data/digits.csv.gz`: 64 pixel columns, then
  the label) is read directly: importing `sklearn.datasets` takes 1.3-1.7 s,
  more than the rest of a small run's start-up. Should a scikit-learn
  release move or reshape the file, its own loader is used instead.

  Returns:
    (images uint8 [1797, 8, 8, 1] with values 0..16, labels int32 [1797]).
  """
  table = _digits_table()
  if table is None:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    digits = datasets.load_digits()
    table = np.concatenate([digits.data, digits.target[:, None]], axis=1)
  images = table[:, :64].reshape(-1, 8, 8)
  if images.min() < DIGITS_LOW or images.max() > DIGITS_HIGH:
    raise ValueError("sklearn digits out of the expected range 0..16.")
  return (np.rint(images).astype(np.uint8)[..., None],
          table[:, 64].astype(np.int32))


def _digits_table() -> np.ndarray | None:
  """The wheel's digits file as float64 [1797, 65], or None if not found
  as expected (without importing scikit-learn)."""
  spec = importlib.util.find_spec("sklearn")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("The embedded digits ship with scikit-learn: "
                      "pip install scikit-learn")
  path = os.path.join(list(spec.submodule_search_locations)[0], "datasets",
                      "data", "digits.csv.gz")
  try:
    table = np.loadtxt(path, delimiter=",", ndmin=2)
  except (OSError, ValueError):
    return None
  return table if table.shape == (1797, 65) else None

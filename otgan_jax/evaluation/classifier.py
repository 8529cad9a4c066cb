"""Domain classifiers for 28x28 MNIST / Fashion-MNIST: a "classifier score".

The Inception network knows nothing of digits or clothes, so on MNIST-like
data the usual substitutes are the Inception Score and FID computed with a
small classifier trained on the data set itself. This module holds that
classifier (a three-block CNN, ~130k parameters, 0.5 MB of float32), its
training loop, pinned pretrained weights, and the two metrics:

- `classifier_score`: `inception_score` on the classifier's probabilities.
- `classifier_frechet_distance`: the Frechet distance in its 128-d penultimate
  (ReLU) features.

Inputs are `[n, 28, 28, 1]` (or `[n, 28, 28]`) images, uint8 in [0, 255] or
float in [-1, 1] (the generators' range). Images of other sizes (e.g. the
assignment method's 32x32) must be resized by the caller, and the resize
named beside the numbers. Scores are comparable only under the same weights:
report the `sha256` of `PRETRAINED` with them.

The weights in `weights/` come from `bench/train_classifiers.py`.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from typing import Sequence

import flax.linen as nn
from flax import traverse_util
import jax
import numpy as np
import optax

from otgan_jax import hashed_npz
from otgan_jax.evaluation import image_metrics

# name -> file in weights/, its sha256, the accuracy on the held-out images
# and the input shape, measured by bench/train_classifiers.py. MNIST and
# Fashion-MNIST: 3 epochs, batch 128, seed 0, on the 60,000 training images,
# tested on the official 10,000.
PRETRAINED = {
    "mnist": {
        "file": "mnist_classifier.npz",
        "sha256": ("6063704c0d99c7abfc663955a2d47a5b"
                   "7c728019e5a70b6fb6aacc5539868bd2"),
        "test_accuracy": 0.9925,
        "shape": (28, 28, 1),
    },
    "fashion_mnist": {
        "file": "fashion_mnist_classifier.npz",
        "sha256": ("52794b67b037898592d8f192aed37661"
                   "422cf995b4650cf929ede97a8f410b6f"),
        "test_accuracy": 0.9076,
        "shape": (28, 28, 1),
    },
    # The embedded 8x8 digits: trained on the first 1,500 (60 epochs, batch
    # 50), accuracy on the last 297 (data.holdout=297's test split).
    "digits": {
        "file": "digits_classifier.npz",
        "sha256": ("f34de1f84bd5c669c9515814cbee212b"
                   "051d5c68921d901f7b72da2a42114087"),
        "test_accuracy": 0.9461,
        "shape": (8, 8, 1),
    },
}
_IMAGE_SHAPE = (28, 28, 1)
_PARAMS_PREFIX = "params/"
_CONFIG_KEYS = ("features", "hidden", "num_classes")


_HINT = ("If the weights changed, scores made with them are not comparable: "
         "restore the file, or retrain with bench/train_classifiers.py and "
         "update the pin.")


class WeightsHashError(hashed_npz.HashedNpzError):
  """A weights file does not have the sha256 it is pinned to (a ValueError)."""


class Classifier(nn.Module):
  """Three conv-ReLU-maxpool blocks, a hidden dense layer, class logits.

  Attributes:
    features: Channels of the 3x3 convolutions; each block halves the size
      (28 -> 14 -> 7 -> 3).
    hidden: Width of the penultimate layer (the FID features).
    num_classes: Number of classes.
  """
  features: Sequence[int] = (32, 64, 64)
  hidden: int = 128
  num_classes: int = 10

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Maps `[n, 28, 28, 1]` images in [-1, 1] to (`[n, k]` logits,
    `[n, hidden]` penultimate features)."""
    x = images
    for width in self.features:
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    features = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_classes)(features), features


def preprocess(images: np.ndarray,
               shape: tuple[int, int, int] = _IMAGE_SHAPE) -> np.ndarray:
  """Checks the shape and maps images to float32 `[n, *shape]` in [-1, 1].

  uint8 images are scaled from [0, 255]; float images are taken to be in
  [-1, 1] already.
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.shape[1:] != tuple(shape):
    raise ValueError(
        f"The classifier takes [n, {', '.join(map(str, shape))}] images, got "
        f"{images.shape}; resize first and name the resize beside the "
        "scores.")
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  return images.astype(np.float32)


def train_classifier(images: np.ndarray, labels: np.ndarray, *, epochs: int,
                     batch_size: int = 128, seed: int = 0,
                     learning_rate: float = 2e-3,
                     model: Classifier | None = None,
                     shape: tuple[int, int, int] = _IMAGE_SHAPE) -> dict:
  """Trains a classifier with Adam and a cosine learning-rate decay.

  One jitted step per mini-batch of a fresh shuffle each epoch (the last
  incomplete batch is dropped). The steps are not fused into a `lax.scan`:
  XLA:CPU ran a scanned epoch about 8x slower than the same steps dispatched
  one by one.

  Args:
    images: `[n, 28, 28(, 1)]` training images (see `preprocess`).
    labels: `[n]` int class labels.
    epochs: Passes over the data.
    batch_size: Images per Adam step.
    seed: Seed of the initialisation and the shuffling.
    learning_rate: Peak Adam learning rate.
    model: The network; `Classifier()` if None.
    shape: The images' `(height, width, channels)`.

  Returns:
    The trained Flax params.
  """
  model = model or Classifier()
  x = preprocess(images, shape)
  y = np.asarray(labels, np.int32)
  steps_per_epoch = len(x) // batch_size
  if steps_per_epoch < 1:
    raise ValueError(f"{len(x)} images are fewer than batch_size={batch_size}.")
  rng = jax.random.key(seed)
  params = model.init(jax.random.fold_in(rng, 0), x[:1])["params"]
  tx = optax.adam(optax.cosine_decay_schedule(
      learning_rate, epochs * steps_per_epoch))
  opt_state = tx.init(params)

  def loss_fn(params, xb, yb):
    logits, _ = model.apply({"params": params}, xb)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def train_step(params, opt_state, xb, yb):
    grads = jax.grad(loss_fn)(params, xb, yb)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for epoch in range(epochs):
    order = np.asarray(jax.random.permutation(
        jax.random.fold_in(rng, epoch + 1), len(x)))
    for step in range(steps_per_epoch):
      idx = order[step * batch_size:(step + 1) * batch_size]
      params, opt_state = train_step(params, opt_state, x[idx], y[idx])
  return jax.block_until_ready(params)


@functools.partial(jax.jit, static_argnums=0)
def _probs_and_features(model: Classifier, params: dict,
                        images: jax.Array) -> tuple[jax.Array, jax.Array]:
  logits, features = model.apply({"params": params}, images)
  # Softmax in float32 on device; the host casts to float64 for the scores.
  return jax.nn.softmax(logits), features


def predict(model: Classifier, params: dict, images: np.ndarray, *,
            batch_size: int = 500,
            shape: tuple[int, int, int] = _IMAGE_SHAPE
            ) -> tuple[np.ndarray, np.ndarray]:
  """Class probabilities and penultimate features of `images`.

  Runs in fixed-size (padded) batches, so one compilation serves any n.

  Returns:
    (`[n, k]` float64 probabilities, `[n, hidden]` float32 features).
  """
  x = preprocess(images, shape)
  probs, feats = [], []
  for start in range(0, len(x), batch_size):
    xb = x[start:start + batch_size]
    pad = batch_size - len(xb)
    p, f = _probs_and_features(
        model, params, np.pad(xb, ((0, pad), (0, 0), (0, 0), (0, 0))))
    probs.append(np.asarray(p)[:len(xb)])
    feats.append(np.asarray(f)[:len(xb)])
  return (np.concatenate(probs).astype(np.float64), np.concatenate(feats))


def requested_class_accuracy(probs: np.ndarray, num_classes: int) -> float:
  """Share of samples classified as the class they were generated for.

  For a conditional generator's samples in `experiment.generate`'s order
  (sample i is of class `i % num_classes`).
  """
  requested = np.arange(len(probs)) % num_classes
  return float((np.asarray(probs).argmax(axis=1) == requested).mean())


def classifier_score(probs: np.ndarray, *,
                     num_splits: int = 10) -> tuple[float, float]:
  """The Inception Score formula on the domain classifier's `[n, k]` probs."""
  return image_metrics.inception_score(probs, num_splits=num_splits)


def classifier_frechet_distance(features1: np.ndarray,
                                features2: np.ndarray) -> float:
  """Frechet distance between two `[n, hidden]` penultimate-feature sets.

  Some ReLU units of the pinned networks never fire, so the covariances are
  singular and scipy may warn (`LinAlgWarning`) about the matrix root; the
  result stays finite, as in pytorch-fid.
  """
  f1 = np.asarray(features1, np.float64)
  f2 = np.asarray(features2, np.float64)
  return image_metrics.frechet_distance(
      f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def save(path: str | os.PathLike, model: Classifier, params: dict, *,
         sidecar: bool = True) -> str:
  """Writes params and architecture to a byte-reproducible `.npz`.

  Written by `hashed_npz.save` (members sorted, stored uncompressed, dated
  1980-01-01, both files moved into place at the end), so the same weights
  always give the same file and sha256.

  Args:
    path: Output file.
    model: The architecture (its fields are saved as `config/*`).
    params: Flax params of `model`.
    sidecar: Also write `<path>.sha256` (sha256sum format) for `load`; if
      False, a stale sidecar is removed.

  Returns:
    The file's sha256.
  """
  arrays = {_PARAMS_PREFIX + k: np.asarray(v) for k, v in
            traverse_util.flatten_dict(params, sep="/").items()}
  for key in _CONFIG_KEYS:
    arrays["config/" + key] = np.asarray(getattr(model, key), np.int64)
  return hashed_npz.save(path, arrays, sidecar=sidecar)


def load(path: str | os.PathLike, *,
         sha256: str | None = None) -> tuple[Classifier, dict]:
  """Reads a file written by `save`, after checking its sha256.

  Args:
    path: The `.npz` file.
    sha256: Expected hex digest; if None, read from `<path>.sha256`.

  Returns:
    (model, params).

  Raises:
    WeightsHashError: If the file is missing or unreadable, the digest
      differs, or no expected digest is known.
  """
  data = hashed_npz.load(path, sha256, error=WeightsHashError,
                         what="Classifier weights", hint=_HINT)
  try:
    config = {k: data["config/" + k] for k in _CONFIG_KEYS}
  except KeyError as e:
    raise WeightsHashError(f"{os.fspath(path)!r} is not a classifier file "
                           f"(no {e.args[0]!r}).") from e
  flat = {k[len(_PARAMS_PREFIX):]: v for k, v in data.items()
          if k.startswith(_PARAMS_PREFIX)}
  model = Classifier(features=tuple(int(c) for c in config["features"]),
                     hidden=int(config["hidden"]),
                     num_classes=int(config["num_classes"]))
  return model, traverse_util.unflatten_dict(flat, sep="/")


def pretrained_path(name: str) -> str:
  """Path of the packaged weights file of data set `name` (PRETRAINED)."""
  if name not in PRETRAINED:
    raise ValueError(f"No pretrained classifier {name!r}; choose from "
                     f"{', '.join(PRETRAINED)}.")
  return os.fspath(importlib.resources.files("otgan_jax.evaluation") /
                   "weights" / PRETRAINED[name]["file"])


def load_pretrained(name: str) -> tuple[Classifier, dict]:
  """The packaged classifier of data set `name` (PRETRAINED), hash-checked."""
  return load(pretrained_path(name), sha256=PRETRAINED[name]["sha256"])

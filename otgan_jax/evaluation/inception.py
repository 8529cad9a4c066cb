"""The FID/IS Inception-v3 (TF graph 2015-12-05, as ported by pytorch-fid).

The architecture is pytorch-fid's `fid_inception_v3`: torchvision's Inception-v3
with the FID block variants (average pools that exclude the padding in
Mixed_5b..Mixed_7b, a max pool in Mixed_7c), convolutions without bias,
BatchNorm with eps 0.001 in inference mode, and a global average pool to the
2048-d "pool3" features. With the 1008-way layer the logits are
`pool3 @ W` WITHOUT bias, as in the OpenAI Inception Score code.

Inputs are NHWC. The preprocessing follows the two references (METHODS.md,
section 4): the TF graph resizes with TF1's legacy bilinear resize (no
half-pixel centres) and scales by `(x - 128) / 128`; pytorch-fid resizes with
half-pixel bilinear and scales [0, 1] to [-1, 1]. Only numbers computed with
the same weights, resize and scaling are comparable.

Weights: see `inception_weights.py`. Typical use:

  params = inception_weights.load_fid_helper()
  out = inception_outputs(images_uint8, params=params)   # out["pool"] [n, 2048]
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from absl import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from otgan_jax import metric_writers
from otgan_jax import sharding

NUM_FEATURES = 2048
NUM_CLASSES = 1008
RESIZE_MODES = ("tf1", "half_pixel", None)
SCALINGS = ("tf", "torch")
Params = Any


class FrozenBatchNorm(nn.Module):
  """Inference BatchNorm: `(x - mean) / sqrt(var + eps) * scale + bias`."""
  epsilon: float = 1e-3

  @nn.compact
  def __call__(self, x):
    shape = (x.shape[-1],)
    scale = self.param("scale", nn.initializers.ones, shape)
    bias = self.param("bias", nn.initializers.zeros, shape)
    mean = self.param("mean", nn.initializers.zeros, shape)
    var = self.param("var", nn.initializers.ones, shape)
    inv = scale * jax.lax.rsqrt(var + self.epsilon)
    return (x - mean) * inv + bias


class BasicConv2d(nn.Module):
  """Convolution (no bias), frozen BatchNorm, ReLU."""
  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)
  precision: str | None = "highest"

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=False,
                precision=self.precision, name="conv")(x)
    return nn.relu(FrozenBatchNorm(name="bn")(x))


def _avg_pool_same(x):
  # count_include_pad=False, as in pytorch-fid's FID blocks (TF's AvgPool SAME).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_valid(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class _Block(nn.Module):
  """Shared helper: a named BasicConv2d with this block's precision."""
  precision: str | None = "highest"

  def conv(self, name, features, kernel_size, strides=1, padding=(0, 0)):
    return BasicConv2d(features, kernel_size, strides, padding,
                       self.precision, name=name)


class InceptionA(_Block):
  """Mixed_5b..5d (pytorch-fid's FIDInceptionA)."""
  pool_features: int = 32

  @nn.compact
  def __call__(self, x):
    branch1x1 = self.conv("branch1x1", 64, (1, 1))(x)
    b5 = self.conv("branch5x5_1", 48, (1, 1))(x)
    b5 = self.conv("branch5x5_2", 64, (5, 5), padding=(2, 2))(b5)
    b3 = self.conv("branch3x3dbl_1", 64, (1, 1))(x)
    b3 = self.conv("branch3x3dbl_2", 96, (3, 3), padding=(1, 1))(b3)
    b3 = self.conv("branch3x3dbl_3", 96, (3, 3), padding=(1, 1))(b3)
    pool = self.conv("branch_pool", self.pool_features, (1, 1))(
        _avg_pool_same(x))
    return jnp.concatenate([branch1x1, b5, b3, pool], axis=-1)


class InceptionB(_Block):
  """Mixed_6a: grid reduction 35 -> 17."""

  @nn.compact
  def __call__(self, x):
    b3 = self.conv("branch3x3", 384, (3, 3), strides=2)(x)
    bd = self.conv("branch3x3dbl_1", 64, (1, 1))(x)
    bd = self.conv("branch3x3dbl_2", 96, (3, 3), padding=(1, 1))(bd)
    bd = self.conv("branch3x3dbl_3", 96, (3, 3), strides=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_valid(x)], axis=-1)


class InceptionC(_Block):
  """Mixed_6b..6e (pytorch-fid's FIDInceptionC)."""
  channels_7x7: int = 128

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    branch1x1 = self.conv("branch1x1", 192, (1, 1))(x)
    b7 = self.conv("branch7x7_1", c7, (1, 1))(x)
    b7 = self.conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
    bd = self.conv("branch7x7dbl_1", c7, (1, 1))(x)
    bd = self.conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
    bd = self.conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
    bd = self.conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
    pool = self.conv("branch_pool", 192, (1, 1))(_avg_pool_same(x))
    return jnp.concatenate([branch1x1, b7, bd, pool], axis=-1)


class InceptionD(_Block):
  """Mixed_7a: grid reduction 17 -> 8."""

  @nn.compact
  def __call__(self, x):
    b3 = self.conv("branch3x3_1", 192, (1, 1))(x)
    b3 = self.conv("branch3x3_2", 320, (3, 3), strides=2)(b3)
    b7 = self.conv("branch7x7x3_1", 192, (1, 1))(x)
    b7 = self.conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
    b7 = self.conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
    b7 = self.conv("branch7x7x3_4", 192, (3, 3), strides=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_valid(x)], axis=-1)


class InceptionE(_Block):
  """Mixed_7b (FIDInceptionE_1) and, with `max_pool`, Mixed_7c (E_2)."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    branch1x1 = self.conv("branch1x1", 320, (1, 1))(x)
    b3 = self.conv("branch3x3_1", 384, (1, 1))(x)
    b3a = self.conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3)
    b3b = self.conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)
    bd = self.conv("branch3x3dbl_1", 448, (1, 1))(x)
    bd = self.conv("branch3x3dbl_2", 384, (3, 3), padding=(1, 1))(bd)
    bda = self.conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd)
    bdb = self.conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)
    if self.max_pool:  # The TF graph's last block max-pools; kept as is.
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_same(x)
    pool = self.conv("branch_pool", 192, (1, 1))(pooled)
    return jnp.concatenate([branch1x1, b3a, b3b, bda, bdb, pool], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception-v3; any input size >= 75x75.

  Attributes:
    include_logits: also return the 1008-way logits and softmax (needs the
      `fc` kernel, which only pytorch-fid's weights file carries).
    precision: convolution/matmul precision; "highest" keeps float32 on
      accelerators with TF32 or bfloat16 passes.
  """
  include_logits: bool = False
  precision: str | None = "highest"

  @nn.compact
  def __call__(self, x):
    """Pool features (and logits) of preprocessed images.

    Args:
      x: `[batch, height, width, 3]` float32, scaled to about [-1, 1].

    Returns:
      `pool`: `[batch, 2048]`; with `include_logits` also `logits` and
      `probs`: `[batch, 1008]`.
    """
    if x.shape[1] < 75 or x.shape[2] < 75:
      raise ValueError(f"Inception needs inputs of at least 75x75, got "
                       f"{x.shape[1:3]}; resize first.")
    p = self.precision
    conv = lambda name, *a, **k: BasicConv2d(*a, **k, precision=p, name=name)
    x = conv("Conv2d_1a_3x3", 32, (3, 3), strides=2)(x)
    x = conv("Conv2d_2a_3x3", 32, (3, 3))(x)
    x = conv("Conv2d_2b_3x3", 64, (3, 3), padding=(1, 1))(x)
    x = _max_pool_valid(x)
    x = conv("Conv2d_3b_1x1", 80, (1, 1))(x)
    x = conv("Conv2d_4a_3x3", 192, (3, 3))(x)
    x = _max_pool_valid(x)
    x = InceptionA(p, pool_features=32, name="Mixed_5b")(x)
    x = InceptionA(p, pool_features=64, name="Mixed_5c")(x)
    x = InceptionA(p, pool_features=64, name="Mixed_5d")(x)
    x = InceptionB(p, name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                     ("Mixed_6e", 192)):
      x = InceptionC(p, channels_7x7=c7, name=name)(x)
    x = InceptionD(p, name="Mixed_7a")(x)
    x = InceptionE(p, max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(p, max_pool=True, name="Mixed_7c")(x)
    pool = jnp.mean(x, axis=(1, 2))
    out = {"pool": pool}
    if self.include_logits:
      logits = nn.Dense(NUM_CLASSES, use_bias=False, precision=self.precision,
                        name="fc")(pool)
      out.update(logits=logits, probs=jax.nn.softmax(logits, axis=-1))
    return out


def _interpolation_matrix(in_size: int, out_size: int, *,
                          half_pixel_centers: bool) -> np.ndarray:
  """`[out_size, in_size]` bilinear weights, computed in float32 like TF."""
  scale = np.float32(in_size) / np.float32(out_size)
  dst = np.arange(out_size, dtype=np.float32)
  if half_pixel_centers:  # torch F.interpolate(align_corners=False), TF2.
    src = np.maximum((dst + np.float32(0.5)) * scale - np.float32(0.5), 0)
  else:  # TF1 legacy ("asymmetric"): src = dst * in / out.
    src = dst * scale
  lower = np.floor(src)
  lerp = (src - lower).astype(np.float32)
  lower = lower.astype(np.int64)
  upper = np.minimum(lower + 1, in_size - 1)
  weights = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(weights, (rows, lower), 1 - lerp)
  np.add.at(weights, (rows, upper), lerp)
  return weights


def resize_bilinear(images: jax.Array, size: tuple[int, int], *,
                    half_pixel_centers: bool = False) -> jax.Array:
  """Bilinear resize without antialiasing, as separable weight matrices.

  Args:
    images: `[batch, height, width, channels]` float.
    size: `(out_height, out_width)`.
    half_pixel_centers: False gives TF1's legacy `tf.image.resize_bilinear`
      (align_corners=False), used inside the 2015-12-05 graph; True gives
      torch's `F.interpolate(mode="bilinear", align_corners=False)`.

  Returns:
    `[batch, out_height, out_width, channels]` float32.
  """
  images = jnp.asarray(images, jnp.float32)
  _, height, width, _ = images.shape
  if (height, width) == tuple(size):
    return images
  wy = _interpolation_matrix(height, size[0],
                             half_pixel_centers=half_pixel_centers)
  wx = _interpolation_matrix(width, size[1],
                             half_pixel_centers=half_pixel_centers)
  hi = jax.lax.Precision.HIGHEST
  out = jnp.einsum("yh,nhwc->nywc", wy, images, precision=hi)
  return jnp.einsum("xw,nywc->nyxc", wx, out, precision=hi)


def preprocess(images: jax.Array, *, resize: str | None = "tf1",
               scaling: str = "tf", size: int = 299) -> jax.Array:
  """Pixels to the network's input.

  Args:
    images: `[batch, height, width, 3 or 1]`, uint8 in [0, 255] or float in
      [0, 1]. One channel is repeated to three.
    resize: "tf1" (the TF graph's legacy bilinear, used by the IS code and
      TTUR's FID), "half_pixel" (pytorch-fid) or None (feed as is).
    scaling: "tf": `(x - 128) / 128` of 0..255 values (the TF graph); "torch":
      `2 x - 1` of [0, 1] values (pytorch-fid).
    size: output side for `resize`.

  Returns:
    `[batch, size, size, 3]` float32 (input size when `resize` is None).
  """
  if resize not in RESIZE_MODES or scaling not in SCALINGS:
    raise ValueError(f"resize={resize!r} must be one of {RESIZE_MODES} and "
                     f"scaling={scaling!r} one of {SCALINGS}.")
  x = jnp.asarray(images)
  if x.dtype != jnp.uint8:  # Floats in [0, 1]; work on the 0..255 scale.
    x = x.astype(jnp.float32) * 255.0
  x = x.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  if resize is not None:
    x = resize_bilinear(x, (size, size),
                        half_pixel_centers=resize == "half_pixel")
  if scaling == "tf":
    return (x - 128.0) / 128.0
  return x / 255.0 * 2.0 - 1.0


@functools.partial(jax.jit, static_argnames=("model", "resize", "scaling",
                                             "out_sharding"))
def _forward(params, images, *, model, resize, scaling, out_sharding):
  """Preprocessing and the network, one program for every extractor with the
  same model, protocol, batch shape and mesh (jit's cache is keyed by them)."""
  x = preprocess(images, resize=resize, scaling=scaling)
  out = model.apply({"params": params}, x)
  return jax.lax.with_sharding_constraint(out, out_sharding)


class InceptionExtractor:
  """Jitted, batched, data-parallel Inception outputs for large image sets.

  Batches are split over the mesh's data axis and the params replicated; the
  last batch is padded to a multiple of the device count. One device is a
  mesh of size one. Extractors with the same settings share one compiled
  program (a second evaluator in a process does not compile again).
  """

  def __init__(self, params: Params, *, resize: str | None = "tf1",
               scaling: str = "tf", batch_size: int = 200,
               mesh: jax.sharding.Mesh | None = None,
               precision: str | None = "highest", log_every_s: float = 30.0):
    """See `inception_outputs` for the arguments; a progress line with the
    time left is logged every `log_every_s` seconds of a long call."""
    self.log_every_s = log_every_s
    if mesh is None:
      mesh = sharding.make_mesh((-1,), (sharding.DATA_AXIS,))
    self.mesh = mesh
    self.num_shards = sharding.data_parallel_size(mesh)
    self.batch_size = _round_up(batch_size, self.num_shards)
    self.model = InceptionV3(include_logits="fc" in params,
                             precision=precision)
    self.params = jax.device_put(params, sharding.replicated(mesh))
    self._batch = sharding.batch_sharding(mesh, 0)
    self._static = {"model": self.model, "resize": resize,
                    "scaling": scaling, "out_sharding": self._batch}

  def apply(self, batch: np.ndarray) -> dict[str, jax.Array]:
    """One jitted step on `[b, h, w, c]` images, `b` a multiple of the
    device count; returns the sharded device outputs without waiting."""
    return _forward(self.params, jax.device_put(batch, self._batch),
                    **self._static)

  def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs for `[n, height, width, channels]` images (see `preprocess`).

    Returns:
      Host arrays: `pool` `[n, 2048]`, and with the 1008-way layer `logits`
      and `probs` `[n, 1008]`.
    """
    images = np.asarray(images)
    n = len(images)
    if n == 0:
      raise ValueError("No images given.")
    step = min(self.batch_size, _round_up(n, self.num_shards))
    chunks, pending = [], None
    t0 = last_log = time.perf_counter()
    for start in range(0, n, step):
      now = time.perf_counter()
      if start and now - last_log >= self.log_every_s:
        # 50,000 images take about an hour on a CPU: say how far along.
        rate = start / (now - t0)
        logging.info("Inception: %d/%d images (%.0f%%) | %.1f img/s | ETA %s",
                     start, n, 100.0 * start / n, rate,
                     metric_writers.format_duration((n - start) / rate))
        last_log = now
      batch = images[start:start + step]
      if len(batch) < step:
        pad = np.zeros((step - len(batch),) + batch.shape[1:], batch.dtype)
        batch = np.concatenate([batch, pad])
      out = self.apply(batch)  # Dispatch this, then fetch the last one.
      if pending is not None:
        chunks.append(jax.device_get(pending))
      pending = out
    chunks.append(jax.device_get(pending))
    return {k: np.concatenate([c[k] for c in chunks])[:n] for k in chunks[0]}


def inception_outputs(images: np.ndarray, *, params: Params,
                      resize: str | None = "tf1", scaling: str = "tf",
                      batch_size: int = 200,
                      mesh: jax.sharding.Mesh | None = None,
                      precision: str | None = "highest"
                      ) -> dict[str, np.ndarray]:
  """Inception pool features (and logits, probs) of a set of images.

  Args:
    images: `[n, height, width, 3 or 1]` uint8 in [0, 255] or float in [0, 1].
    params: the `params` pytree from `inception_weights`; with an `fc` entry
      the 1008-way logits (no bias) and softmax are returned too.
    resize: "tf1", "half_pixel" or None, see `preprocess`.
    scaling: "tf" or "torch", see `preprocess`.
    batch_size: images per step over all devices (rounded up to a multiple
      of the device count).
    mesh: a mesh with a "data" axis; default, all devices.
    precision: conv/matmul precision ("highest" for float32 on GPUs/TPUs).

  Returns:
    `pool` `[n, 2048]`; with `fc`, also `logits` and `probs` `[n, 1008]`.
  """
  return InceptionExtractor(params, resize=resize, scaling=scaling,
                            batch_size=batch_size, mesh=mesh,
                            precision=precision)(images)


def _round_up(n: int, multiple: int) -> int:
  return math.ceil(n / multiple) * multiple

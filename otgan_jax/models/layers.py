"""Weight-normalised layers and activations shared by the OT-GAN networks.

Weight normalisation (Salimans & Kingma, 2016) writes each layer's weight as
``w = g * v / ||v||``, with the norm taken over every axis except the
output-channel axis, and adds a bias ``b``. The OT-GAN code initialises ``g``
and ``b`` from data: on the batch passed to ``Module.init`` the layer computes
``t = x * (v / ||v||)`` (a dense product or a convolution), the per-channel
mean ``m`` and variance ``s**2`` of ``t`` over every non-channel axis, and sets

  g = init_scale / sqrt(s**2 + eps),    b = -m * g,

so that the layer's output on the init batch has zero mean and standard
deviation ``init_scale`` per channel. Flax runs parameter initialisers only
during ``init``, so the statistics are computed there and closed over by the
initialisers of ``scale`` and ``bias``; ``apply`` reads the stored values and
is an ordinary deterministic layer.

Parameter names of both layers: ``kernel`` holds the direction ``v``, ``scale``
holds ``g`` (one per output channel) and ``bias`` holds ``b``.

Mixed precision: ``dtype`` (default float32) is the dtype the product or
convolution runs in; ``kernel``, ``scale`` and ``bias`` stay float32 and the
weight norm ``g * v / ||v||`` is formed in float32, then cast.

Consequence for callers: initialise with a representative batch (real data for
the critic, latent samples for the generator) of more than a handful of
examples; with a single example a dense layer's variance is zero and ``g``
becomes ``init_scale / sqrt(eps)``.
"""

from typing import Any, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from otgan_jax.models import fastconv

Array = jax.Array

# Direction vectors v are drawn from N(0, 0.05**2), as in the OT-GAN code.
_V_STDDEV = 0.05


def _data_dependent_init(
    t: Array, init_scale: float, eps: float
) -> Tuple[Array, Array]:
  """Returns (g, b) making ``t * g + b`` zero-mean, std ``init_scale``.

  Args:
    t: [..., features] output of the layer with unit-norm weights.
    init_scale: target per-channel standard deviation.
    eps: added to the variance before the square root.

  Returns:
    g: [features] scale.
    b: [features] bias.
  """
  axes = tuple(range(t.ndim - 1))
  t = t.astype(jnp.float32)
  mean = jnp.mean(t, axis=axes)
  var = jnp.var(t, axis=axes)
  g = init_scale / jnp.sqrt(var + eps)
  return g, -mean * g


def _normalise_direction(v: Array) -> Array:
  """Divides ``v`` by its norm over all axes but the last (output) one."""
  axes = tuple(range(v.ndim - 1))
  return v * jax.lax.rsqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))


class _WeightNormBase(nn.Module):
  """Shared parameter logic of `WNDense` and `WNConv`.

  Subclasses define ``features``, ``init_scale``, ``eps`` and implement
  ``_kernel_shape`` and ``_linear``.
  """

  def _kernel_shape(self, in_features: int) -> Tuple[int, ...]:
    raise NotImplementedError

  def _linear(self, x: Array, kernel: Array) -> Array:
    raise NotImplementedError

  def _apply_weight_norm(self, x: Array) -> Array:
    """Builds (or reads) ``kernel``, ``scale``, ``bias`` and applies them.

    Args:
      x: [..., in_features] input.

    Returns:
      [..., features] output ``x * (g * v / ||v||) + b``.
    """
    v = self.param(
        'kernel',
        nn.initializers.normal(stddev=_V_STDDEV),
        self._kernel_shape(x.shape[-1]),
    )
    x = x.astype(self.dtype)
    if self.is_initializing():
      t = self._linear(x, _normalise_direction(v).astype(self.dtype))
      g_init, b_init = _data_dependent_init(t, self.init_scale, self.eps)
      scale_init = lambda *_: g_init
      bias_init = lambda *_: b_init
    else:
      # Never called with stored params; shaped so Flax's shape check passes.
      scale_init, bias_init = nn.initializers.ones, nn.initializers.zeros
    g = self.param('scale', scale_init, (self.features,), jnp.float32)
    b = self.param('bias', bias_init, (self.features,), jnp.float32)
    kernel = (_normalise_direction(v) * g).astype(self.dtype)
    return self._linear(x, kernel) + b.astype(self.dtype)


class WNDense(_WeightNormBase):
  """Weight-normalised dense layer with data-dependent initialisation.

  Attributes:
    features: number of output features.
    init_scale: per-feature output standard deviation on the init batch.
    eps: added to the init-batch variance before the square root.
    dtype: computation dtype (parameters stay float32).
  """

  features: int
  init_scale: float = 1.0
  eps: float = 1e-6
  dtype: Any = jnp.float32

  def _kernel_shape(self, in_features: int) -> Tuple[int, ...]:
    return (in_features, self.features)

  def _linear(self, x: Array, kernel: Array) -> Array:
    return jnp.dot(x, kernel)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Applies the layer.

    Args:
      x: [..., in_features] input; the init statistics are taken over all
        leading axes.

    Returns:
      [..., features] output.
    """
    return self._apply_weight_norm(x)


class WNConv(_WeightNormBase):
  """Weight-normalised 2-D convolution (NHWC, SAME padding).

  Attributes:
    features: number of output channels.
    kernel_size: spatial size of the kernel, an int or (height, width).
    strides: stride, an int or (height, width).
    init_scale: per-channel output standard deviation on the init batch.
    eps: added to the init-batch variance before the square root.
    dtype: computation dtype (parameters stay float32).
    upsample: convolve the input upsampled 2x by nearest neighbour
      (`upsample_nearest_2x` then this layer, same parameters), computed
      without the upsampled map (`fastconv.upsampled_conv2d`); stride 1.
  """

  features: int
  kernel_size: Union[int, Sequence[int]] = 5
  strides: Union[int, Sequence[int]] = 1
  init_scale: float = 1.0
  eps: float = 1e-6
  dtype: Any = jnp.float32
  upsample: bool = False

  def _pair(self, value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(value, int):
      return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
      raise ValueError(f'Expected an int or a pair, got {value}.')
    return value

  def _kernel_shape(self, in_features: int) -> Tuple[int, ...]:
    return self._pair(self.kernel_size) + (in_features, self.features)

  def _linear(self, x: Array, kernel: Array) -> Array:
    # XLA's convolution with a fast kernel gradient (see fastconv).
    if self.upsample:
      if self._pair(self.strides) != (1, 1):
        raise ValueError('WNConv(upsample=True) needs stride 1, got '
                         f'{self.strides}.')
      return fastconv.upsampled_conv2d(x, kernel)
    return fastconv.conv2d(x, kernel.astype(x.dtype),
                           self._pair(self.strides), 'SAME')

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Applies the convolution.

    Args:
      x: [batch, height, width, in_channels] input; the init statistics are
        taken over batch, height and width.

    Returns:
      [batch, ceil(height / stride_h), ceil(width / stride_w), features]
      ([batch, 2 height, 2 width, features] with `upsample`).
    """
    if x.ndim != 4:
      raise ValueError(f'WNConv expects NHWC input, got shape {x.shape}.')
    return self._apply_weight_norm(x)


def glu(h: Array) -> Array:
  """Gated linear unit on the last axis.

  Args:
    h: [..., 2 * n] input; the first half is the value, the second the gate.

  Returns:
    [..., n] ``a * sigmoid(b)`` where ``a, b = split(h, 2, axis=-1)``.
  """
  if h.shape[-1] % 2:
    raise ValueError(f'glu needs an even last axis, got shape {h.shape}.')
  a, b = jnp.split(h, 2, axis=-1)
  return a * jax.nn.sigmoid(b)


def crelu(x: Array) -> Array:
  """Concatenated ReLU on the last axis.

  Args:
    x: [..., n] input.

  Returns:
    [..., 2 * n] ``concat(relu(x), relu(-x))``.
  """
  return jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1)


def upsample_nearest_2x(x: Array) -> Array:
  """Nearest-neighbour upsampling by a factor of two in height and width.

  Args:
    x: [batch, height, width, channels] input.

  Returns:
    [batch, 2 * height, 2 * width, channels], each pixel copied to a 2x2 block.
  """
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)

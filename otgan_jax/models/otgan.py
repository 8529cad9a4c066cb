"""OT-GAN convolutional generator and critic (Salimans et al., ICLR 2018).

The defaults are the paper's CIFAR-10 networks:

  Generator: z [B, 100] ~ U(-1, 1) -> WNDense(2 * 4 * 4 * 1024) -> GLU ->
    reshape [B, 4, 4, 1024] -> 3 x (2x nearest upsample -> 5x5 WNConv(2C) ->
    GLU) giving 512@8, 256@16, 128@32 -> 5x5 WNConv(3, init_scale=0.1) ->
    tanh -> [B, 32, 32, 3].
  Critic: x [B, 32, 32, 3] -> 4 x (5x5 WNConv(C, stride s) -> CReLU) with
    C = 128, 256, 512, 1024 and s = 1, 2, 2, 2 -> flatten [B, 4 * 4 * 2048] ->
    l2-normalise each row -> features [B, 32768].

No batch or layer normalisation is used; every dense/conv layer is weight
normalised with data-dependent initialisation (see `layers`), so `init` must
be given a representative batch: latent samples for the generator, real images
for the critic.

Other image sizes use the same definitions: the generator's output side is
``base_size * 2 ** (len(widths) - 1)`` (e.g. base 7 with three widths gives
28 px, base 2 with three widths 8 px) and the critic works on any size.

Conditioning (optional, ``num_classes > 0``): the generator concatenates a
one-hot label [B, num_classes] to z; the critic concatenates constant one-hot
label planes [B, H, W, num_classes] to the image channels before the first
conv. Both then require a ``labels`` int [B] argument.
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from otgan_jax.models import layers

Array = jax.Array

_KERNEL_SIZE = 5


def output_size(base_size: int, widths: Sequence[int]) -> int:
  """Side length in pixels of the images a `Generator` produces.

  Args:
    base_size: side of the first feature map after the dense layer.
    widths: channel counts of the feature maps, one per resolution.

  Returns:
    ``base_size * 2 ** (len(widths) - 1)``.
  """
  if not widths:
    raise ValueError('widths must name at least one channel count.')
  return int(base_size) * 2 ** (len(widths) - 1)


def feature_dim(
    image_shape: Sequence[int],
    widths: Sequence[int] = (128, 256, 512, 1024),
    strides: Sequence[int] = (1, 2, 2, 2),
) -> int:
  """Length of the feature vector a `Critic` returns per image.

  Args:
    image_shape: (height, width) or (height, width, channels).
    widths: critic conv channel counts.
    strides: critic conv strides.

  Returns:
    ``h * w * 2 * widths[-1]`` with (h, w) the final spatial size under SAME
    padding (each stride-s conv maps n to ceil(n / s)).
  """
  _check_critic_spec(widths, strides)
  height, width = int(image_shape[0]), int(image_shape[1])
  for stride in strides:
    height = math.ceil(height / stride)
    width = math.ceil(width / stride)
  return height * width * 2 * int(widths[-1])


def _check_critic_spec(widths: Sequence[int], strides: Sequence[int]) -> None:
  if not widths:
    raise ValueError('Critic widths must name at least one channel count.')
  if len(widths) != len(strides):
    raise ValueError(
        f'Critic widths {tuple(widths)} and strides {tuple(strides)} must '
        'have the same length.'
    )


def _check_labels(
    labels: Optional[Array], num_classes: int, batch: int, name: str
) -> None:
  """Raises if ``labels`` does not match the conditioning setting."""
  if num_classes > 0:
    if labels is None:
      raise ValueError(f'{name} has num_classes={num_classes}; pass labels.')
    if labels.shape != (batch,):
      raise ValueError(
          f'{name} labels must have shape ({batch},), got {labels.shape}.'
      )
  elif labels is not None:
    raise ValueError(f'{name} is unconditional (num_classes=0); got labels.')


class Generator(nn.Module):
  """OT-GAN generator: latent vectors to images in [-1, 1].

  Attributes:
    base_size: side of the first feature map (4 for CIFAR-10).
    widths: channels of the feature maps at base_size, 2 * base_size, ...;
      one 2x upsampling block per entry after the first.
    out_channels: image channels (3 for RGB, 1 for greyscale).
    out_init_scale: data-dependent init scale of the last conv.
    num_classes: if > 0, condition on labels (one-hot concatenated to z).
    dtype: computation dtype of the layers (parameters and the returned
      images are float32).
  """

  base_size: int = 4
  widths: Sequence[int] = (1024, 512, 256, 128)
  out_channels: int = 3
  out_init_scale: float = 0.1
  num_classes: int = 0
  dtype: Any = jnp.float32

  @staticmethod
  def output_size(base_size: int, widths: Sequence[int]) -> int:
    """See module-level `output_size`."""
    return output_size(base_size, widths)

  @nn.compact
  def __call__(self, z: Array, labels: Optional[Array] = None) -> Array:
    """Generates images.

    Args:
      z: [batch, z_dim] latent vectors (the paper uses U(-1, 1), z_dim 100).
      labels: [batch] int class labels; required iff num_classes > 0.

    Returns:
      [batch, H, W, out_channels] images in [-1, 1] with
      H = W = base_size * 2 ** (len(widths) - 1).
    """
    if z.ndim != 2:
      raise ValueError(f'Generator expects z of shape [B, D], got {z.shape}.')
    batch = z.shape[0]
    _check_labels(labels, self.num_classes, batch, 'Generator')
    if self.num_classes > 0:
      one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
      z = jnp.concatenate([z, one_hot], axis=-1)

    widths = tuple(int(w) for w in self.widths)
    if not widths:
      raise ValueError('Generator widths must name at least one channel count.')
    base = int(self.base_size)
    dt = self.dtype
    h = layers.WNDense(2 * base * base * widths[0], dtype=dt, name='dense')(z)
    h = layers.glu(h)
    h = h.reshape(batch, base, base, widths[0])
    for i, width in enumerate(widths[1:]):
      # Nearest 2x upsampling, then the conv, in one (fastconv's sub-pixel
      # form: 36 instead of 100 multiply-adds per pixel and channel).
      h = layers.WNConv(2 * width, _KERNEL_SIZE, dtype=dt, upsample=True,
                        name=f'conv_{i}')(h)
      h = layers.glu(h)
    h = layers.WNConv(
        self.out_channels,
        _KERNEL_SIZE,
        init_scale=self.out_init_scale,
        dtype=dt,
        name='conv_out',
    )(h)
    return jnp.tanh(h.astype(jnp.float32))


class Critic(nn.Module):
  """OT-GAN critic: images to l2-normalised feature vectors.

  Attributes:
    widths: output channels of the convs (CReLU then doubles each).
    strides: stride of each conv.
    num_classes: if > 0, condition on labels (one-hot planes concatenated to
      the image channels).
    head: "features" (OT-GAN: l2-normalised features) or "scalar" (one
      weight-normalised linear output on the same features: the critic or
      discriminator of the GAN / WGAN baselines).
    dtype: computation dtype of the convs; the features are cast to float32
      before the l2 normalisation (the OT cost is always float32).
  """

  widths: Sequence[int] = (128, 256, 512, 1024)
  strides: Sequence[int] = (1, 2, 2, 2)
  num_classes: int = 0
  head: str = 'features'
  dtype: Any = jnp.float32

  @staticmethod
  def feature_dim(
      image_shape: Sequence[int],
      widths: Sequence[int] = (128, 256, 512, 1024),
      strides: Sequence[int] = (1, 2, 2, 2),
  ) -> int:
    """See module-level `feature_dim`."""
    return feature_dim(image_shape, widths, strides)

  @nn.compact
  def __call__(self, x: Array, labels: Optional[Array] = None) -> Array:
    """Maps images to unit-norm features.

    Args:
      x: [batch, height, width, channels] images, nominally in [-1, 1].
      labels: [batch] int class labels; required iff num_classes > 0.

    Returns:
      [batch, feature_dim(x.shape[1:], widths, strides)] features with unit
      l2 norm per row; with head="scalar", [batch, 1] scores.
    """
    if x.ndim != 4:
      raise ValueError(f'Critic expects [B, H, W, C] images, got {x.shape}.')
    _check_critic_spec(self.widths, self.strides)
    batch, height, width, _ = x.shape
    _check_labels(labels, self.num_classes, batch, 'Critic')
    if self.num_classes > 0:
      one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
      planes = jnp.broadcast_to(
          one_hot[:, None, None, :], (batch, height, width, self.num_classes)
      )
      x = jnp.concatenate([x, planes], axis=-1)

    h = x
    for i, (channels, stride) in enumerate(zip(self.widths, self.strides)):
      h = layers.WNConv(
          int(channels), _KERNEL_SIZE, strides=int(stride), dtype=self.dtype,
          name=f'conv_{i}'
      )(h)
      h = layers.crelu(h)
    h = h.reshape(batch, -1)
    if self.head == 'scalar':
      return layers.WNDense(1, dtype=self.dtype, name='head')(h).astype(
          jnp.float32)
    if self.head != 'features':
      raise ValueError(f'Critic head must be "features" or "scalar", got '
                       f'{self.head!r}.')
    return l2_normalise(h.astype(jnp.float32))


def l2_normalise(x: Array, eps: float = 1e-12) -> Array:
  """Scales each row of ``x`` to unit l2 norm.

  Args:
    x: [batch, dim] input.
    eps: added to the squared norm, keeping all-zero rows finite.

  Returns:
    [batch, dim] ``x / sqrt(sum(x ** 2) + eps)`` row-wise.
  """
  sq_norm = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(sq_norm + eps)



def sample_latent(rng: Array, batch_size: int, z_dim: int = 100) -> Array:
  """Draws the paper's latent vectors z ~ U(-1, 1)^z_dim.

  Args:
    rng: PRNG key.
    batch_size: number of vectors.
    z_dim: latent dimension.

  Returns:
    [batch_size, z_dim] float32 latent vectors.
  """
  return jax.random.uniform(
      rng, (batch_size, z_dim), minval=-1.0, maxval=1.0, dtype=jnp.float32
  )

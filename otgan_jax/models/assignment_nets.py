"""Paper 004's image networks (`model.name = "assignment_deconv"`).

The authors' paper-era code (artnoage/Optimal-Transport-GAN, September 2019,
`DeconvNew32` / `ConvNew32`, TensorFlow 1), rebuilt from its description:

  generator  z -> dense to base*base*widths[0] -> layer norm -> ReLU ->
             reshape -> for each later width: 5x5 stride-2 transposed conv
             -> layer norm -> ReLU; then a 5x5 stride-2 transposed conv to
             the image channels -> tanh. Widths (256, 128, 64), base 4: 32x32.
  critic     for each width: 5x5 stride-2 conv -> layer norm -> leaky ReLU
             (0.2); flatten -> dense to one score (the baselines' head) or
             the flattened features. Widths (64, 128, 256): 32 -> 4.

As there: Keras' LayerNormalization (over the last axis only: the units of
the dense layer, the channels of each pixel; learned scale and offset,
epsilon 1e-3) and TF1's initialisers (Glorot-uniform kernels, zero biases).
Flax's transposed convolution is TF's up to a flip of the (learned) kernel.
The assigner is `models.assigner.Assigner`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from otgan_jax.models import transposed

_KERNEL_INIT = nn.initializers.xavier_uniform()  # TF1's glorot_uniform
_LN_EPSILON = 1e-3  # Keras' LayerNormalization default


def output_size(base_size: int, widths: Sequence[int]) -> int:
  """Image side: `base_size * 2 ** len(widths)` (one 2x step per layer)."""
  return int(base_size) * 2 ** len(tuple(widths))


class DeconvGenerator(nn.Module):
  """`[B, z_dim]` latents -> `[B, S, S, out_channels]` images in [-1, 1]."""

  base_size: int = 4
  widths: Sequence[int] = (256, 128, 64)
  out_channels: int = 1
  dtype: Any = jnp.float32  # computation (parameters and images: float32)

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if z.ndim != 2:
      raise ValueError(f"Generator expects z of shape [B, D], got {z.shape}.")
    widths = tuple(int(w) for w in self.widths)
    size = int(self.base_size)
    dt = self.dtype
    h = nn.Dense(size * size * widths[0], kernel_init=_KERNEL_INIT,
                 dtype=dt, name="dense")(z)
    h = nn.relu(nn.LayerNorm(epsilon=_LN_EPSILON, dtype=dt,
                             name="ln_dense")(h))
    h = h.reshape(z.shape[0], size, size, widths[0])
    for i, width in enumerate(widths[1:]):
      h = transposed.ConvTranspose(width, (5, 5), strides=(2, 2), padding="SAME",
                           kernel_init=_KERNEL_INIT, dtype=dt,
                           name=f"deconv_{i}")(h)
      h = nn.relu(nn.LayerNorm(epsilon=_LN_EPSILON, dtype=dt,
                               name=f"ln_{i}")(h))
    h = transposed.ConvTranspose(self.out_channels, (5, 5), strides=(2, 2),
                         padding="SAME", kernel_init=_KERNEL_INIT, dtype=dt,
                         name="deconv_out")(h)
    return jnp.tanh(h.astype(jnp.float32))


class ConvCritic(nn.Module):
  """`[B, S, S, C]` images -> `[B, 1]` scores, or `[B, F]` features."""

  widths: Sequence[int] = (64, 128, 256)
  head: str = "scalar"
  dtype: Any = jnp.float32  # computation (parameters and outputs: float32)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i, width in enumerate(self.widths):
      h = nn.Conv(int(width), (5, 5), strides=(2, 2), padding="SAME",
                  kernel_init=_KERNEL_INIT, dtype=self.dtype,
                  name=f"conv_{i}")(h)
      h = nn.LayerNorm(epsilon=_LN_EPSILON, dtype=self.dtype,
                       name=f"ln_{i}")(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(x.shape[0], -1)
    if self.head == "features":
      return h.astype(jnp.float32)
    return nn.Dense(1, kernel_init=_KERNEL_INIT, dtype=self.dtype,
                    name="dense_out")(h).astype(jnp.float32)


def build(model_config: Any, data_shape: Sequence[int], head: str, *,
          get, dtype: Any = jnp.float32) -> tuple[nn.Module, nn.Module]:
  """The (generator, critic) pair for images of `data_shape` `(S, S, C)`."""
  if len(data_shape) != 3 or data_shape[0] != data_shape[1]:
    raise ValueError("model.name='assignment_deconv' needs square images "
                     f"(S, S, C); got data shape {tuple(data_shape)}.")
  if int(get(model_config, "num_classes", 0)) > 0:
    raise ValueError("model.name='assignment_deconv' has no conditional "
                     "form: set model.num_classes=0.")
  gen_cfg = get(model_config, "generator")
  critic_cfg = get(model_config, "critic")
  base_size = int(get(gen_cfg, "base_size", DeconvGenerator.base_size))
  widths = tuple(int(w) for w in get(gen_cfg, "widths",
                                     DeconvGenerator.widths))
  size = output_size(base_size, widths)
  if size != data_shape[0]:
    raise ValueError(
        f"model.name='assignment_deconv': base_size * 2**len(widths) = "
        f"{base_size} * 2**{len(widths)} = {size}, but the images are "
        f"{data_shape[0]}x{data_shape[1]}; e.g. base_size 4 with 3 widths "
        "for 32x32 (data.resize=32).")
  critic_widths = tuple(int(w) for w in get(critic_cfg, "widths",
                                            ConvCritic.widths))
  return (DeconvGenerator(base_size=base_size, widths=widths,
                          out_channels=int(data_shape[2]), dtype=dtype),
          ConvCritic(widths=critic_widths, head=head, dtype=dtype))

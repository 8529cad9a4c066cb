"""Toy MLP generator and critic (OT-GAN paper, section 5.1).

Both are plain ReLU MLPs with Flax's default dense initialisation and no
weight, batch or feature normalisation: the critic's 16-d output is used as
the OT cost's feature space as is.

Conditioning (optional, ``num_classes > 0``): both networks concatenate a
one-hot label [B, num_classes] to their input and then require a ``labels``
int [B] argument.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def _with_labels(
    x: Array, labels: Optional[Array], num_classes: int, name: str
) -> Array:
  """Concatenates a one-hot of ``labels`` to ``x`` when conditioning.

  Args:
    x: [batch, dim] input.
    labels: [batch] int labels, or None; required iff num_classes > 0.
    num_classes: number of classes, 0 for unconditional.
    name: network name for error messages.

  Returns:
    [batch, dim + num_classes] (or ``x`` unchanged when unconditional).
  """
  if num_classes <= 0:
    if labels is not None:
      raise ValueError(f'{name} is unconditional (num_classes=0); got labels.')
    return x
  if labels is None:
    raise ValueError(f'{name} has num_classes={num_classes}; pass labels.')
  if labels.shape != (x.shape[0],):
    raise ValueError(
        f'{name} labels must have shape ({x.shape[0]},), got {labels.shape}.'
    )
  one_hot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  return jnp.concatenate([x, one_hot], axis=-1)


def _relu_mlp(h: Array, hidden: Sequence[int], out_dim: int,
              dtype: Any = jnp.float32) -> Array:
  """Dense + ReLU per hidden width, then a linear output (`dense_i`,
  `dense_out`), computed in `dtype` and returned in float32; call inside a
  compact module's `__call__`."""
  for i, width in enumerate(hidden):
    h = nn.relu(nn.Dense(int(width), dtype=dtype, name=f'dense_{i}')(h))
  return nn.Dense(int(out_dim), dtype=dtype, name='dense_out')(h).astype(
      jnp.float32)


class MLPGenerator(nn.Module):
  """ReLU MLP from latent vectors to data vectors.

  Attributes:
    hidden: widths of the hidden layers, each followed by ReLU.
    out_dim: dimension of the generated vectors (linear output).
    num_classes: if > 0, condition on labels (one-hot concatenated to z).
    dtype: computation dtype (parameters and outputs are float32).
  """

  hidden: Sequence[int] = (256, 128, 128, 128)
  out_dim: int = 2
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: Array, labels: Optional[Array] = None) -> Array:
    """Generates vectors.

    Args:
      z: [batch, z_dim] latent vectors.
      labels: [batch] int class labels; required iff num_classes > 0.

    Returns:
      [batch, out_dim] generated vectors.
    """
    if z.ndim != 2:
      raise ValueError(f'MLPGenerator expects [B, D] input, got {z.shape}.')
    h = _with_labels(z, labels, self.num_classes, 'MLPGenerator')
    return _relu_mlp(h, self.hidden, self.out_dim, self.dtype)


class MLPCritic(nn.Module):
  """ReLU MLP from data vectors to (unnormalised) feature vectors.

  Attributes:
    hidden: widths of the hidden layers, each followed by ReLU.
    features: dimension of the linear feature output.
    num_classes: if > 0, condition on labels (one-hot concatenated to x).
    dtype: computation dtype (parameters and outputs are float32).
  """

  hidden: Sequence[int] = (32, 32, 32)
  features: int = 16
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, labels: Optional[Array] = None) -> Array:
    """Maps vectors to features.

    Args:
      x: [batch, data_dim] data vectors.
      labels: [batch] int class labels; required iff num_classes > 0.

    Returns:
      [batch, features] features, not normalised.
    """
    if x.ndim != 2:
      raise ValueError(f'MLPCritic expects [B, D] input, got {x.shape}.')
    h = _with_labels(x, labels, self.num_classes, 'MLPCritic')
    return _relu_mlp(h, self.hidden, self.features, self.dtype)

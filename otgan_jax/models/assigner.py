"""The assignment method's assigner: a value psi(y) at every real point."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax


class Assigner(nn.Module):
  """MLP from (flattened) real points to one value each.

  The official code's shape: 4 dense layers of 512-1024 units with leaky
  ReLU, then one output.

  Attributes:
    hidden: units of the hidden layers.
  """

  hidden: Sequence[int] = (1024, 1024, 512, 512)

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    """`[m, ...]` real points -> `[m]` values psi."""
    h = y.reshape(y.shape[0], -1)
    for i, width in enumerate(self.hidden):
      h = nn.leaky_relu(nn.Dense(int(width), name=f"dense_{i}")(h), 0.2)
    return nn.Dense(1, name="dense_out")(h)[:, 0]

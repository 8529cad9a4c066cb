"""The baselines' adversarial losses: GAN (DCGAN), WGAN and WGAN-GP.

Each function returns `(critic_loss, generator_loss)` to be MINIMISED by the
critic (discriminator) and the generator respectively, from the critic's
scalar outputs on a real and a generated batch.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def nonsaturating_gan_losses(real_logits: Array, fake_logits: Array
                             ) -> tuple[Array, Array]:
  """Goodfellow et al.'s GAN with the non-saturating generator loss (DCGAN).

  Args:
    real_logits: `[n]` or `[n, 1]` discriminator logits on real examples.
    fake_logits: `[m]` or `[m, 1]` logits on generated examples.

  Returns:
    `(-E log D(x) - E log(1 - D(G(z))), -E log D(G(z)))` with D = sigmoid.
  """
  critic = (jnp.mean(jax.nn.softplus(-real_logits))
            + jnp.mean(jax.nn.softplus(fake_logits)))
  generator = jnp.mean(jax.nn.softplus(-fake_logits))
  return critic, generator


def wasserstein_losses(real_scores: Array, fake_scores: Array
                       ) -> tuple[Array, Array]:
  """WGAN (Arjovsky et al.): the critic maximises E f(x) - E f(G(z)).

  Returns:
    `(E f(G(z)) - E f(x), -E f(G(z)))`.
  """
  critic = jnp.mean(fake_scores) - jnp.mean(real_scores)
  return critic, -jnp.mean(fake_scores)


def gradient_penalty(critic_fn: Callable[[Array], Array], real: Array,
                     fake: Array, rng: Array) -> Array:
  """WGAN-GP's penalty `E (||grad_x f(x_hat)||_2 - 1)^2` (Gulrajani et al.).

  Args:
    critic_fn: maps a batch `[n, ...]` to scores `[n]` or `[n, 1]`; each
      score must depend on its own example only.
    real: `[n, ...]` real examples.
    fake: `[n, ...]` generated examples.
    rng: PRNG key for the interpolation weights.

  Returns:
    The scalar penalty, at `x_hat = t x + (1 - t) G(z)`, `t ~ U[0, 1]` per
    example.
  """
  t = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = t * real + (1.0 - t) * fake
  # Scores are per example, so the gradient of their sum is each example's.
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
  norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)),
                           axis=1) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))


def clip_weights(params, clip_value: float):
  """WGAN's weight clipping to `[-clip_value, clip_value]`."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)

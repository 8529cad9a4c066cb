"""The adversarial baselines' losses against their formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from otgan_jax.losses import gan


def test_gan_and_wasserstein_losses_match_their_formulas():
  real = jnp.array([2.0, -1.0, 0.5])
  fake = jnp.array([-0.3, 1.5])
  sig = lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))
  d, g = gan.nonsaturating_gan_losses(real, fake)
  np.testing.assert_allclose(
      float(d), -np.mean(np.log(sig(real))) - np.mean(np.log(1 - sig(fake))),
      rtol=1e-6)
  np.testing.assert_allclose(float(g), -np.mean(np.log(sig(fake))), rtol=1e-6)
  d, g = gan.wasserstein_losses(real, fake)
  np.testing.assert_allclose(float(d), np.mean(fake) - np.mean(real),
                             rtol=1e-6)
  np.testing.assert_allclose(float(g), -np.mean(fake), rtol=1e-6)


def test_gradient_penalty_of_a_linear_critic():
  # f(x) = w . x has gradient w everywhere: the penalty is (|w| - 1)^2.
  rng = np.random.default_rng(0)
  real = jnp.asarray(rng.normal(size=(16, 3, 2)), jnp.float32)
  fake = jnp.asarray(rng.normal(size=(16, 3, 2)), jnp.float32)
  for scale in (1.0, 3.0):
    w = jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)
    w = scale * w / jnp.linalg.norm(w)
    critic = lambda x, w=w: jnp.sum(x * w, axis=(1, 2))[:, None]
    penalty = gan.gradient_penalty(critic, real, fake, jax.random.key(1))
    np.testing.assert_allclose(float(penalty), (scale - 1.0) ** 2, atol=1e-5)


def test_clip_weights():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array(0.3)}}
  out = gan.clip_weights(params, 0.01)
  np.testing.assert_allclose(np.asarray(out["a"]), [-0.01, 0.005, 0.01])
  np.testing.assert_allclose(float(out["b"]["c"]), 0.01)

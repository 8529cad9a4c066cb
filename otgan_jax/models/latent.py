"""Latent distributions: the papers' uniform one and paper 004's mixture.

`model.latent` picks one:

  uniform   z ~ U(-1, 1)^z_dim (OT-GAN, the baselines).
  mixture   paper 004's "collection of Gaussians with small variance": K
            fixed centres c_k ~ N(0, I_z_dim) drawn once per run, and
            z = c_k + sigma * N(0, I) with k uniform over the centres and no
            centre twice within one draw of `num` latents (the authors'
            code shuffles the 50,000 centres and takes the first batch
            of 400, so a latent batch repeats no component).

The centres depend only on `config.seed`: centre k is
`normal(fold_in(key(seed) ^ tag, k))`, so a draw computes only the centres it
uses (no [K, z_dim] table in memory or in checkpoints), and training,
sampling and a restored run see the same mixture.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from otgan_jax.models import otgan as otgan_models

LATENTS = ("uniform", "mixture")
# Keeps the centres' key apart from the other uses of config.seed.
_CENTER_TAG = 0x6C6174  # "lat"

Sampler = Callable[[jax.Array, int], jax.Array]


def _get(config: Any, key: str, default: Any) -> Any:
  value = config.get(key, default) if hasattr(config, "get") else default
  return default if value is None else value


def mixture_centers(index: jax.Array, *, seed: int, z_dim: int) -> jax.Array:
  """`[len(index), z_dim]` centres c_k of the mixture, by component index."""
  base = jax.random.fold_in(jax.random.key(seed), _CENTER_TAG)
  return jax.vmap(lambda k: jax.random.normal(
      jax.random.fold_in(base, k), (z_dim,), jnp.float32))(index)


def sample_mixture(rng: jax.Array, num: int, *, z_dim: int,
                   num_components: int, sigma: float, seed: int
                   ) -> tuple[jax.Array, jax.Array]:
  """`num` latents of the mixture and their component indices.

  Args:
    rng: PRNG key of this draw.
    num: latents to draw; at most `num_components` (no repeats).
    z_dim: latent dimension.
    num_components: K, the number of fixed centres.
    sigma: standard deviation around each centre.
    seed: the run's seed (fixes the centres).

  Returns:
    `z [num, z_dim]` float32 and `index [num]` int32, distinct.
  """
  if num > num_components:
    raise ValueError(
        f"A draw of {num} mixture latents cannot avoid repeating one of the "
        f"{num_components} components: draw at most model.latent_components "
        "latents at a time (or raise it).")
  pick_rng, noise_rng = jax.random.split(rng)
  index = jax.random.choice(pick_rng, num_components, (num,), replace=False)
  index = index.astype(jnp.int32)
  noise = jax.random.normal(noise_rng, (num, z_dim), jnp.float32)
  return mixture_centers(index, seed=seed, z_dim=z_dim) + sigma * noise, index


def check(model_config: Any) -> None:
  """Raises ValueError on an unknown latent or bad mixture settings."""
  name = _get(model_config, "latent", "uniform")
  if name not in LATENTS:
    raise ValueError(f"Unknown model.latent {name!r}: choose from {LATENTS}.")
  if name == "mixture":
    if int(_get(model_config, "latent_components", 0)) < 1:
      raise ValueError("model.latent_components must be positive.")
    if float(_get(model_config, "latent_sigma", 0.0)) < 0:
      raise ValueError("model.latent_sigma must be >= 0.")


def sampler(model_config: Any, *, seed: int) -> Sampler:
  """`sample(rng, num) -> [num, z_dim]` for `model_config.latent`."""
  check(model_config)
  z_dim = int(model_config.z_dim)
  if _get(model_config, "latent", "uniform") == "uniform":
    return lambda rng, num: otgan_models.sample_latent(rng, num, z_dim)
  num_components = int(model_config.latent_components)
  sigma = float(model_config.latent_sigma)

  def sample(rng: jax.Array, num: int) -> jax.Array:
    return sample_mixture(rng, num, z_dim=z_dim,
                          num_components=num_components, sigma=sigma,
                          seed=seed)[0]

  return sample

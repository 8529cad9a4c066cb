"""otgan_jax: generative models trained with optimal transport, in JAX/Flax."""

__version__ = "0.1.0"

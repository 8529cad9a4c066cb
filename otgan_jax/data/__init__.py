"""Data sets for training: deterministic, shardable streams of raw examples."""

from otgan_jax.data.base import DataError
from otgan_jax.data.base import DatasetInfo
from otgan_jax.data.base import denormalize
from otgan_jax.data.base import normalize
from otgan_jax.data.base import Source
from otgan_jax.data.sources import ArraySource
from otgan_jax.data.sources import build_source
from otgan_jax.data.synthetic import GaussianMixtureSource
from otgan_jax.data.synthetic import mode_centers

__all__ = [
    "ArraySource",
    "DataError",
    "DatasetInfo",
    "GaussianMixtureSource",
    "Source",
    "build_source",
    "denormalize",
    "mode_centers",
    "normalize",
]

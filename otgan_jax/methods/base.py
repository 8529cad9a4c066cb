"""The protocol every training method implements, and what all of them share.

A method is a `Method` subclass registered under its `config.method` name
(`otgan_jax.methods.register`). The generic code calls, in this order:

1. `config_sections()` (class method): the config sections the method owns,
   with their defaults and comments; `configs/common.py` adds them to every
   config, and a key of a section the configured method does not read is
   refused when the user changed it (`Experiment`).
2. `Method(config, info, mesh)`: checks the method's own settings
   (`check_config`), builds its two networks (`build_networks`) and their
   optimizers.
3. `batch_spec`: the real batches the loop reads per step (None: none).
4. `prepare(source, workdir, fresh=...)`: one-off host-side work that yields
   the method's *constants*: arrays computed once and never trained (POT-GAN's
   frozen VAE encoder, the assignment method's fixed real set), or None.
5. `init_state(rng, real, labels)`: the initial `TrainState` (pure).
6. `train_step(state, batch, rng, constants)`: one step (pure; `Experiment`
   jits it once with the state's shardings and donates the state).
7. `nonfinite_advice()`: what to change when a metric became NaN or infinite;
   `memory_advice()`: what to change when the compiled step needs more
   memory than the devices have (`otgan_jax.device_memory`).

Constants are held one way for every method: replicated on the mesh, passed
to the jitted step as an argument of their own that is never donated (the
same buffers serve every step), and never written into checkpoints. At every
start `prepare` derives them again (from the data, or from a hash-checked
file), and `Experiment.prepare` checks their sha256 against the one recorded
in `<workdir>/constants.json` when the run began, so a resumed run trains on
exactly the constants it started with, or stops with an error saying why.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from otgan_jax import data as data_lib
from otgan_jax import models as models_lib
from otgan_jax.models import latent as latent_lib
from otgan_jax import sharding as sharding_lib
from otgan_jax import train_state as train_state_lib
from otgan_jax.train_state import TrainState

Constants = Any  # A pytree of arrays, or None.
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class BatchSpec:
  """The real data of one train step: `x [num_updates, draws, n, ...]`.

  Attributes:
    num_updates: network updates that each read their own real batches.
    draws: independent real batches of size n per update (OT-GAN: X and X').
    labels: also read the labels (`"label": [num_updates, draws, n]`).
  """
  num_updates: int
  draws: int
  labels: bool = False


class Method:
  """Base class of the training methods (see the module docstring).

  Class attributes a subclass sets:
    name: its `config.method`.
    critic_head: the head `models.build_models` gives the second network
      ("features" or "scalar"); the method decides it, not the user.
    conditional: whether it trains class-conditional networks
      (`model.num_classes > 0`).
    legacy_keys: `{old dotted key: new dotted key}` of keys that moved into
      its section, so run folders written before still load.
    latents: the `model.latent` values its train step draws through
      `self.sample_latent` (others are refused).
  """

  name: ClassVar[str] = ""
  critic_head: ClassVar[str] = "features"
  conditional: ClassVar[bool] = False
  legacy_keys: ClassVar[dict[str, str]] = {}
  latents: ClassVar[tuple[str, ...]] = ("uniform",)

  @classmethod
  def config_sections(cls) -> dict[str, ml_collections.ConfigDict]:
    """`{section name: defaults}` of the config sections it owns."""
    return {}

  def __init__(self, config: ml_collections.ConfigDict,
               info: data_lib.DatasetInfo, mesh: jax.sharding.Mesh):
    self.config = config
    self.info = info
    self.mesh = mesh
    self.constrain = sharding_lib.batch_constraint(mesh)
    self.check_config()
    # `sample_latent(rng, num) -> [num, z_dim]`: the latent of training and
    # of every sample (`Experiment.generate`).
    self.sample_latent = latent_lib.sampler(config.model, seed=config.seed)
    self.generator, self.critic = self.build_networks()
    self.gen_tx = train_state_lib.make_optimizer(config.optim.generator)
    self.critic_tx = train_state_lib.make_optimizer(config.optim.critic)

  # -- Set-up ----------------------------------------------------------------

  def check_config(self) -> None:
    """Raises ValueError, saying what to set, on settings it cannot use."""
    if self.config.model.num_classes > 0 and not self.conditional:
      raise ValueError(
          f"config.method={self.name!r} does not train class-conditional "
          "networks: set --config.model.num_classes=0 (conditional training "
          "is implemented for OT-GAN, Algorithm 2).")
    latent = self.config.model.get("latent", "uniform")
    if latent not in self.latents:
      raise ValueError(
          f"config.method={self.name!r} draws its latents from "
          f"{' | '.join(self.latents)}, not model.latent={latent!r}.")

  def build_networks(self) -> tuple[nn.Module, nn.Module]:
    """The generator and the second network (critic, assigner...)."""
    return models_lib.build_models(self.config.model, self.info.shape,
                                   head=self.critic_head)

  @property
  def batch_spec(self) -> BatchSpec | None:
    """The real batches one step reads; None if it reads none."""
    return BatchSpec(num_updates=1, draws=1)

  def prepare(self, source, workdir: str, *, fresh: bool) -> Constants:
    """One-off host-side preparation; returns the method's constants.

    Args:
      source: the training data source.
      workdir: the run's folder (files the method writes go here).
      fresh: True when the run starts from scratch, False on resume.

    Returns:
      A pytree of host arrays (replicated on the mesh by the caller) or None.
    """
    del source, workdir, fresh
    return None

  def init_state(self, rng: jax.Array, real: jax.Array,
                 labels: jax.Array | None) -> TrainState:
    """The initial state from normalised reals `[m, ...]` (pure)."""
    return train_state_lib.init_state(
        rng, real, generator=self.generator, critic=self.critic,
        gen_tx=self.gen_tx, critic_tx=self.critic_tx,
        z_dim=self.config.model.z_dim, labels=labels)

  # -- Training --------------------------------------------------------------

  def train_step(self, state: TrainState, batch: dict[str, jax.Array] | None,
                 rng: jax.Array, constants: Constants
                 ) -> tuple[TrainState, Metrics]:
    """One train step (pure): the new state and scalar metrics."""
    raise NotImplementedError

  def nonfinite_advice(self) -> str:
    """Settings to try after a NaN or infinite metric."""
    return ("Consider lower learning rates (--config.optim.generator."
            "learning_rate, --config.optim.critic.learning_rate) or checking "
            "the data range.")

  def memory_advice(self) -> str:
    """Settings to try when the compiled step does not fit the devices."""
    return ("Lower --config.batch_size, or spread the batch over more "
            "devices (the data axis of config.mesh).")

  # -- Helpers for subclasses ------------------------------------------------

  def normalize(self, x: jax.Array) -> jax.Array:
    """Raw examples to the networks' range [-1, 1]."""
    return data_lib.normalize(x, self.info)

  @staticmethod
  def barrier(name: str) -> None:
    """All processes wait here (a no-op with one process)."""
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(name)


def host_array(x) -> np.ndarray:
  """A float32 numpy copy (constants are built on the host)."""
  return np.asarray(x, np.float32)

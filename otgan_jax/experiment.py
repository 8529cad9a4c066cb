"""`Experiment`: everything built from a config that training and the tools need.

The data source, the networks, their optimizers, the device mesh, the
state's shapes and shardings, and the jitted train step of the configured
method (`config.method`: OT-GAN, the adversarial baselines, POT-GAN or the
assignment method).
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from otgan_jax import assignment_steps
from otgan_jax import data as data_lib
from otgan_jax import gan_steps
from otgan_jax import losses
from otgan_jax import models as models_lib
from otgan_jax import sharding as sharding_lib
from otgan_jax import steps
from otgan_jax import train_state as train_state_lib
from otgan_jax.losses import potgan as potgan_losses
from otgan_jax.models import forest as forest_lib
from otgan_jax.models import vae as vae_lib

BATCH_AXIS = 2  # batch["x"] is [num_updates, draws, n, ...]


class BatchSpec(NamedTuple):
  num_updates: int
  draws: int
  labels: bool


class Experiment:
  """Everything built from a config that the loop and the tools need."""

  def __init__(self, config: ml_collections.ConfigDict,
               info: data_lib.DatasetInfo | None = None,
               devices: list[jax.Device] | None = None):
    """Builds everything.

    Args:
      config: the experiment config.
      info: the dataset's info; when given, no data is read (for sampling).
      devices: the devices of the mesh (default: all, on every process).
    """
    self.config = config
    self.source = None
    if info is None:
      self.source = data_lib.build_source(config.data, seed=config.seed)
      info = self.source.info
    self.info = info
    self.generator, self.critic = models_lib.build_models(
        config.model, self.info.shape)
    if config.method == "assignment":  # The critic is the assigner psi.
      self.critic = models_lib.Assigner(
          hidden=tuple(config.assignment.assigner_hidden))
    self.gen_tx = train_state_lib.make_optimizer(config.optim.generator)
    self.critic_tx = train_state_lib.make_optimizer(config.optim.critic)
    self.mesh = sharding_lib.make_mesh(config.mesh.shape,
                                       config.mesh.axis_names, devices)
    self.method = config.method
    _check_method(config)
    if self.method == "otgan":  # 1 critic + n_gen generator updates on X, X'.
      self.num_updates, self.draws = config.optim.n_gen + 1, 2
    else:  # n_critic critic updates on one real batch each (the assignment
      # method reads its reals once, not per step: one small unused batch).
      self.num_updates, self.draws = (
          1 if self.method == "assignment" else config.baseline.n_critic, 1)
    self._generators = {}
    self._reals = None
    self.pot = _pot_settings(config, self.info) if (
        config.method == "potgan") else None
    self.conditional = config.model.num_classes > 0
    if self.conditional and self.info.num_classes not in (
        None, config.model.num_classes):
      raise ValueError(
          f"config.model.num_classes={config.model.num_classes} but "
          f"{self.info.name} has {self.info.num_classes} classes; set "
          f"--config.model.num_classes={self.info.num_classes} (or 0 for "
          "unconditional training).")
    _check_batch_size(config, sharding_lib.data_parallel_size(self.mesh))

  @property
  def batch_spec(self) -> "BatchSpec":
    """What the loop reads per step: updates, draws per update, labels."""
    return BatchSpec(self.num_updates, self.draws, self.conditional)

  def prepare(self, workdir: str):
    """One-off host-side preparation; returns what `init_state` takes."""
    if self.method != "potgan":
      return None
    path = self.config.potgan.encoder_path or os.path.join(
        workdir, "vae_encoder.npz")
    if not self.config.potgan.encoder_path and not os.path.exists(path):
      self.train_encoder(path)
    return self.load_encoder(path)

  def abstract_state(self) -> train_state_lib.TrainState:
    """Shapes, dtypes and (replicated) shardings of the state, no compute."""
    num = self.config.model.init_batch_size
    init_real = jax.ShapeDtypeStruct((num,) + tuple(self.info.shape),
                                     jnp.float32)
    init_labels = (jax.ShapeDtypeStruct((num,), jnp.int32)
                   if self.conditional else None)
    encoder = None
    if self.method == "potgan":
      encoder = jax.eval_shape(self._vae_encoder_init, jax.random.key(0))
    shapes = jax.eval_shape(self._init_fn, jax.random.key(0), init_real,
                            init_labels, encoder)
    shardings = sharding_lib.state_sharding(self.mesh, shapes,
                                            fsdp=self.config.mesh.fsdp)
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
        shapes, shardings)

  def _init_fn(self, rng, real, labels=None, encoder=None):
    state = train_state_lib.init_state(
        rng, real, generator=self.generator, critic=self.critic,
        gen_tx=self.gen_tx, critic_tx=self.critic_tx,
        z_dim=self.config.model.z_dim, labels=labels)
    if self.method == "potgan":
      latent = jnp.zeros((1, self.config.potgan.latent_dim))
      forest = self.pot.forest.init(jax.random.fold_in(rng, 7), latent)
      state = state.replace(extra={"forest": forest, "encoder": encoder})
    return state

  def _vae_encoder_init(self, rng):
    x = jnp.zeros((1,) + tuple(self.info.shape))
    params = self.pot.encoder.init(rng, x, rng)
    return {"params": {"encoder": params["params"]["encoder"]}}

  def load_encoder(self, path: str):
    """The frozen VAE encoder of POT-GAN, hash-checked and shape-checked."""
    params, _ = vae_lib.load_encoder(path)
    want = jax.eval_shape(self._vae_encoder_init, jax.random.key(0))
    got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                       params)
    if jax.tree.structure(want) != jax.tree.structure(got) or any(
        a.shape != b.shape for a, b in zip(jax.tree.leaves(want),
                                           jax.tree.leaves(got))):
      raise ValueError(
          f"The encoder in {path} does not match this config's VAE "
          f"(config.potgan.latent_dim={self.config.potgan.latent_dim}, data "
          f"{self.info.shape}); pass a matching --config.potgan.encoder_path "
          "or leave it empty to train one.")
    return params

  def train_encoder(self, path: str):
    """Pretrains POT-GAN's VAE on the training data; saves its encoder."""
    c = self.config.potgan
    num = getattr(self.source, "num_examples", None) or c.vae_examples
    data = data_lib.normalize(
        self.source.sample(0, min(num, c.vae_examples))["x"], self.info)
    logging.info("POT-GAN: training the VAE (%d steps on %d examples) ...",
                 c.vae_steps, len(data))
    params = vae_lib.train_vae(
        np.asarray(data, np.float32), model=self.pot.encoder,
        steps=c.vae_steps, batch_size=c.vae_batch_size,
        learning_rate=c.vae_learning_rate, seed=self.config.seed)
    # Written beside, then moved into place (the .npz last): an interrupted
    # save never leaves a file that looks complete.
    tmp_dir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)))
    tmp = os.path.join(tmp_dir, os.path.basename(path))
    vae_lib.save_encoder(tmp, params, {
        "vae": vae_lib.vae_config(self.pot.encoder), "data": self.info.name,
        "steps": c.vae_steps})
    os.replace(tmp + ".sha256", path + ".sha256")
    os.replace(tmp, path)
    os.rmdir(tmp_dir)
    logging.info("POT-GAN: encoder saved to %s", path)

  def init_state(self, encoder=None) -> train_state_lib.TrainState:
    """Fresh state, weight norm initialised on a deterministic real batch.

    Args:
      encoder: POT-GAN's frozen encoder params (`load_encoder`); else None.
    """
    num = self.config.model.init_batch_size
    # Draws from far past any training step, so init data is its own sample.
    sample = self.source.sample(2**30, num)
    real = data_lib.normalize(sample["x"], self.info)
    labels = (np.asarray(sample["label"], np.int32) if self.conditional
              else None)
    rep = sharding_lib.replicated(self.mesh)
    init = jax.jit(self._init_fn, out_shardings=jax.tree.map(
        lambda s: s.sharding, self.abstract_state()))
    rng = jax.random.fold_in(jax.random.key(self.config.seed), 0)
    if self.method == "potgan" and encoder is None:
      raise ValueError("POT-GAN needs its VAE encoder: init_state(encoder="
                       "exp.load_encoder(path)).")
    return init(rng, jax.device_put(real, rep), jax.device_put(labels, rep),
                jax.device_put(encoder, rep))

  def jit_train_step(self):
    c = self.config
    if self.method == "otgan":
      step_fn = self._otgan_step()
    elif self.method == "assignment":
      return self._assignment_step()
    else:
      step_fn = functools.partial(
          gan_steps.train_step, generator=self.generator, critic=self.critic,
          gen_tx=self.gen_tx, critic_tx=self.critic_tx, info=self.info,
          z_dim=c.model.z_dim, loss=self.method,
          gp_weight=c.baseline.gp_weight, clip_value=c.baseline.clip_value,
          ema_decay=c.optim.ema_decay, pot=self.pot)
    rep = sharding_lib.replicated(self.mesh)
    state_sharding = jax.tree.map(lambda s: s.sharding, self.abstract_state())
    batch_sharding = {"x": self.batch_sharding()}
    if self.conditional:
      batch_sharding["label"] = self.batch_sharding()
    return jax.jit(
        step_fn,
        in_shardings=(state_sharding, batch_sharding, rep),
        out_shardings=(state_sharding, rep),
        donate_argnums=0)

  def assignment_reals(self) -> jax.Array:
    """The assignment method's real points, normalised, replicated."""
    if self._reals is None:
      num = self.config.assignment.num_reals
      size = getattr(self.source, "num_examples", None)
      if size is not None and num > size:
        raise ValueError(f"config.assignment.num_reals={num} but "
                         f"{self.info.name} has {size} examples.")
      # A fixed subset: the first `num` of the seed's epoch-0 order.
      x = data_lib.normalize(self.source.sample(0, num)["x"], self.info)
      self._reals = jax.device_put(np.asarray(x, np.float32),
                                   sharding_lib.replicated(self.mesh))
    return self._reals

  def _assignment_step(self):
    c, a = self.config, self.config.assignment
    steps_per_pass = a.count_samples // c.batch_size
    step_fn = functools.partial(
        assignment_steps.train_step, generator=self.generator,
        assigner=self.critic, gen_tx=self.gen_tx, assigner_tx=self.critic_tx,
        z_dim=c.model.z_dim, count_samples=a.count_samples,
        assigner_steps=a.assigner_steps,
        generator_steps=a.generator_steps or steps_per_pass,
        batch_size=c.batch_size, assigner_cost=a.assigner_cost,
        generator_cost=a.generator_cost, chunk_size=a.chunk_size,
        ema_decay=c.optim.ema_decay,
        constrain=steps.batch_constraint(self.mesh))
    rep = sharding_lib.replicated(self.mesh)
    state_sharding = jax.tree.map(lambda s: s.sharding, self.abstract_state())
    jitted = jax.jit(step_fn, in_shardings=(
        state_sharding, {"x": self.batch_sharding()}, rep, rep),
                     out_shardings=(state_sharding, rep), donate_argnums=0)
    reals = self.assignment_reals()
    def step(state, batch, rng):
      return jitted(state, batch, rng, reals)
    step._cache_size = jitted._cache_size  # pylint: disable=protected-access
    return step

  def _otgan_step(self):
    c = self.config
    return functools.partial(
        steps.train_step, generator=self.generator, critic=self.critic,
        gen_tx=self.gen_tx, critic_tx=self.critic_tx, info=self.info,
        z_dim=c.model.z_dim, ot_kwargs=ot_kwargs(c.ot),
        ema_decay=c.optim.ema_decay,
        freeze_critic_at_step=c.optim.freeze_critic_at_step,
        random_flip=c.data.random_flip, chunk_size=c.optim.chunk_size,
        mesh=self.mesh, conditional=self.conditional)

  def batch_sharding(self):
    return sharding_lib.batch_sharding(self.mesh, BATCH_AXIS)

  def sample(self, params, num: int, rng: jax.Array, *, chunk: int = 1000
             ) -> np.ndarray:
    """`num` samples (float32, data range) from `params`, `chunk` per call."""
    chunk = max(1, min(chunk, num))
    generate = self._generators.get(chunk)
    if generate is None:
      generate = self._generators[chunk] = self.jit_generate(chunk)
    parts = [np.asarray(generate(params, jax.random.fold_in(rng, i)))
             for i in range(-(-num // chunk))]
    return np.concatenate(parts)[:num].astype(np.float32)

  def jit_generate(self, num: int):
    return jax.jit(functools.partial(
        steps.generate, generator=self.generator, num=num,
        z_dim=self.config.model.z_dim, info=self.info,
        num_classes=self.config.model.num_classes),
        out_shardings=sharding_lib.replicated(self.mesh))


METHODS = ("otgan",) + gan_steps.LOSSES + ("assignment",)


def _pot_settings(config, info) -> gan_steps.PotSettings:
  c = config.potgan
  if info.is_image:
    encoder = vae_lib.ConvVAE(image_shape=tuple(info.shape),
                              latent_dim=c.latent_dim)
  else:
    encoder = vae_lib.MLPVAE(data_dim=int(info.shape[0]),
                             latent_dim=c.latent_dim)
  forest = forest_lib.LatentTransformationForest(
      num_trees=c.forest_trees, depth=c.forest_depth, out_dim=c.latent_dim,
      seed=config.seed)
  if c.assignment not in potgan_losses.ASSIGNMENTS:
    raise ValueError(f"config.potgan.assignment must be one of "
                     f"{potgan_losses.ASSIGNMENTS}, got {c.assignment!r}.")
  return gan_steps.PotSettings(
      encoder=encoder, forest=forest, weight=c.weight,
      forest_steps=c.forest_steps,
      forest_learning_rate=c.forest_learning_rate, assignment=c.assignment)


def _check_method(config) -> None:
  method, head = config.method, config.model.critic.head
  if method not in METHODS:
    raise ValueError(f"Unknown config.method {method!r}: use one of "
                     f"{METHODS}.")
  want = "features" if method == "otgan" else "scalar"
  if head != want and method != "assignment":
    raise ValueError(f"config.method={method!r} needs a critic with "
                     f"head={want!r}: set --config.model.critic.head={want}.")
  if method != "otgan" and config.model.num_classes > 0:
    raise ValueError("Conditional training (model.num_classes > 0) is "
                     "implemented for OT-GAN only (Algorithm 2).")
  if method != "otgan" and config.baseline.n_critic < 1:
    raise ValueError("config.baseline.n_critic must be at least 1.")
  if method == "assignment":
    a = config.assignment
    if a.count_samples < config.batch_size:
      raise ValueError(
          f"config.assignment.count_samples={a.count_samples} must be at "
          f"least config.batch_size={config.batch_size} (the generator's "
          "mini-batches are drawn from the assigned samples).")
    if a.assigner_steps < 1 or a.chunk_size < 1:
      raise ValueError("config.assignment.assigner_steps and chunk_size must "
                       "be positive.")


def ot_kwargs(ot: ml_collections.ConfigDict) -> dict[str, Any]:
  return dict(epsilon=ot.epsilon, num_iterations=ot.num_iterations,
              threshold=ot.threshold, cost=ot.cost, matching=ot.matching)


def losses_fn(config: ml_collections.ConfigDict):
  """`minibatch_energy_distance` with the config's OT settings bound."""
  return functools.partial(losses.minibatch_energy_distance,
                           **ot_kwargs(config.ot))


def _check_batch_size(config, num_data_shards: int) -> None:
  n = config.batch_size
  if n <= 0:
    raise ValueError(f"config.batch_size must be positive, got {n}.")
  if n % num_data_shards or n % jax.process_count():
    lower = n // num_data_shards * num_data_shards
    raise ValueError(
        f"config.batch_size={n} cannot be split evenly over the "
        f"{num_data_shards} devices of the mesh's data axis "
        f"({jax.process_count()} processes): use a multiple of "
        f"{num_data_shards}, e.g. --config.batch_size={max(lower, num_data_shards)}"
        f" or {lower + num_data_shards}.")
  chunk = config.optim.chunk_size
  if chunk > 0 and chunk < n and (n % chunk or chunk % num_data_shards):
    raise ValueError(
        f"config.optim.chunk_size={chunk} must divide config.batch_size={n} "
        f"and be a multiple of the {num_data_shards} data-parallel devices; "
        "use 0 to switch chunking off.")
  if config.model.init_batch_size <= 1:
    raise ValueError("config.model.init_batch_size must be at least 2 (the "
                     "weight-norm init needs batch statistics).")

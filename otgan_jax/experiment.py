"""`Experiment`: everything built from a config that training and the tools need.

The data source, the device mesh, the configured training method
(`config.method`, looked up in `otgan_jax.methods`) with its networks and
optimizers, the state's shapes and shardings, the method's constants on the
mesh, and its train step jitted once with those shardings. Nothing here
depends on which method it is.
"""

from __future__ import annotations

import functools

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from otgan_jax import config_checks
from otgan_jax import data as data_lib
from otgan_jax import device_memory
from otgan_jax import methods
from otgan_jax import sharding as sharding_lib
from otgan_jax import train_state as train_state_lib
from otgan_jax import workdir as workdir_lib

BATCH_AXIS = 2  # batch["x"] is [num_updates, draws, n, ...]
# The initialisation runs once: on CPU it compiles without LLVM's
# optimisations (configs/baselines_mnist.py:gan,smoke's init: 8.5 -> 2.8 s to
# compile, 0.5 -> 0.7 s to run; the values equal the optimised build's to
# float32 round-off, 4.8e-7).
RUN_ONCE_CPU_OPTIONS = {"xla_backend_optimization_level": 0,
                        "xla_llvm_disable_expensive_passes": True}


class Experiment:
  """Everything built from a config that the loop and the tools need.

  Attributes:
    config: the experiment config.
    source: the training data (None when built from a dataset info only).
    info: the data's shape and range.
    mesh: the device mesh.
    method: the training method (`methods.Method`).
    generator: the method's generator module.
    batch_spec: the real batches one step reads (`methods.BatchSpec`), or
      None for a method that reads none.
  """

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
    method_cls = methods.get(config.method)
    methods.check_sections(config)
    self.source = None
    if info is None:
      self.source = data_lib.build_source(config.data, seed=config.seed)
      info = self.source.info
    self.info = info
    self.mesh = sharding_lib.make_mesh(config.mesh.shape,
                                       config.mesh.axis_names, devices)
    _check_batch_size(config, sharding_lib.data_parallel_size(self.mesh))
    _check_loop_settings(config)
    classes = config.model.num_classes
    if classes > 0 and info.num_classes not in (None, classes):
      raise ValueError(
          f"config.model.num_classes={classes} but {info.name} has "
          f"{info.num_classes} classes; set --config.model.num_classes="
          f"{info.num_classes} (or 0 for unconditional training).")
    self.method = method_cls(config, info, self.mesh)
    self.generator = self.method.generator
    self.batch_spec = self.method.batch_spec
    self._generators = {}
    size = info.num_examples
    if (self.source is not None and self.batch_spec is not None and size
        and config.batch_size > size):
      logging.warning(
          "config.batch_size=%d is larger than the %d examples of %s: each "
          "real batch holds some examples more than once (the data stream "
          "runs through more than one epoch per batch).",
          config.batch_size, size, info.name)

  # -- State -----------------------------------------------------------------

  def _init_inputs(self, real, labels):
    return (jax.random.fold_in(jax.random.key(self.config.seed), 0), real,
            labels)

  def abstract_state(self) -> train_state_lib.TrainState:
    """Shapes, dtypes and shardings of the state, no compute."""
    num = self.config.model.init_batch_size
    real = jax.ShapeDtypeStruct((num,) + tuple(self.info.shape), jnp.float32)
    labels = (jax.ShapeDtypeStruct((num,), jnp.int32)
              if self.config.model.num_classes > 0 else None)
    shapes = jax.eval_shape(self.method.init_state,
                            *self._init_inputs(real, labels))
    shardings = sharding_lib.state_sharding(self.mesh, shapes,
                                            fsdp=self.config.mesh.fsdp)
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
        shapes, shardings)

  def init_state(self, real=None, labels=None) -> train_state_lib.TrainState:
    """Fresh state, weight norm initialised on a deterministic real batch.

    Args:
      real: the `[config.model.init_batch_size, *info.shape]` batch in the
        model's range; by default drawn from the data source (an
        `Experiment` built with `info=` and no data must pass it).
      labels: its int labels for a conditional model, else None.
    """
    if real is None:
      num = self.config.model.init_batch_size
      # Drawn from far past any training step: init data is its own sample.
      sample = self.source.sample(2**30, num)
      real = data_lib.normalize(sample["x"], self.info)
      labels = (np.asarray(sample["label"], np.int32)
                if self.config.model.num_classes > 0 else None)
    rep = sharding_lib.replicated(self.mesh)
    init = jax.jit(self.method.init_state, out_shardings=jax.tree.map(
        lambda s: s.sharding, self.abstract_state()))
    args = self._init_inputs(jax.device_put(real, rep),
                             jax.device_put(labels, rep))
    cpu = self.mesh.devices.flat[0].platform == "cpu"
    return init.lower(*args).compile(
        compiler_options=RUN_ONCE_CPU_OPTIONS if cpu else None)(*args)

  def prepare(self, workdir: str, *, fresh: bool = True):
    """The method's constants, replicated on the mesh (see `methods.base`).

    Args:
      workdir: the run's folder.
      fresh: True for a run without checkpoints; then the constants'
        sha256 is recorded in `<workdir>/constants.json`. On resume (False)
        it is checked against that record.

    Returns:
      The constants pytree on the mesh, or None.
    """
    host = self.method.prepare(self.source, workdir, fresh=fresh)
    if host is None:
      return None
    workdir_lib.check_constants(workdir, host, fresh=fresh)
    return jax.device_put(host, sharding_lib.replicated(self.mesh))

  # -- Step ------------------------------------------------------------------

  def batch_sharding(self):
    return sharding_lib.batch_sharding(self.mesh, BATCH_AXIS)

  def jit_train_step(self):
    """`step(state, batch, rng, constants) -> (state, metrics)`, jitted once.

    The state is donated; the batch is split over the mesh's data axis; the
    constants are replicated and not donated (the same buffers every step).
    """
    rep = sharding_lib.replicated(self.mesh)
    state_sharding = jax.tree.map(lambda s: s.sharding, self.abstract_state())
    batch_sharding = None
    if self.batch_spec is not None:
      batch_sharding = {"x": self.batch_sharding()}
      if self.batch_spec.labels:
        batch_sharding["label"] = self.batch_sharding()
    return jax.jit(
        self.method.train_step,
        in_shardings=(state_sharding, batch_sharding, rep, rep),
        out_shardings=(state_sharding, rep),
        donate_argnums=0)

  def compile_train_step(self, state, batch, rng, constants):
    """The train step compiled for these arguments, once it is known to fit.

    Raises:
      device_memory.DeviceMemoryError: XLA's memory analysis of the
        compiled step says it needs more than the devices have; the
        message says what to change (`Method.memory_advice`).
    """
    compiled = self.jit_train_step().lower(state, batch, rng,
                                           constants).compile()
    device_memory.check_fits(
        compiled, list(self.mesh.devices.flat),
        what=(f"The train step (config.batch_size={self.config.batch_size}"
              f" over {self.mesh.devices.size} device(s))"),
        advice=self.method.memory_advice())
    return compiled

  # -- Sampling --------------------------------------------------------------

  def sample(self, params, num: int, rng: jax.Array, *, chunk: int = 1000
             ) -> np.ndarray:
    """`num` samples (float32, data range) from `params`, `chunk` per call."""
    chunk = max(1, min(chunk, num))
    generate_fn = self._generators.get(chunk)
    if generate_fn is None:
      generate_fn = self._generators[chunk] = self.jit_generate(chunk)
    parts = [np.asarray(generate_fn(params, jax.random.fold_in(rng, i)))
             for i in range(-(-num // chunk))]
    return np.concatenate(parts)[:num].astype(np.float32)

  def jit_generate(self, num: int):
    return jax.jit(functools.partial(
        generate, generator=self.generator, num=num,
        z_dim=self.config.model.z_dim, info=self.info,
        num_classes=self.config.model.num_classes,
        sample_latent=self.method.sample_latent),
        out_shardings=sharding_lib.replicated(self.mesh))


def generate(params, rng: jax.Array, *, generator: nn.Module, num: int,
             z_dim: int, info: data_lib.DatasetInfo, num_classes: int = 0,
             sample_latent=None) -> jax.Array:
  """`num` samples in the data's own range, `[num, ...]` float32.

  A conditional generator (`num_classes > 0`) draws sample i from class
  `i % num_classes`, so a grid with `num_classes` columns shows one class per
  column. `sample_latent(rng, num)` is the method's latent (default: the
  uniform one).
  """
  z = (sample_latent(rng, num) if sample_latent is not None
       else train_state_lib.sample_latent(rng, num, z_dim))
  if num_classes > 0:
    out = generator.apply(params, z, jnp.arange(num) % num_classes)
  else:
    out = generator.apply(params, z)
  return data_lib.denormalize(out, info)


# Settings the generic loop divides by or counts with: at least 1.
_POSITIVE_KEYS = ("log_every_steps", "sample_every_steps", "num_samples",
                  "ckpt.every_steps", "ckpt.max_to_keep", "model.z_dim")


def _check_loop_settings(config) -> None:
  """What every method's loop reads: a clear error now, not a crash (a
  division by zero, a checkpoint of empty arrays) after the first steps."""
  for key in _POSITIVE_KEYS:
    config_checks.at_least(config, key, 1)
  for name, optim in config.optim.items():
    if hasattr(optim, "get") and optim.get("learning_rate") is not None:
      config_checks.finite_at_least_zero(config, f"optim.{name}.learning_rate")
  decay = float(config.optim.ema_decay)
  if not 0 <= decay <= 1:
    raise ValueError(f"config.optim.ema_decay must be in [0, 1], got "
                     f"{decay}.")


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
        f"{num_data_shards}, e.g. --config.batch_size="
        f"{max(lower, num_data_shards)} or {lower + num_data_shards}.")
  if config.model.init_batch_size <= 1:
    raise ValueError("config.model.init_batch_size must be at least 2 (the "
                     "weight-norm init needs batch statistics).")

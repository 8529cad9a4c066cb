"""OT-GAN (Salimans et al., 2018): Algorithms 1 and 2 as a training method.

One train step is one critic update followed by `otgan.n_gen` generator
updates (Algorithm 1 with `t mod (n_gen + 1) = 0` for the critic), each update
on its own pair of independent real batches X, X' and freshly generated Y, Y'.
The critic ascends the mini-batch energy distance L, the generator descends
it; the transport plans (ott-jax Sinkhorn, `config.ot`) are held constant.
With `model.num_classes > 0` it is conditional OT-GAN (Algorithm 2): the
networks see the labels and L matches (image, label) pairs. The paper's
random-matching ablation is `--config.ot.matching=random`.

The transport problems span the global batch: with the batch split over the
mesh, each device holds its rows of the cost and plan matrices and XLA adds
the collectives (the features of the other side are gathered once, the
column log-sum-exp is all-reduced in every Sinkhorn iteration).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from ml_collections import config_dict

from otgan_jax import chunking
from otgan_jax import config_checks
from otgan_jax import losses
from otgan_jax import methods
from otgan_jax import sharding as sharding_lib
from otgan_jax.methods import base
from otgan_jax.train_state import ema_update
from otgan_jax.train_state import optimizer_step
from otgan_jax.train_state import sample_latent

Metrics = base.Metrics


def augment(rng: jax.Array, x: jax.Array, random_flip: bool) -> jax.Array:
  """Random horizontal flips of `[..., H, W, C]` images (identity otherwise).

  Every image (all leading axes) is flipped or not independently.
  """
  if not random_flip or x.ndim < 4:
    return x
  flip = jax.random.bernoulli(rng, 0.5, x.shape[:-3] + (1, 1, 1))
  return jnp.where(flip, x[..., ::-1, :], x)


def _rows(fn: Callable[..., jax.Array], params, x: jax.Array,
          labels: jax.Array | None = None) -> jax.Array:
  """Applies a per-example network to `[m, k, ...]` -> `[m, k, ...out]`.

  `labels` (`[m, k]` ints, or None) go to conditional networks.
  """
  m, k = x.shape[:2]
  flat = x.reshape((m * k,) + x.shape[2:])
  if labels is None:
    out = fn(params, flat)
  else:
    out = fn(params, flat, labels.reshape(m * k))
  return out.reshape((m, k) + out.shape[1:])


class _Update:
  """The pieces of one OT-GAN update, in the `[n, k, ...]` layout.

  Every batch-coupled array is laid out `[n, k, ...]` with the batch axis
  first (split over the mesh's data axis) and the k batches (X, X', Y, Y')
  second, so the networks see one flat batch without moving data between
  devices, and `chunking` can cut the batch axis into chunks.
  """

  def __init__(self, *, generator, critic, z_dim, loss_fn, random_flip,
               chunk_size, constrain):
    self.generator = generator
    self.critic = critic
    self.z_dim = z_dim
    self.loss_fn = loss_fn
    self.random_flip = random_flip
    self.chunk_size = chunk_size
    self.constrain = constrain

  def inputs(self, real: jax.Array, labels: jax.Array | None, rng: jax.Array):
    """`real [2, n, ...]`, `labels [2, n]` or None -> the `[n, 2, ...]` layout.

    Returns:
      real `[n, 2, ...]` (flipped at random), their labels `[n, 2]` (or
      None), latents `[n, 2, z_dim]` and the matching's PRNG key. Y is
      generated with X's labels and Y' with X''s (Algorithm 2).
    """
    n = real.shape[1]
    z_rng, flip_rng, match_rng = jax.random.split(rng, 3)
    real = self.constrain(augment(flip_rng, jnp.swapaxes(real, 0, 1),
                                  self.random_flip), 0)
    if labels is not None:
      labels = self.constrain(jnp.swapaxes(labels, 0, 1), 0)
    z = self.constrain(sample_latent(z_rng, 2 * n, self.z_dim).reshape(
        n, 2, self.z_dim), 0)
    return real, labels, z, match_rng

  def generate(self, gen_params, z: jax.Array, labels) -> jax.Array:
    return chunking.apply(
        lambda a: _rows(self.generator.apply, gen_params, *a), (z, labels),
        chunk_size=self.chunk_size, constrain=self.constrain)

  def features(self, critic_params, x: jax.Array, labels) -> jax.Array:
    return chunking.apply(
        lambda a: _rows(self.critic.apply, critic_params, *a), (x, labels),
        chunk_size=self.chunk_size, constrain=self.constrain)

  def critic_loss_and_grad(self, gen_params, critic_params, real, labels, rng):
    """`((L, aux), dL/dcritic)`, the generator held fixed."""
    real, labels, z, match_rng = self.inputs(real, labels, rng)
    fake = jax.lax.stop_gradient(self.generate(gen_params, z, labels))
    images = self.constrain(jnp.concatenate([real, fake], axis=1), 0)
    if labels is not None:
      labels = jnp.concatenate([labels, labels], axis=1)

    def loss(feats):  # feats [n, 4, d]: X, X', Y, Y'
      return self.loss_fn(*(feats[:, i] for i in range(4)), rng=match_rng)

    return chunking.value_and_grad(
        loss, lambda c, a: _rows(self.critic.apply, c, *a), critic_params,
        (images, labels), chunk_size=self.chunk_size,
        constrain=self.constrain)

  def gen_loss_and_grad(self, gen_params, critic_params, real, labels, rng):
    """`((L, aux), dL/dgenerator)`, the critic held fixed."""
    real, labels, z, match_rng = self.inputs(real, labels, rng)
    real_feats = jax.lax.stop_gradient(
        self.features(critic_params, real, labels))

    def fake_features(g, a):
      z_, labels_ = a
      return _rows(self.critic.apply, critic_params,
                   _rows(self.generator.apply, g, z_, labels_), labels_)

    def loss(fake_feats):  # [n, 2, d]: Y, Y'
      return self.loss_fn(real_feats[:, 0], real_feats[:, 1],
                          fake_feats[:, 0], fake_feats[:, 1], rng=match_rng)

    return chunking.value_and_grad(
        loss, fake_features, gen_params, (z, labels),
        chunk_size=self.chunk_size, constrain=self.constrain)


def _at(labels: jax.Array | None, index) -> jax.Array | None:
  return None if labels is None else labels[index]


def ot_loss(gen_params, critic_params, real: jax.Array, rng: jax.Array, *,
            generator: nn.Module, critic: nn.Module, z_dim: int,
            loss_fn: Callable[..., tuple[jax.Array, dict[str, Any]]],
            random_flip: bool, chunk_size: int = 0,
            labels: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
  """The mini-batch energy distance L for one update (no gradients).

  Args:
    gen_params: generator parameters.
    critic_params: critic parameters.
    real: `[2, n, ...]` normalised real batches X and X'.
    rng: PRNG key for the latents, flips and random matching.
    generator: generator module.
    critic: critic module.
    z_dim: latent dimension.
    loss_fn: `minibatch_energy_distance` with its OT settings bound.
    random_flip: flip real images at random.
    chunk_size: examples per chunk when computing features; 0 = all at once.
    labels: `[2, n]` labels of X and X' (conditional networks only).

  Returns:
    `(L, aux)` as returned by `loss_fn`.
  """
  update = _Update(generator=generator, critic=critic, z_dim=z_dim,
                   loss_fn=loss_fn, random_flip=random_flip,
                   chunk_size=chunk_size, constrain=chunking.no_constraint)
  real, labels, z, match_rng = update.inputs(real, labels, rng)
  fake = update.generate(gen_params, z, labels)
  if labels is not None:
    labels = jnp.concatenate([labels, labels], axis=1)
  feats = update.features(critic_params, jnp.concatenate([real, fake], axis=1),
                          labels)
  return loss_fn(*(feats[:, i] for i in range(4)), rng=match_rng)


def ot_kwargs(ot: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.ot` as keyword arguments of `minibatch_energy_distance`."""
  return dict(epsilon=ot.epsilon, num_iterations=ot.num_iterations,
              threshold=ot.threshold, cost=ot.cost, matching=ot.matching,
              solver=ot.get("solver", "auto"),
              precision=ot.get("precision", "highest"))


@methods.register
class OTGAN(base.Method):
  """OT-GAN, unconditional (Algorithm 1) or conditional (Algorithm 2)."""

  name = "otgan"
  critic_head = "features"
  conditional = True
  legacy_keys = {"optim.n_gen": "otgan.n_gen",
                 "optim.freeze_critic_at_step": "otgan.freeze_critic_at_step",
                 "optim.chunk_size": "otgan.chunk_size",
                 "data.random_flip": "otgan.random_flip"}

  @classmethod
  def config_sections(cls):
    c = ml_collections.ConfigDict()
    c.n_gen = 3                   # generator updates per critic update (Algorithm 1)
    c.freeze_critic_at_step = -1  # >=0: stop updating the critic from this step on (section 5.1)
    c.chunk_size = 0              # >0: run the networks this many examples (of n) at a time, then
                                  # back-propagate chunk by chunk (memory ~ features, not activations)
    c.random_flip = False         # random horizontal flips of the real images
    ot = ml_collections.ConfigDict()
    ot.cost = "cosine"            # cosine (the paper) | sqeuclidean (half mean squared distance, toy)
    ot.matching = "sinkhorn"      # sinkhorn | random (the paper's ablation)
    ot.epsilon = 0.002            # ABSOLUTE entropic regularisation
    ot.num_iterations = 500       # Sinkhorn iterations (fixed unless threshold is set)
    ot.threshold = config_dict.placeholder(float)  # optional early-stop marginal error
    ot.solver = "auto"            # auto (ours for a fixed count, ott-jax with a threshold) | ours | ott
    ot.precision = "highest"      # the cost matrices' products on GPUs/TPUs: highest (float32) |
                                  # tensorfloat32 | bfloat16_3x | default (see losses.otgan.PRECISIONS)
    return {"otgan": c, "ot": ot}

  def check_config(self):
    super().check_config()
    c = self.config
    config_checks.at_least(c, "otgan.n_gen", 1)
    solver = c.ot.get("solver", "auto")
    if solver not in losses.SOLVERS:
      raise ValueError(f"config.ot.solver must be one of {losses.SOLVERS}, "
                       f"got {solver!r}.")
    if solver == "ours" and c.ot.threshold is not None:
      raise ValueError("config.ot.solver=ours runs a fixed iteration count: "
                       "unset config.ot.threshold or use solver=auto/ott.")
    config_checks.positive_finite(c, "ot.epsilon",
                                  "the paper's: 0.002, absolute")
    config_checks.at_least(c, "ot.num_iterations", 1)
    precision = c.ot.get("precision", "highest")
    if precision not in losses.PRECISIONS:
      raise ValueError(f"config.ot.precision must be one of "
                       f"{losses.PRECISIONS}, got {precision!r}.")
    n, chunk = c.batch_size, c.otgan.chunk_size
    shards = sharding_lib.data_parallel_size(self.mesh)
    if chunk > 0 and chunk < n and (n % chunk or chunk % shards):
      raise ValueError(
          f"config.otgan.chunk_size={chunk} must divide config.batch_size={n} "
          f"and be a multiple of the {shards} data-parallel devices; use 0 "
          "to switch chunking off.")

  @property
  def batch_spec(self):
    return base.BatchSpec(num_updates=self.config.otgan.n_gen + 1, draws=2,
                          labels=self.config.model.num_classes > 0)

  def loss_fn(self) -> Callable[..., tuple[jax.Array, dict[str, Any]]]:
    """L (Algorithm 1) or its conditional form, with `config.ot` bound."""
    fn = (losses.conditional_energy_distance
          if self.config.model.num_classes > 0
          else losses.minibatch_energy_distance)
    return functools.partial(fn, **ot_kwargs(self.config.ot))

  def train_step(self, state, batch, rng, constants):
    """One critic update, then `n_gen` generator updates.

    Args:
      state: current state.
      batch: `{"x": [n_gen + 1, 2, n, ...]}` raw real examples: update u uses
        `x[u, 0]` as X and `x[u, 1]` as X'; update 0 is the critic's. With
        conditional networks also `"label": [n_gen + 1, 2, n]` ints.
      rng: base PRNG key; folded with `state.step` here.
      constants: unused (OT-GAN has none).

    Returns:
      The new state and a flat dict of scalar metrics.
    """
    del constants
    c = self.config.otgan
    rng = jax.random.fold_in(rng, state.step)
    real = self.normalize(batch["x"])
    conditional = self.config.model.num_classes > 0
    labels = batch.get("label") if conditional else None
    if conditional and labels is None:
      raise ValueError("Conditional training needs batch['label'].")
    update = _Update(
        generator=self.generator, critic=self.critic,
        z_dim=self.config.model.z_dim, loss_fn=self.loss_fn(),
        random_flip=c.random_flip, chunk_size=c.chunk_size,
        constrain=self.constrain)
    rngs = jax.random.split(rng, real.shape[0])

    # The critic ascends L.
    def critic_update(_):
      (value, aux), grads = update.critic_loss_and_grad(
          state.gen_params, state.critic_params, real[0], _at(labels, 0),
          rngs[0])
      params, opt_state = optimizer_step(
          self.critic_tx, state.critic_params, state.critic_opt_state,
          jax.tree.map(jnp.negative, grads))
      return params, opt_state, value, aux, optax.global_norm(grads)

    if c.freeze_critic_at_step >= 0:
      frozen = state.step >= c.freeze_critic_at_step

      def skip(_):
        value, aux = ot_loss(
            state.gen_params, state.critic_params, real[0], rngs[0],
            generator=self.generator, critic=self.critic,
            z_dim=self.config.model.z_dim, loss_fn=update.loss_fn,
            random_flip=c.random_flip, chunk_size=c.chunk_size,
            labels=_at(labels, 0))
        return (state.critic_params, state.critic_opt_state, value, aux,
                jnp.zeros((), jnp.float32))

      critic_params, critic_opt_state, critic_value, aux, critic_gnorm = (
          jax.lax.cond(frozen, skip, critic_update, None))
    else:
      frozen = jnp.zeros((), bool)
      critic_params, critic_opt_state, critic_value, aux, critic_gnorm = (
          critic_update(None))

    # The generator descends L, n_gen times, against the updated critic.
    def gen_update(carry, inputs):
      params, opt_state, ema = carry
      real_u, labels_u, rng_u = inputs
      (value, _), grads = update.gen_loss_and_grad(
          params, critic_params, real_u, labels_u, rng_u)
      params, opt_state = optimizer_step(self.gen_tx, params, opt_state,
                                         grads)
      ema = ema_update(ema, params, self.config.optim.ema_decay)
      return (params, opt_state, ema), (value, optax.global_norm(grads))

    # Unrolled: n_gen is small, and XLA:CPU ran the convolutions inside a
    # rolled loop about 5x slower (7.3 s vs 1.3 s per step on the digits).
    (gen_params, gen_opt_state, ema_params), (gen_values, gen_gnorms) = (
        jax.lax.scan(gen_update,
                     (state.gen_params, state.gen_opt_state,
                      state.ema_params),
                     (real[1:], _at(labels, slice(1, None)), rngs[1:]),
                     unroll=True))

    new_state = state.replace(
        step=state.step + 1, gen_params=gen_params,
        critic_params=critic_params, gen_opt_state=gen_opt_state,
        critic_opt_state=critic_opt_state, ema_params=ema_params)
    metrics = {
        "loss/critic": critic_value,
        "loss/generator": jnp.mean(gen_values),
        "grad_norm/critic": critic_gnorm,
        "grad_norm/generator": jnp.mean(gen_gnorms),
        "ot/sinkhorn_iters": aux["sinkhorn_iters"].astype(jnp.float32),
        "ot/marginal_error": aux["marginal_error"],
        "critic/frozen": frozen.astype(jnp.float32),
    }
    metrics.update({k: v for k, v in aux.items() if k.startswith("w/")})
    return new_state, metrics

  def nonfinite_advice(self):
    return ("Consider a lower learning rate (--config.optim.critic."
            "learning_rate, --config.optim.generator.learning_rate), a larger "
            "--config.ot.epsilon, or checking the data range.")

  def memory_advice(self):
    return (super().memory_advice() + " Or set --config.otgan.chunk_size "
            "(e.g. 500): the networks then run on that many examples at a "
            "time; the n x n transport problems stay whole.")

"""The assignment method (paper 004, Algorithm 1) as a training method.

An assigner psi over ALL the real points (a fixed set, the method's constant)
sends each generated point `x` to `argmin_j c(x, y_j) + psi_j`, computed
exactly in blocks of reals; psi is trained until every real gets its equal
share. One train step: `assignment.assigner_steps` assigner updates, each
assigning `count_samples` freshly generated points; then generator updates
over the last assignment's (z, assigned real) pairs in mini-batches of
`batch_size`, the assignment held fixed. No real batches are read per step.
See `losses.assignment` for the objectives and costs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from otgan_jax import chunking
from otgan_jax import methods
from otgan_jax import models as models_lib
from otgan_jax.losses import assignment as assign_lib
from otgan_jax.methods import base
from otgan_jax.train_state import ema_update
from otgan_jax.train_state import optimizer_step
from otgan_jax.train_state import sample_latent


@methods.register
class Assignment(base.Method):
  """Paper 004: a dual-potential assigner over all reals, any cost."""

  name = "assignment"

  @classmethod
  def config_sections(cls):
    c = ml_collections.ConfigDict()
    c.num_reals = 5000       # real points psi spans (a fixed subset of the data)
    c.count_samples = 10_000  # generated points assigned per assigner update (~10x num_reals)
    c.assigner_steps = 1     # assigner updates per train step
    c.generator_steps = 0    # generator updates per step on the last assignment (0: one pass,
                             # count_samples // batch_size; batch_size is the generator's batch)
    c.assigner_cost = "sqeuclidean"   # sqeuclidean | psnr (pairwise, over all reals)
    c.generator_cost = "sqeuclidean"  # sqeuclidean | psnr | ssim (5 - 5 SSIM)
    c.chunk_size = 1000      # reals per block of the exact assignment (and samples per generator call)
    c.assigner_hidden = (1024, 1024, 512, 512)  # assigner MLP (leaky ReLU)
    return {"assignment": c}

  def check_config(self):
    super().check_config()
    c, a = self.config, self.config.assignment
    if a.count_samples < c.batch_size:
      raise ValueError(
          f"config.assignment.count_samples={a.count_samples} must be at "
          f"least config.batch_size={c.batch_size} (the generator's "
          "mini-batches are drawn from the assigned samples).")
    if a.assigner_steps < 1 or a.chunk_size < 1:
      raise ValueError("config.assignment.assigner_steps and chunk_size must "
                       "be positive.")

  def build_networks(self):
    generator, _ = models_lib.build_models(self.config.model, self.info.shape)
    return generator, models_lib.Assigner(
        hidden=tuple(self.config.assignment.assigner_hidden))

  @property
  def batch_spec(self):
    return None  # All reals are a constant: no batches per step.

  def prepare(self, source, workdir, *, fresh):
    """The fixed real set: the first `num_reals` of the seed's epoch 0."""
    del workdir, fresh
    num = self.config.assignment.num_reals
    size = getattr(source, "num_examples", None)
    if size is not None and num > size:
      raise ValueError(f"config.assignment.num_reals={num} but "
                       f"{self.info.name} has {size} examples.")
    return {"reals": base.host_array(
        self.normalize(source.sample(0, num)["x"]))}

  def train_step(self, state, batch, rng, constants):
    """Assigner updates, then generator updates on the fixed assignment.

    Args:
      state: current state (`critic_params` are the assigner's).
      batch: None (the method sees all reals at every step).
      rng: base PRNG key; folded with `state.step` here.
      constants: `{"reals": [m, ...]}`, all real points, normalised.

    Returns:
      The new state and a flat dict of scalar metrics.
    """
    del batch
    c, a = self.config, self.config.assignment
    reals = constants["reals"]
    generator, assigner = self.generator, self.critic
    z_dim, count, chunk = c.model.z_dim, a.count_samples, a.chunk_size
    generator_steps = a.generator_steps or count // c.batch_size
    rng = jax.random.fold_in(rng, state.step)
    assigner_rng, gen_rng = jax.random.split(rng)
    m = reals.shape[0]
    constrain = self.constrain

    def generate(params, z):
      return chunking.apply(lambda z_: generator.apply(params, z_),
                            constrain(z, 0), chunk_size=chunk,
                            constrain=constrain)

    def assigner_update(carry, rng_t):
      params, opt_state, _, _ = carry
      z = sample_latent(rng_t, count, z_dim)
      x = generate(state.gen_params, z)
      index, _ = assign_lib.assign(x, reals, assigner.apply(params, reals),
                                   cost=a.assigner_cost, chunk_size=chunk)
      counts = assign_lib.assignment_counts(index, m)
      loss, grads = jax.value_and_grad(lambda p: assign_lib.assigner_loss(
          assigner.apply(p, reals), counts))(params)
      params, opt_state = optimizer_step(self.critic_tx, params, opt_state,
                                         grads)
      share = count / m
      stats = (loss, jnp.mean(jnp.abs(counts - share)), jnp.max(counts),
               jnp.mean(counts == 0))
      return (params, opt_state, z, index), stats

    init = (state.critic_params, state.critic_opt_state,
            jnp.zeros((count, z_dim)), jnp.zeros((count,), jnp.int32))
    (assigner_params, assigner_opt_state, z, index), stats = jax.lax.scan(
        assigner_update, init, jax.random.split(assigner_rng,
                                                a.assigner_steps))
    a_loss, deviation, max_count, unassigned = (s[-1] for s in stats)

    # The generator walks over the (z, assigned real) pairs in a random order.
    order = jax.random.permutation(gen_rng, count)
    per_pass = count // c.batch_size
    order = order[:per_pass * c.batch_size].reshape(per_pass, c.batch_size)

    def gen_update(carry, t):
      params, opt_state, ema = carry
      rows = order[t % per_pass]
      target = reals[index[rows]]

      def objective(g):
        return jnp.mean(assign_lib.elementwise_cost(
            generator.apply(g, z[rows]), target, a.generator_cost))

      value, grads = jax.value_and_grad(objective)(params)
      params, opt_state = optimizer_step(self.gen_tx, params, opt_state,
                                         grads)
      ema = ema_update(ema, params, c.optim.ema_decay)
      return (params, opt_state, ema), (value, optax.global_norm(grads))

    (gen_params, gen_opt_state, ema_params), (values, norms) = jax.lax.scan(
        gen_update, (state.gen_params, state.gen_opt_state, state.ema_params),
        jnp.arange(generator_steps))
    new_state = state.replace(
        step=state.step + 1, gen_params=gen_params,
        critic_params=assigner_params, gen_opt_state=gen_opt_state,
        critic_opt_state=assigner_opt_state, ema_params=ema_params)
    metrics = {
        "loss/assigner": a_loss,
        "loss/generator": jnp.mean(values),
        "grad_norm/generator": jnp.mean(norms),
        # Mean |n_j - share| (the paper's "assignment variance" of this
        # step's assignment), the largest count and the unassigned share.
        "assign/deviation": deviation,
        "assign/max_count": max_count,
        "assign/unassigned_fraction": unassigned,
    }
    return new_state, metrics

  def nonfinite_advice(self):
    return ("Consider a lower --config.optim.generator.learning_rate or "
            "--config.optim.critic.learning_rate (the assigner's), or "
            "checking the data range.")

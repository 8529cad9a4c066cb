"""The assignment method (paper 004, Algorithm 1) as a training method.

An assigner psi over ALL the real points (a fixed set, the method's constant)
sends each generated point `x` to `argmin_j c(x, y_j) + psi_j`, computed
exactly in blocks of reals; psi is trained until every real gets its equal
share. One train step: `assignment.assigner_steps` assigner updates, each
assigning freshly generated points, `latent_batch` at a time (the authors'
latent batch: its mixture components are distinct), their number fixed
(`count_samples`) or growing with the step as in the authors' paper-era
code (`count_schedule=linear`); then generator updates over the last
assignment's (z, assigned real) pairs in mini-batches of `batch_size`, the
assignment held fixed. No real batches are read per step. See
`losses.assignment` for the objectives and costs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from otgan_jax import config_checks
from otgan_jax import methods
from otgan_jax import models as models_lib
from otgan_jax.losses import assignment as assign_lib
from otgan_jax.methods import base
from otgan_jax.train_state import ema_update
from otgan_jax.train_state import optimizer_step

SCHEDULES = ("constant", "linear")


def count_schedule(a: ml_collections.ConfigDict, total_steps: int
                   ) -> np.ndarray:
  """Latent batches per assigner update at each step, int32 `[total_steps]`.

  "constant": `count_samples / latent_batch`. "linear", the paper-era code's
  `int(count_growth * (num_reals / latent_batch) * step / total_steps) +
  count_start` (with 5,000 reals, batches of 400, growth 25 and start 15:
  6,000 generated points per update at the first step, 130,400 at the last;
  computed here in float64 as there).
  """
  b = latent_batch(a)
  steps = np.arange(max(int(total_steps), 1))
  if a.count_schedule == "constant":
    return np.full(steps.shape, a.count_samples // b, np.int32)
  growth = a.count_growth * (a.num_reals / b) * (steps / max(total_steps, 1))
  return (growth.astype(np.int64) + a.count_start).astype(np.int32)


def latent_batch(a: ml_collections.ConfigDict) -> int:
  """Generated points per generator call and assignment (0: chunk_size)."""
  return int(a.latent_batch or a.chunk_size)


@methods.register
class Assignment(base.Method):
  """Paper 004: a dual-potential assigner over all reals, any cost."""

  name = "assignment"
  latents = ("uniform", "mixture")

  @classmethod
  def config_sections(cls):
    c = ml_collections.ConfigDict()
    c.num_reals = 5000       # real points psi spans (a fixed subset of the data)
    c.count_samples = 10_000  # constant schedule: generated points assigned per assigner update (~10x num_reals)
    c.count_schedule = "constant"  # constant | linear: the paper-era code's growing count, int(count_growth *
                             # (num_reals / latent_batch) * step / total_steps) + count_start latent batches
    c.count_start = 15       # linear: latent batches per assigner update at step 0
    c.count_growth = 25.0    # linear: growth, in units of num_reals / latent_batch over the run
    c.latent_batch = 0       # generated points per generator call and assignment (the code's latent batch:
                             # 400 square, 200 psnr; mixture components never repeat in one); 0 = chunk_size
    c.assigner_steps = 1     # assigner updates per train step
    c.generator_steps = 0    # generator updates per step on the last assignment (0: one pass,
                             # count_samples // batch_size; batch_size is the generator's batch)
    c.assigner_cost = "sqeuclidean"   # sqeuclidean | psnr (pairwise, over all reals)
    c.assigner_cost_scale = 1.0  # the assigner's cost is this times assigner_cost (the code's square cost,
                             # 0.1 ||x - y||^2, is 0.1 * D times the mean squared difference; its 1 - PSNR
                             # is 10 / ln 10 = 4.343 times log(mse) up to a constant)
    c.generator_cost = "sqeuclidean"  # sqeuclidean | psnr | ssim (5 - 5 SSIM)
    c.ssim_filter_size = 11  # ssim: the Gaussian window's size (sigma 1.5; the code's generator used 4)
    c.shuffle_pairs = True   # generator mini-batches in a random order (False: in the order generated,
                             # as the code: each mini-batch then repeats no mixture component)
    c.chunk_size = 1000      # reals per block of the exact assignment
    c.assigner_hidden = (1024, 1024, 512, 512)  # assigner MLP (leaky ReLU)
    return {"assignment": c}

  def check_config(self):
    super().check_config()
    c, a = self.config, self.config.assignment
    if a.assigner_steps < 1 or a.chunk_size < 1 or a.latent_batch < 0:
      raise ValueError("config.assignment.assigner_steps and chunk_size must "
                       "be positive, latent_batch >= 0.")
    if a.num_reals < 1 or a.generator_steps < 0:
      raise ValueError(f"config.assignment.num_reals must be positive (got "
                       f"{a.num_reals}) and generator_steps at least 0 (got "
                       f"{a.generator_steps}; 0 is one pass).")
    config_checks.positive_finite(c, "assignment.assigner_cost_scale")
    if a.count_schedule not in SCHEDULES:
      raise ValueError(f"config.assignment.count_schedule must be one of "
                       f"{SCHEDULES}, got {a.count_schedule!r}.")
    b = latent_batch(a)
    if a.count_schedule == "constant" and a.count_samples % b:
      raise ValueError(
          f"config.assignment.count_samples={a.count_samples} must be a "
          f"multiple of the latent batch {b} (assignment.latent_batch, or "
          "chunk_size when 0).")
    if a.count_schedule == "linear" and a.count_start < 1:
      raise ValueError("config.assignment.count_start must be positive.")
    smallest = int(count_schedule(a, c.total_steps).min()) * b
    if smallest < c.batch_size:
      raise ValueError(
          f"config.assignment: {smallest} generated points per assigner "
          f"update must be at least config.batch_size={c.batch_size} (the "
          "generator's mini-batches are drawn from the assigned samples).")
    components = c.model.get("latent_components", 0)
    if c.model.get("latent", "uniform") == "mixture" and b > components:
      raise ValueError(
          f"The latent batch {b} exceeds model.latent_components="
          f"{components}: a batch repeats no mixture component.")

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
    z_dim, b, n = c.model.z_dim, latent_batch(a), c.batch_size
    schedule = count_schedule(a, c.total_steps)
    max_groups = int(schedule.max())
    groups = jnp.asarray(schedule)[jnp.minimum(state.step, len(schedule) - 1)]
    rng = jax.random.fold_in(rng, state.step)
    assigner_rng, gen_rng = jax.random.split(rng)
    m = reals.shape[0]
    constrain = self.constrain
    scale = a.assigner_cost_scale

    def pair_cost(x, y):
      return scale * assign_lib.pairwise_cost(x, y, a.assigner_cost)

    def assigner_update(carry, rng_t):
      params, opt_state, _, _ = carry
      psi = assigner.apply(params, reals)

      def assign_group(g, acc):  # One latent batch: generate, assign, count.
        counts, zs, index = acc
        z = constrain(self.sample_latent(jax.random.fold_in(rng_t, g), b), 0)
        x = generator.apply(state.gen_params, z)
        idx, _ = assign_lib.assign(x, reals, psi, cost=pair_cost,
                                   chunk_size=a.chunk_size)
        counts = counts + assign_lib.assignment_counts(idx, m)
        return counts, zs.at[g].set(z), index.at[g].set(idx)

      counts, zs, index = jax.lax.fori_loop(
          0, groups, assign_group,
          (jnp.zeros((m,), jnp.float32), jnp.zeros((max_groups, b, z_dim)),
           jnp.zeros((max_groups, b), jnp.int32)))
      loss, grads = jax.value_and_grad(lambda p: assign_lib.assigner_loss(
          assigner.apply(p, reals), counts))(params)
      params, opt_state = optimizer_step(self.critic_tx, params, opt_state,
                                         grads)
      share = groups * b / m
      stats = (loss, jnp.mean(jnp.abs(counts - share)), jnp.max(counts),
               jnp.mean(counts == 0))
      return (params, opt_state, zs, index), stats

    init = (state.critic_params, state.critic_opt_state,
            jnp.zeros((max_groups, b, z_dim)),
            jnp.zeros((max_groups, b), jnp.int32))
    (assigner_params, assigner_opt_state, z, index), stats = jax.lax.scan(
        assigner_update, init, jax.random.split(assigner_rng,
                                                a.assigner_steps))
    a_loss, deviation, max_count, unassigned = (s[-1] for s in stats)

    # The generator walks over the last assignment's (z, assigned real)
    # pairs, the valid `groups * b` of the buffers, batch_size at a time.
    z, index = z.reshape(-1, z_dim), index.reshape(-1)
    valid = groups * b
    if a.shuffle_pairs:  # A random order of the valid pairs, then the rest.
      keys = jax.random.uniform(gen_rng, (max_groups * b,))
      order = jnp.argsort(jnp.where(jnp.arange(max_groups * b) < valid,
                                    keys, 2.0))
    else:
      order = jnp.arange(max_groups * b)
    per_pass = valid // n
    num_steps = a.generator_steps or per_pass

    def gen_update(t, carry):
      params, opt_state, ema, value_sum, norm_sum = carry
      rows = jax.lax.dynamic_slice(order, ((t % per_pass) * n,), (n,))
      target = reals[index[rows]]

      def objective(g):
        return jnp.mean(assign_lib.elementwise_cost(
            generator.apply(g, z[rows]), target, a.generator_cost,
            ssim_filter_size=a.ssim_filter_size))

      value, grads = jax.value_and_grad(objective)(params)
      params, opt_state = optimizer_step(self.gen_tx, params, opt_state,
                                         grads)
      ema = ema_update(ema, params, c.optim.ema_decay)
      return (params, opt_state, ema, value_sum + value,
              norm_sum + optax.global_norm(grads))

    zero = jnp.zeros((), jnp.float32)
    gen_params, gen_opt_state, ema_params, value_sum, norm_sum = (
        jax.lax.fori_loop(0, num_steps, gen_update,
                          (state.gen_params, state.gen_opt_state,
                           state.ema_params, zero, zero)))
    new_state = state.replace(
        step=state.step + 1, gen_params=gen_params,
        critic_params=assigner_params, gen_opt_state=gen_opt_state,
        critic_opt_state=assigner_opt_state, ema_params=ema_params)
    metrics = {
        "loss/assigner": a_loss,
        "loss/generator": value_sum / num_steps,
        "grad_norm/generator": norm_sum / num_steps,
        # Mean |n_j - share| (the paper's "assignment variance" of this
        # step's assignment), the largest count and the unassigned share.
        "assign/deviation": deviation,
        "assign/max_count": max_count,
        "assign/unassigned_fraction": unassigned,
        "assign/count": (groups * b).astype(jnp.float32),
        "assign/generator_steps": jnp.asarray(num_steps, jnp.float32),
    }
    return new_state, metrics

  def nonfinite_advice(self):
    return ("Consider a lower --config.optim.generator.learning_rate or "
            "--config.optim.critic.learning_rate (the assigner's), or "
            "checking the data range.")

  def memory_advice(self):
    return (super().memory_advice() + " Or lower --config.assignment."
            "chunk_size (reals per block of the exact assignment) or "
            "--config.assignment.latent_batch (generated points per call).")

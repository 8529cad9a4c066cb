"""Pure train step of the assignment method (paper 004, Algorithm 1).

One train step: `assigner_steps` assigner updates, each assigning
`count_samples` freshly generated points to all reals (exactly, in chunks)
and moving psi towards equal shares; then generator updates over the last
assignment's (z, assigned real) pairs in mini-batches, the assignment held
fixed. See `losses.assignment` for the objectives.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from otgan_jax import chunking
from otgan_jax.losses import assignment as assign_lib
from otgan_jax.train_state import TrainState
from otgan_jax.train_state import sample_latent


def train_step(state: TrainState, batch, rng: jax.Array, reals: jax.Array, *,
               generator: nn.Module, assigner: nn.Module,
               gen_tx: optax.GradientTransformation,
               assigner_tx: optax.GradientTransformation, z_dim: int,
               count_samples: int, assigner_steps: int, generator_steps: int,
               batch_size: int, assigner_cost, generator_cost,
               chunk_size: int, ema_decay: float,
               constrain: chunking.Constrain = chunking.no_constraint
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """Assigner updates, then generator updates on the fixed assignment.

  Args:
    state: current state (`critic_params` are the assigner's).
    batch: unused (the method sees all reals at every step).
    rng: base PRNG key; folded with `state.step` here.
    reals: `[m, ...]` all real points, normalised.
    generator: the generator module.
    assigner: the assigner module (`[m, ...] -> [m]`).
    gen_tx, assigner_tx: their optimizers.
    z_dim: latent dimension.
    count_samples: generated points assigned per assigner update.
    assigner_steps: assigner updates per step.
    generator_steps: generator updates per step, each on `batch_size` of
      the last assignment's pairs (cycling through them).
    batch_size: the generator's mini-batch.
    assigner_cost: pairwise cost of the assignment.
    generator_cost: elementwise cost the generator minimises.
    chunk_size: generated points per generator call and reals per block of
      the assignment.
    ema_decay: generator EMA decay.
    constrain: sharding constraint `(x, batch_axis) -> x` for generated sets.

  Returns:
    The new state and a flat dict of scalar metrics.
  """
  del batch
  rng = jax.random.fold_in(rng, state.step)
  assigner_rng, gen_rng = jax.random.split(rng)
  m = reals.shape[0]

  def generate(params, z):
    return chunking.apply(lambda z_: generator.apply(params, z_),
                          constrain(z, 0), chunk_size=chunk_size,
                          constrain=constrain)

  def assigner_update(carry, rng_t):
    params, opt_state, _, _ = carry
    z = sample_latent(rng_t, count_samples, z_dim)
    x = generate(state.gen_params, z)
    index, _ = assign_lib.assign(x, reals, assigner.apply(params, reals),
                                 cost=assigner_cost, chunk_size=chunk_size)
    counts = assign_lib.assignment_counts(index, m)
    loss, grads = jax.value_and_grad(lambda p: assign_lib.assigner_loss(
        assigner.apply(p, reals), counts))(params)
    updates, opt_state = assigner_tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    share = count_samples / m
    stats = (loss, jnp.mean(jnp.abs(counts - share)), jnp.max(counts),
             jnp.mean(counts == 0))
    return (params, opt_state, z, index), stats

  init = (state.critic_params, state.critic_opt_state,
          jnp.zeros((count_samples, z_dim)),
          jnp.zeros((count_samples,), jnp.int32))
  (assigner_params, assigner_opt_state, z, index), stats = jax.lax.scan(
      assigner_update, init, jax.random.split(assigner_rng, assigner_steps))
  a_loss, deviation, max_count, unassigned = (s[-1] for s in stats)

  # The generator walks over the (z, assigned real) pairs in a random order.
  order = jax.random.permutation(gen_rng, count_samples)
  per_pass = count_samples // batch_size
  order = order[:per_pass * batch_size].reshape(per_pass, batch_size)

  def gen_update(carry, t):
    params, opt_state, ema = carry
    rows = order[t % per_pass]
    target = reals[index[rows]]

    def objective(g):
      return jnp.mean(assign_lib.elementwise_cost(
          generator.apply(g, z[rows]), target, generator_cost))

    value, grads = jax.value_and_grad(objective)(params)
    updates, opt_state = gen_tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
                       ema, params)
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

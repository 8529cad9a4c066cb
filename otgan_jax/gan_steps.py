"""Pure train step of the adversarial methods: GAN (DCGAN), WGAN, WGAN-GP and
POT-GAN.

One train step is `n_critic` critic updates, each on its own real batch and a
freshly generated one, then one generator update (Arjovsky et al.'s and
Gulrajani et al.'s Algorithm 1; `n_critic = 1` is the DCGAN schedule). The
networks and the state are OT-GAN's, with the critic ending in one scalar
(`model.critic.head = "scalar"`). POT-GAN (Avraham et al., Algorithm 2) is
WGAN-GP whose generator also minimises `lambda_POT * sum_i ||z_r,sigma(i) -
F(z_g,i)||^2` in a frozen VAE encoder's latent space, with the latent
transformation forest F and the assignment sigma refitted before each
generator update (Algorithm 1, `losses.potgan.fit_forest`); F's parameters
and the encoder's live in `state.extra`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from otgan_jax import data as data_lib
from otgan_jax.losses import gan as gan_losses
from otgan_jax.losses import potgan
from otgan_jax.models import vae as vae_lib
from otgan_jax.train_state import TrainState
from otgan_jax.train_state import sample_latent

LOSSES = ("gan", "wgan", "wgangp", "potgan")


@dataclasses.dataclass(frozen=True)
class PotSettings:
  """POT-GAN's regulariser: the frozen encoder Q, the forest F, Algorithm 1.

  Attributes:
    encoder: the VAE module whose posterior mean is Q (params in
      `state.extra["encoder"]`).
    forest: the LatentTransformationForest (params in
      `state.extra["forest"]`).
    weight: lambda_POT, multiplying the SUM over the batch (0.01 in the paper).
    forest_steps: Algorithm 1 iterations before each generator update.
    forest_learning_rate: Adam's learning rate for F.
    assignment: "nearest", "hungarian" or "covering" (losses.potgan).
  """
  encoder: nn.Module
  forest: nn.Module
  weight: float
  forest_steps: int
  forest_learning_rate: float
  assignment: str


def _adversarial_losses(loss: str, real_scores, fake_scores):
  if loss == "gan":
    return gan_losses.nonsaturating_gan_losses(real_scores, fake_scores)
  return gan_losses.wasserstein_losses(real_scores, fake_scores)


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array,
               *, generator: nn.Module, critic: nn.Module,
               gen_tx: optax.GradientTransformation,
               critic_tx: optax.GradientTransformation,
               info: data_lib.DatasetInfo, z_dim: int, loss: str,
               gp_weight: float, clip_value: float, ema_decay: float,
               pot: PotSettings | None = None
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """`n_critic` critic updates, then one generator update.

  Args:
    state: current state (the critic's params are the discriminator's).
    batch: `{"x": [n_critic, 1, n, ...]}` raw real examples; critic update
      u uses `x[u, 0]`.
    rng: base PRNG key; folded with `state.step` here.
    generator, critic: the modules (the critic returns `[n, 1]` scores).
    gen_tx, critic_tx: their optimizers.
    info: dataset info (raw range) for normalisation.
    z_dim: latent dimension.
    loss: "gan" (non-saturating, DCGAN), "wgan" (weight clipping),
      "wgangp" (gradient penalty) or "potgan" (WGAN-GP + the POT term).
    gp_weight: WGAN-GP's lambda (10 in the paper).
    clip_value: WGAN's clipping bound c (0.01 in the paper), applied to all
      critic parameters after each update.
    ema_decay: generator EMA decay.
    pot: POT-GAN's settings (required for loss="potgan").

  Returns:
    The new state and a flat dict of scalar metrics.
  """
  if loss not in LOSSES:
    raise ValueError(f"Unknown baseline loss {loss!r}: use one of {LOSSES}.")
  rng = jax.random.fold_in(rng, state.step)
  real = data_lib.normalize(batch["x"][:, 0], info)
  n_critic, n = real.shape[:2]
  rngs = jax.random.split(rng, n_critic + 1)

  def critic_update(carry, inputs):
    params, opt_state = carry
    real_u, rng_u = inputs
    z_rng, gp_rng = jax.random.split(rng_u)
    fake = jax.lax.stop_gradient(generator.apply(
        state.gen_params, sample_latent(z_rng, n, z_dim)))

    def objective(c):
      scores = critic.apply(c, jnp.concatenate([real_u, fake], axis=0))
      real_s, fake_s = jnp.split(scores, 2, axis=0)
      value, _ = _adversarial_losses(loss, real_s, fake_s)
      penalty = jnp.zeros((), jnp.float32)
      if loss in ("wgangp", "potgan"):
        penalty = gan_losses.gradient_penalty(
            lambda x: critic.apply(c, x), real_u, fake, gp_rng)
      gap = jnp.mean(real_s) - jnp.mean(fake_s)
      return value + gp_weight * penalty, (penalty, gap)

    (value, (penalty, gap)), grads = jax.value_and_grad(
        objective, has_aux=True)(params)
    updates, opt_state = critic_tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if loss == "wgan":
      params = gan_losses.clip_weights(params, clip_value)
    return (params, opt_state), (value, penalty, gap, optax.global_norm(grads))

  # Unrolled: XLA:CPU runs convolutions inside rolled loops much slower.
  (critic_params, critic_opt_state), (values, penalties, gaps, c_norms) = (
      jax.lax.scan(critic_update,
                   (state.critic_params, state.critic_opt_state),
                   (real, rngs[:-1]), unroll=True))

  # The generator runs once: its output's gradient is pulled back through
  # one VJP, and POT-GAN fits F and sigma on the same (stopped) samples.
  z = sample_latent(rngs[-1], n, z_dim)
  fake, gen_pullback = jax.vjp(lambda g: generator.apply(g, z),
                               state.gen_params)
  extra, pot_metrics, pot_value = state.extra, {}, None
  if loss == "potgan":
    extra, pot_value, pot_metrics = _pot_term(pot, state, real[-1], fake)

  def adversarial(f):
    fake_s = critic.apply(critic_params, f)
    # The generator's loss needs only the fake scores.
    return _adversarial_losses(loss, jnp.zeros_like(fake_s), fake_s)[1]

  gen_value, d_fake = jax.value_and_grad(adversarial)(fake)
  if pot_value is not None:
    pot_loss, pot_d_fake = pot_value
    gen_value = gen_value + pot.weight * pot_loss
    d_fake = d_fake + pot.weight * pot_d_fake
  grads, = gen_pullback(d_fake)
  updates, gen_opt_state = gen_tx.update(grads, state.gen_opt_state,
                                         state.gen_params)
  gen_params = optax.apply_updates(state.gen_params, updates)
  ema_params = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
                            state.ema_params, gen_params)
  new_state = state.replace(
      step=state.step + 1, gen_params=gen_params, critic_params=critic_params,
      gen_opt_state=gen_opt_state, critic_opt_state=critic_opt_state,
      ema_params=ema_params, extra=extra)
  metrics: dict[str, Any] = {
      "loss/critic": jnp.mean(values),
      "loss/generator": gen_value,
      "grad_norm/critic": jnp.mean(c_norms),
      "grad_norm/generator": optax.global_norm(grads),
      "critic/gap": jnp.mean(gaps),
  }
  if loss in ("wgangp", "potgan"):
    metrics["critic/gradient_penalty"] = jnp.mean(penalties)
  metrics.update(pot_metrics)
  return new_state, metrics


def _pot_term(pot: PotSettings, state: TrainState, real: jax.Array,
              fake: jax.Array):
  """Refits F and sigma (Algorithm 1); the generator's POT term on `fake`.

  Returns:
    The new `extra` (F updated), `(value, d value / d fake)` of the
    regulariser with F, sigma and the real latents held constant, and
    metrics.
  """
  encoder_params = state.extra["encoder"]

  def encode(x):
    return vae_lib.encode_mean(encoder_params, x, model=pot.encoder)

  z_r = jax.lax.stop_gradient(encode(real))
  # The encoder also runs once on the generated batch: F is fitted on its
  # (stopped) output, and the regulariser's gradient is pulled back through it.
  z_g, encoder_pullback = jax.vjp(encode, fake)
  forest_params, sigma, aux = potgan.fit_forest(
      state.extra["forest"], z_r, jax.lax.stop_gradient(z_g),
      forest=pot.forest, steps=pot.forest_steps,
      learning_rate=pot.forest_learning_rate, assignment=pot.assignment)

  def regulariser(z_g):
    f_zg = pot.forest.apply(forest_params, z_g)
    pairs = potgan.assigned_pairs(z_r, f_zg, sigma, assignment=pot.assignment)
    return potgan.pot_regulariser(*pairs)

  value, d_z_g = jax.value_and_grad(regulariser)(z_g)
  d_fake, = encoder_pullback(d_z_g)
  metrics = {"pot/matching_cost": aux["cost_final"],
             "pot/unique_fraction": aux["unique_fraction"]}
  return dict(state.extra, forest=forest_params), (value, d_fake), metrics

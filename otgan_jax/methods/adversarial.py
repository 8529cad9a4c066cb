"""The adversarial baselines: GAN (DCGAN), WGAN and WGAN-GP.

One train step is `baseline.n_critic` critic updates, each on its own real
batch and a freshly generated one, then one generator update (Arjovsky et
al.'s and Gulrajani et al.'s Algorithm 1; `n_critic = 1` is the DCGAN
schedule). The networks are OT-GAN's, with the critic ending in one score.
POT-GAN (`methods.potgan`) is WGAN-GP with a term added to the generator's
loss (`Adversarial.generator_term`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from otgan_jax import config_checks
from otgan_jax import methods
from otgan_jax.losses import gan as gan_losses
from otgan_jax.methods import base
from otgan_jax.train_state import ema_update
from otgan_jax.train_state import optimizer_step


def baseline_section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.n_critic = 5      # critic updates per generator update (1 for the DCGAN schedule)
  c.gp_weight = 10.0  # WGAN-GP lambda (wgangp, potgan)
  c.clip_value = 0.01  # WGAN weight clipping bound (wgan)
  c.freeze_critic_at_step = -1  # >=0: stop updating the critic from this step on (OT-GAN's section 5.1 test)
  return c


class Adversarial(base.Method):
  """A critic with one score per example against the generator.

  Subclasses set `loss` ("gan": the non-saturating loss; "wasserstein") and
  `gradient_penalty` / `clip`.
  """

  critic_head = "scalar"
  latents = ("uniform", "mixture")
  loss = "wasserstein"
  gradient_penalty = False
  clip = False

  @classmethod
  def config_sections(cls):
    return {"baseline": baseline_section()}

  def check_config(self):
    super().check_config()
    config_checks.at_least(self.config, "baseline.n_critic", 1)
    # A negative penalty rewards steep critics; a negative clip bound
    # makes clipping's interval empty.
    for key in ("gp_weight", "clip_value"):
      config_checks.finite_at_least_zero(self.config, f"baseline.{key}")

  @property
  def batch_spec(self):
    return base.BatchSpec(num_updates=self.config.baseline.n_critic, draws=1)

  def _losses(self, real_scores, fake_scores):
    if self.loss == "gan":
      return gan_losses.nonsaturating_gan_losses(real_scores, fake_scores)
    return gan_losses.wasserstein_losses(real_scores, fake_scores)

  def generator_term(self, state, real, fake, constants):
    """An extra generator loss term on the generated batch (None: none).

    Returns:
      None, or `(new extra, (value, d value / d fake), metrics)`; the value
      is added to the generator's loss with its gradient pulled back through
      the generator.
    """
    del state, real, fake, constants
    return None

  def train_step(self, state, batch, rng, constants):
    """`n_critic` critic updates, then one generator update.

    Args:
      state: current state (`critic_params` are the critic's).
      batch: `{"x": [n_critic, 1, n, ...]}` raw real examples; critic update
        u uses `x[u, 0]`.
      rng: base PRNG key; folded with `state.step` here.
      constants: the method's constants (POT-GAN's encoder), or None.

    Returns:
      The new state and a flat dict of scalar metrics.
    """
    c = self.config
    rng = jax.random.fold_in(rng, state.step)
    real = self.normalize(batch["x"][:, 0])
    n_critic, n = real.shape[:2]
    rngs = jax.random.split(rng, n_critic + 1)
    generator, critic = self.generator, self.critic

    def critic_update(carry, inputs):
      params, opt_state = carry
      real_u, rng_u = inputs
      z_rng, gp_rng = jax.random.split(rng_u)
      fake = jax.lax.stop_gradient(generator.apply(
          state.gen_params, self.sample_latent(z_rng, n)))

      def objective(p):
        scores = critic.apply(p, jnp.concatenate([real_u, fake], axis=0))
        real_s, fake_s = jnp.split(scores, 2, axis=0)
        value, _ = self._losses(real_s, fake_s)
        penalty = jnp.zeros((), jnp.float32)
        if self.gradient_penalty:
          penalty = gan_losses.gradient_penalty(
              lambda x: critic.apply(p, x), real_u, fake, gp_rng)
        gap = jnp.mean(real_s) - jnp.mean(fake_s)
        return value + c.baseline.gp_weight * penalty, (penalty, gap)

      (value, (penalty, gap)), grads = jax.value_and_grad(
          objective, has_aux=True)(params)
      params, opt_state = optimizer_step(self.critic_tx, params, opt_state,
                                         grads)
      if self.clip:
        params = gan_losses.clip_weights(params, c.baseline.clip_value)
      return (params, opt_state), (value, penalty, gap,
                                   optax.global_norm(grads))

    # Unrolled: XLA:CPU runs convolutions inside rolled loops much slower.
    (critic_params, critic_opt_state), (values, penalties, gaps, c_norms) = (
        jax.lax.scan(critic_update,
                     (state.critic_params, state.critic_opt_state),
                     (real, rngs[:-1]), unroll=True))
    if c.baseline.freeze_critic_at_step >= 0:
      # The frozen critic's updates are computed and discarded: the step
      # stays one program, and its metrics still show the critic's loss.
      frozen = state.step >= c.baseline.freeze_critic_at_step
      critic_params, critic_opt_state = jax.tree.map(
          lambda old, new: jnp.where(frozen, old, new),
          (state.critic_params, state.critic_opt_state),
          (critic_params, critic_opt_state))

    # The generator runs once: its output's gradient is pulled back through
    # one VJP, and an extra term (POT-GAN) sees the same samples.
    z = self.sample_latent(rngs[-1], n)
    fake, gen_pullback = jax.vjp(lambda g: generator.apply(g, z),
                                 state.gen_params)

    def adversarial(f):
      fake_s = critic.apply(critic_params, f)
      # The generator's loss needs only the fake scores.
      return self._losses(jnp.zeros_like(fake_s), fake_s)[1]

    gen_value, d_fake = jax.value_and_grad(adversarial)(fake)
    extra, term_metrics = state.extra, {}
    term = self.generator_term(state, real[-1], fake, constants)
    if term is not None:
      extra, (term_value, term_d_fake), term_metrics = term
      gen_value = gen_value + term_value
      d_fake = d_fake + term_d_fake
    grads, = gen_pullback(d_fake)
    gen_params, gen_opt_state = optimizer_step(
        self.gen_tx, state.gen_params, state.gen_opt_state, grads)
    ema_params = ema_update(state.ema_params, gen_params, c.optim.ema_decay)
    new_state = state.replace(
        step=state.step + 1, gen_params=gen_params,
        critic_params=critic_params, gen_opt_state=gen_opt_state,
        critic_opt_state=critic_opt_state, ema_params=ema_params,
        extra=extra)
    metrics: dict[str, Any] = {
        "loss/critic": jnp.mean(values),
        "loss/generator": gen_value,
        "grad_norm/critic": jnp.mean(c_norms),
        "grad_norm/generator": optax.global_norm(grads),
        "critic/gap": jnp.mean(gaps),
    }
    if self.gradient_penalty:
      metrics["critic/gradient_penalty"] = jnp.mean(penalties)
    if c.baseline.freeze_critic_at_step >= 0:
      metrics["critic/frozen"] = frozen.astype(jnp.float32)
    metrics.update(term_metrics)
    return new_state, metrics


@methods.register
class GAN(Adversarial):
  """The non-saturating GAN loss (DCGAN's), one critic update per step."""

  name = "gan"
  loss = "gan"

  def nonfinite_advice(self):
    return ("Consider lower learning rates (--config.optim.critic."
            "learning_rate, --config.optim.generator.learning_rate; DCGAN: "
            "2e-4) or checking the data range.")


@methods.register
class WGAN(Adversarial):
  """WGAN: a Wasserstein critic kept Lipschitz by weight clipping."""

  name = "wgan"
  clip = True

  def nonfinite_advice(self):
    return ("Consider lower learning rates (--config.optim.critic."
            "learning_rate; WGAN: 5e-5) or a smaller --config.baseline."
            "clip_value.")


@methods.register
class WGANGP(Adversarial):
  """WGAN-GP: a Wasserstein critic with the gradient penalty."""

  name = "wgangp"
  gradient_penalty = True

  def nonfinite_advice(self):
    return ("Consider lower learning rates (--config.optim.critic."
            "learning_rate, --config.optim.generator.learning_rate; WGAN-GP: "
            "1e-4) or a smaller --config.baseline.gp_weight.")

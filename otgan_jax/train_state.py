"""The training state of every method: a pytree of arrays only.

The optimizers live outside (in the method); `optimizer_step` and
`ema_update` are the one update rule all train steps use.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from otgan_jax.models import otgan as otgan_models

Params = Any


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint must hold to resume training bit-exactly.

  Attributes:
    step: number of completed train steps, int32 scalar (what one step is
      depends on the method: OT-GAN's is 1 critic + n_gen generator updates,
      the adversarial baselines' n_critic critic updates + 1 generator
      update, the assignment method's assigner updates + generator updates).
    gen_params: generator parameters.
    critic_params: the method's second network: OT-GAN's critic (feature
      map), the baselines' and POT-GAN's critic/discriminator (one score),
      the assignment method's assigner psi.
    gen_opt_state: the generator optimizer's state.
    critic_opt_state: the second network's optimizer state.
    ema_params: exponential moving average of the generator parameters (all
      samples and evaluations use it).
    extra: other trained parameters of a method that persist across steps
      (POT-GAN's latent transformation forest); None for the others. Frozen
      constants are never here (see `otgan_jax.methods.base`).
  """
  step: jax.Array
  gen_params: Params
  critic_params: Params
  gen_opt_state: optax.OptState
  critic_opt_state: optax.OptState
  ema_params: Params
  extra: Params = None


OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(config: ml_collections.ConfigDict
                   ) -> optax.GradientTransformation:
  """The optimizer of `config.optim.generator` or `.critic`.

  `name` "adam" (the default; the papers' Adam, `eps` outside and
  `eps_root` inside the square root) or "rmsprop" (WGAN's: `v = decay v +
  (1 - decay) g^2`, update `-lr g / (sqrt(v) + eps)` as PyTorch's RMSprop,
  or `g / sqrt(v + eps_root)` when `eps` is 0; no momentum).
  """
  name = config.get("name", "adam")
  if name == "adam":
    return optax.adam(learning_rate=config.learning_rate, b1=config.b1,
                      b2=config.b2, eps=config.eps, eps_root=config.eps_root)
  if name == "rmsprop":
    if config.eps > 0 and config.eps_root > 0:
      raise ValueError("optim rmsprop takes one epsilon: set eps (outside "
                       "the square root, PyTorch's) or eps_root (inside), "
                       "and the other to 0.")
    outside = config.eps > 0
    return optax.rmsprop(learning_rate=config.learning_rate,
                         decay=config.decay,
                         eps=config.eps if outside else config.eps_root,
                         eps_in_sqrt=not outside)
  raise ValueError(f"Unknown optimizer {name!r}: choose from {OPTIMIZERS} "
                   "(config.optim.generator.name / config.optim.critic.name).")


def optimizer_step(tx: optax.GradientTransformation, params: Params,
                   opt_state: optax.OptState, grads: Params
                   ) -> tuple[Params, optax.OptState]:
  """One optimizer update of `params` along `grads` (descent)."""
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def ema_update(ema: Params, params: Params, decay: float) -> Params:
  """`decay * ema + (1 - decay) * params`, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


# The paper's latent, z ~ U(-1, 1)^z_dim, defined once with the networks.
sample_latent = otgan_models.sample_latent


def init_state(rng: jax.Array, real: jax.Array, *, generator: nn.Module,
               critic: nn.Module, gen_tx: optax.GradientTransformation,
               critic_tx: optax.GradientTransformation, z_dim: int,
               labels: jax.Array | None = None) -> TrainState:
  """Initialises both networks, data-dependently where they use weight norm.

  Args:
    rng: PRNG key.
    real: `[n, ...]` normalised real examples; the critic's weight-norm layers
      take their initial scale and bias from these, the generator's from `n`
      latents.
    generator: the generator module.
    critic: the critic module.
    gen_tx: generator optimizer.
    critic_tx: critic optimizer.
    z_dim: latent dimension.
    labels: `[n]` labels of `real`, for conditional networks (else None).

  Returns:
    The initial state, step 0, EMA equal to the generator parameters.
  """
  gen_rng, critic_rng, z_rng = jax.random.split(rng, 3)
  z = sample_latent(z_rng, real.shape[0], z_dim)
  extra = () if labels is None else (labels,)
  gen_params = generator.init(gen_rng, z, *extra)
  critic_params = critic.init(critic_rng, real, *extra)
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      gen_params=gen_params,
      critic_params=critic_params,
      gen_opt_state=gen_tx.init(gen_params),
      critic_opt_state=critic_tx.init(critic_params),
      ema_params=gen_params,
  )

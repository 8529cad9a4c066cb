"""OT-GAN's own options act in the train step: random flips, freezing the critic."""

import jax
import numpy as np

from configs import test as test_config
from otgan_jax import experiment


def _mirror_symmetric(x):
  """Each image made left-right symmetric (its left half mirrored)."""
  w = x.shape[-2]
  left = x[..., : w // 2, :]
  return np.concatenate([left, left[..., ::-1, :]], axis=-2)


def _critic_losses(loop_batch, flip):
  """The first step's critic loss on the loop's batch and on its mirror-
  symmetric version (one compilation)."""
  c = test_config.get_config()
  c.otgan.random_flip = flip
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  step = exp.jit_train_step()  # Donates the state: a fresh one per call.
  return [float(step(exp.init_state(), loop_batch(exp, 0, transform),
                     jax.random.key(1), None)[1]["loss/critic"])
          for transform in (None, _mirror_symmetric)]


def test_random_flip_flips_only_when_asked(loop_batch):
  # On asymmetric digits the flips change what the critic sees ...
  (flipped, flipped_sym), (plain, plain_sym) = (
      _critic_losses(loop_batch, f) for f in (True, False))
  assert abs(flipped - plain) > 1e-6
  # ... and on mirror-symmetric images they change nothing: the option flips
  # images horizontally and does nothing else.
  np.testing.assert_allclose(flipped_sym, plain_sym, rtol=1e-6)


def test_freeze_critic_at_step_stops_the_critic_at_exactly_that_step(
    loop_batch):
  c = test_config.get_config()
  c.otgan.freeze_critic_at_step = 2
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  state = exp.init_state()
  step = exp.jit_train_step()
  critics, gens, frozen = [], [], []

  def snapshot(s):
    critics.append([np.asarray(x) for x in
                    jax.tree.leaves(jax.device_get(s.critic_params))])
    gens.append([np.asarray(x) for x in
                 jax.tree.leaves(jax.device_get(s.gen_params))])

  snapshot(state)
  for s in range(4):
    state, metrics = step(state, loop_batch(exp, s), jax.random.key(0), None)
    snapshot(state)
    frozen.append(float(metrics["critic/frozen"]))

  def changed(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b)) > 0

  # Steps 1 and 2 update the critic; steps 3 and 4 (started with 2 steps
  # done) leave it exactly as it was, while the generator keeps training.
  assert [changed(critics[i], critics[i + 1]) for i in range(4)] == [
      True, True, False, False]
  assert all(changed(gens[i], gens[i + 1]) for i in range(4))
  assert frozen == [0.0, 0.0, 1.0, 1.0]

"""The adversarial baselines' `baseline.freeze_critic_at_step` (section 5.1's test)."""

import jax
import numpy as np

from configs import test as test_config
from otgan_jax import experiment


def test_a_frozen_gan_critic_stops_at_exactly_that_step(loop_batch):
  c = test_config.get_config("gan")
  c.baseline.freeze_critic_at_step = 1
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  state = exp.init_state()
  step = exp.jit_train_step()
  critics, gens, frozen = [], [], []

  def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]

  def changed(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b)) > 0

  critics.append(leaves(state.critic_params))
  gens.append(leaves(state.gen_params))
  for s in range(3):
    state, metrics = step(state, loop_batch(exp, s), jax.random.key(0), None)
    critics.append(leaves(state.critic_params))
    gens.append(leaves(state.gen_params))
    frozen.append(float(metrics["critic/frozen"]))
  assert [changed(critics[i], critics[i + 1]) for i in range(3)] == [
      True, False, False]
  assert all(changed(gens[i], gens[i + 1]) for i in range(3))
  assert frozen == [0.0, 1.0, 1.0]

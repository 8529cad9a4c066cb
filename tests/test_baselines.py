"""The adversarial baselines (GAN, WGAN, WGAN-GP) train in the same loop."""

import jax
import numpy as np
import pytest

from configs import baselines_gaussians
from configs import test as test_config
from otgan_jax import experiment
from otgan_jax.evaluation import transport


def _config(method, **kw):
  c = test_config.get_config(method)
  for k, v in kw.items():
    c[k] = v
  return c


@pytest.mark.parametrize("method", ["gan", "wgan", "wgangp"])
def test_each_baseline_takes_finite_steps(method, loop_batch):
  exp = experiment.Experiment(_config(method))
  state = exp.init_state()
  before = jax.device_get(state.gen_params)
  step = exp.jit_train_step()
  for s in range(2):
    state, metrics = step(state, loop_batch(exp, s), jax.random.key(0),
                          None)
  metrics = jax.device_get(metrics)
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  assert ("critic/gradient_penalty" in metrics) == (method == "wgangp")
  moved = max(float(np.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(before), jax.tree.leaves(jax.device_get(
          state.gen_params))))
  assert moved > 0
  if method == "wgan":  # Clipped after every critic update.
    for p in jax.tree.leaves(jax.device_get(state.critic_params)):
      assert np.abs(p).max() <= 0.01 + 1e-7


# 1100 steps against measured W1: compiled as users run them (the
# trajectory is chaotic: at LLVM level 0 the losses part at step 5;
# tests/conftest.py). 40-150 s a seed: `slow` (`python -m pytest -m slow`);
# the default suite keeps every baseline's step above, and the reproduction
# suite (configs/reproduce.py, `ring_wgangp`) trains this config to the end.
@pytest.mark.slow
@pytest.mark.optimised
def test_wgangp_learns_the_ring(loop_batch):
  # 1100 steps of the shipped config (batch 256, Adam 1e-3), on one device:
  # W1 to the data falls far below the initial generator's. Whether and when
  # it does depends on the seed and on the machine's float rounding (the
  # adversarial game oscillates first), so the best W1 over steps 700-1100
  # must fall in at least 2 of seeds 0-3 (tried in turn until decided).
  # Measured W1 (the start's in brackets):
  # - seed 0 [1.77]: on one Intel CPU 0.39 at step 500, 0.21 at 1000; on an
  #   AMD EPYC (2026-12-04) 0.87-1.95 until step 900, 0.24 at 1000; on an
  #   Intel Xeon with AVX-512 (2026-12-05) 1.06 at best through step 1100
  #   and 0.78 at best through 2500 (it never settled);
  # - on that Xeon, seeds 1, 2, 3 [1.92, 1.89, 1.88]: 0.44, 0.33, 0.22 at
  #   best over steps 700-1100.
  # At batch 128 the run oscillates throughout (W1 0.8-3.7 over steps
  # 500-1000).
  passed, tried = [], {}
  for seed in range(4):
    c = baselines_gaussians.get_config("wgangp")
    c.seed = seed
    exp = experiment.Experiment(c, devices=jax.devices()[:1])
    state = exp.init_state()
    real = exp.source.sample(10**6, 1000)["x"]

    def w1(params, exp=exp, real=real):
      samples = exp.sample(params, 1000, jax.random.key(5))
      return transport.exact_w1(samples, real)

    before = w1(state.gen_params)
    step = exp.jit_train_step()
    seen = tried[seed] = {0: before}
    for s in range(1100):
      state, _ = step(state, loop_batch(exp, s), jax.random.key(0), None)
      if s + 1 >= 700 and (s + 1) % 100 == 0:
        seen[s + 1] = w1(state.gen_params)
        if seen[s + 1] < 0.3 * before:
          passed.append(seed)
          break
    if len(passed) == 2 or len(tried) - len(passed) == 3:
      break
  assert len(passed) >= 2, tried


def test_the_method_decides_the_critic_head():
  # A scalar critic for the baselines, a feature map for OT-GAN; the user
  # sets no head.
  for name, want in (("wgangp", (3, 1)), ("gaussians", (3, 4))):
    exp = experiment.Experiment(_config(name), devices=jax.devices()[:1])
    state = exp.init_state()
    scores = exp.method.critic.apply(jax.device_get(state.critic_params),
                                     np.zeros((3, 2), np.float32))
    assert scores.shape == want, name


@pytest.mark.parametrize("key,value", [("n_critic", 0), ("gp_weight", -1.0),
                                       ("clip_value", -0.01)])
def test_impossible_baseline_settings_are_clear_errors(key, value):
  c = _config("wgangp")
  c.baseline[key] = value
  with pytest.raises(ValueError, match=f"config.baseline.{key} must be"):
    experiment.Experiment(c)


def test_unknown_method_is_a_clear_error():
  c = _config("wgangp")
  c.method = "wgann"
  with pytest.raises(ValueError, match="Unknown config.method 'wgann'.*wgangp"):
    experiment.Experiment(c)


@pytest.mark.parametrize("key,value", [("otgan.random_flip", True),
                                       ("ot.epsilon", 0.5),
                                       ("potgan.weight", 1.0),
                                       ("assignment.num_reals", 7)])
def test_a_changed_key_of_another_methods_section_is_refused(key, value):
  c = _config("wgangp")
  section, name = key.split(".")
  c[section][name] = value
  with pytest.raises(ValueError, match=(
      rf"config.{key}={value!r} is read only by config.method=.*this run's "
      rf"method is 'wgangp'.*remove --config.{key}")):
    experiment.Experiment(c)
  # The section a method owns may be changed; shared keys too.
  c = _config("wgangp")
  c.baseline.gp_weight = 5.0
  c.optim.critic.learning_rate = 1e-3
  experiment.Experiment(c)


def test_conditional_training_is_refused_by_methods_without_it():
  c = _config("wgan")
  c.model.num_classes = 8  # The ring's modes are its classes.
  with pytest.raises(ValueError, match="num_classes=0"):
    experiment.Experiment(c)

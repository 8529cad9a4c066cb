"""Every training method: resume is bit-exact, 8 devices = 1 device, one compile.

The safety net of the methods' architecture: each method runs through the
generic loop and the generic sharded step at the tiny scale of
`configs/test.py:<variant>`, and a change to one method must keep all of
these green.
"""

import glob
import os

import jax
import numpy as np
import pytest

from configs import test as test_config
from otgan_jax import experiment
from otgan_jax import train

# Every method, by the configs/test.py variant that runs it.
VARIANTS = {
    "otgan": None,
    "otgan_conditional": "conditional",
    "gan": "gan",
    "wgan": "wgan",
    "wgangp": "wgangp",
    "potgan": "potgan",
    "assignment": "assignment",
}


def _config(name, **overrides):
  c = test_config.get_config(VARIANTS[name])
  for key, value in overrides.items():
    c[key] = value
  return c


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_resume_is_bit_exact(name, tmp_path):
  straight = train.train_and_evaluate(_config(name, total_steps=4),
                                      str(tmp_path / "straight"))
  interrupted = str(tmp_path / "interrupted")
  c = _config(name, total_steps=2)
  c.ckpt.every_steps = 2
  train.train_and_evaluate(c, interrupted)
  c = _config(name, total_steps=4)
  c.ckpt.every_steps = 2
  resumed = train.train_and_evaluate(c, interrupted)
  assert int(resumed.step) == int(straight.step) == 4
  a, b = _leaves(straight), _leaves(resumed)
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  saved = sorted(int(os.path.basename(p)) for p in
                 glob.glob(os.path.join(interrupted, "checkpoints", "[0-9]*")))
  assert saved == [2, 4]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_eight_devices_equal_one_device_and_compile_once(name, tmp_path,
                                                        loop_batch):
  # Two steps with the config's own optimizers. Tolerance: float32 sums in
  # another order (the transport and the reductions are split over 8
  # devices), amplified by at most two Adam steps.
  devices = jax.devices()
  assert len(devices) == 8
  results = []
  for devs in (devices[:1], devices):
    exp = experiment.Experiment(_config(name), devices=devs)
    constants = exp.prepare(str(tmp_path))
    state = exp.init_state()
    step = exp.jit_train_step()
    init = _leaves(state)
    for s in range(2):
      state, metrics = step(state, loop_batch(exp, s), jax.random.key(3),
                            constants)
    results.append((exp, step, state, jax.device_get(metrics), init))
  (_, _, one_state, one, init), (exp, step, state, eight, _) = results
  assert set(one) == set(eight)
  for k in one:
    np.testing.assert_allclose(eight[k], one[k], rtol=1e-3, atol=1e-5,
                               err_msg=k)
  # POT-GAN refits its latent forest inside each step: forest_steps Adam
  # steps on hard assignments, where another summation order can flip a
  # near-tie and so move the forest by up to one inner step (seen on one
  # CPU model, 1e-3 at learning rate 1e-2). Its parameters match to that
  # step; every other leaf (the forest's effect on the generator included)
  # to float order.
  forest_atol = _config(name).potgan.forest_learning_rate
  paths = [jax.tree_util.keystr(p) for p, _ in
           jax.tree_util.tree_leaves_with_path(jax.device_get(state))]
  for path, x, y in zip(paths, _leaves(state), _leaves(one_state)):
    atol = forest_atol if "['forest']['params']" in path else 1e-5
    np.testing.assert_allclose(x, y, rtol=1e-3, atol=atol, err_msg=path)
  # The generator moved: the states compared are not two initial states.
  moved = max(float(np.abs(a - b).max()) for a, b in zip(
      init, _leaves(one_state)) if a.dtype.kind == "f")
  assert moved > 1e-4
  # Every leaf keeps its sharding over all 8 devices; one compilation.
  for leaf, abstract in zip(jax.tree.leaves(state),
                            jax.tree.leaves(exp.abstract_state())):
    assert leaf.sharding.is_equivalent_to(abstract.sharding, leaf.ndim)
    assert len(leaf.sharding.device_set) == 8
  assert step._cache_size() == 1  # pylint: disable=protected-access


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_sharded_step_lowers_for_gpus_and_tpus(name, tmp_path):
  # No accelerator here, but JAX lowers a program for any platform: each
  # method's step, sharded over the 8 devices, must lower for CUDA and TPU
  # (where `platform_dependent` code, e.g. models/fastconv.py, takes its
  # other branch). A step that used an op lowered only by the CUDA plugin
  # (cuSolver's linear algebra) would fail here without failing on a GPU:
  # then lower it under that plugin instead.
  exp = experiment.Experiment(_config(name))
  constants = exp.prepare(str(tmp_path))
  batch = None
  spec = exp.batch_spec
  if spec is not None:
    shape = (spec.num_updates, spec.draws, exp.config.batch_size)
    batch = {"x": jax.ShapeDtypeStruct(shape + tuple(exp.info.shape),
                                       np.float32,
                                       sharding=exp.batch_sharding())}
    if spec.labels:
      batch["label"] = jax.ShapeDtypeStruct(shape, np.int32,
                                            sharding=exp.batch_sharding())
  traced = exp.jit_train_step().trace(exp.abstract_state(), batch,
                                      jax.random.key(0), constants)
  for platform in ("cuda", "tpu"):
    text = traced.lower(lowering_platforms=(platform,)).as_text()
    assert "stablehlo.dot_general" in text
    assert "mhlo.num_partitions = 8" in text

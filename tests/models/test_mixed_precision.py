"""config.model.dtype: bfloat16 networks, float32 parameters and OT.

The cosine cost lives in [0, 2] and epsilon is 0.002, below bfloat16's
resolution there (8 bits of mantissa: steps of 0.0078 near 1), so the cost
matrices, Sinkhorn and the losses must stay float32 whatever the networks
compute in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from configs import test as test_config
from otgan_jax import experiment
from otgan_jax import models


def _eqns(jaxpr):
  """Every equation of a (closed) jaxpr, sub-jaxprs (scan, cond, jit...) included."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      subs = param if isinstance(param, (tuple, list)) else (param,)
      for sub in subs:
        if hasattr(sub, "eqns") or hasattr(sub, "jaxpr"):
          yield from _eqns(sub)


def test_the_default_is_float32():
  assert common.get_config().model.dtype == "float32"
  with pytest.raises(ValueError, match="model.dtype"):
    models.compute_dtype({"dtype": "float16"})


@pytest.mark.parametrize("variant", [None, "gaussians", "assignment"])
def test_bfloat16_networks_keep_float32_parameters_and_outputs(variant):
  c = test_config.get_config(variant)
  c.model.dtype = "bfloat16"
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  state = exp.init_state()
  for leaf in jax.tree.leaves(state.gen_params):
    assert leaf.dtype == jnp.float32
  z = exp.method.sample_latent(jax.random.key(0), 4)
  x = exp.generator.apply(state.gen_params, z)
  assert x.dtype == jnp.float32
  jaxpr = jax.make_jaxpr(exp.generator.apply)(state.gen_params, z)
  assert any(v.aval.dtype == jnp.bfloat16 for e in _eqns(jaxpr)
             for v in e.outvars), "the generator computes in bfloat16"
  if variant != "assignment":  # The assigner stays float32 (see models).
    for leaf in jax.tree.leaves(state.critic_params):
      assert leaf.dtype == jnp.float32
    assert exp.method.critic.apply(state.critic_params, x).dtype == jnp.float32


def _two_steps(dtype, loop_batch, tmp_path):
  c = test_config.get_config()
  # A batch no channel count equals: the check below finds the n x n OT
  # arrays by shape, and a network's [16, 16] kernel gradient (bf16, as it
  # should be) must not pass for one.
  c.batch_size = 24
  c.model.dtype = dtype
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  constants = exp.prepare(str(tmp_path))
  state = exp.init_state()
  step = exp.jit_train_step()
  out = []
  for s in range(2):
    batch = loop_batch(exp, s)
    if s == 0:
      jaxpr = jax.make_jaxpr(exp.method.train_step)(
          state, batch, jax.random.key(3), constants)
    state, metrics = step(state, batch, jax.random.key(3), constants)
    out.append(jax.device_get(metrics))
  return exp, state, out, jaxpr


def test_a_bfloat16_step_stays_close_to_float32_and_ot_is_float32(
    loop_batch, tmp_path):
  exp, s32, m32, _ = _two_steps("float32", loop_batch, tmp_path / "a")
  _, s16, m16, jaxpr = _two_steps("bfloat16", loop_batch, tmp_path / "b")
  n = exp.config.batch_size
  # The n x n cost matrices and plans (alone or stacked, [k, n, n]): every
  # equation with such an output is float32 (none is bfloat16).
  square = [v.aval for e in _eqns(jaxpr) for v in e.outvars
            if hasattr(v.aval, "shape") and v.aval.ndim in (2, 3)
            and v.aval.shape[-2:] == (n, n)]
  assert square and all(a.dtype == jnp.float32 for a in square), {
      str(a.dtype) for a in square}
  assert any(v.aval.dtype == jnp.bfloat16 for e in _eqns(jaxpr)
             for v in e.outvars), "the networks compute in bfloat16"
  # Stated tolerance: the losses agree to 5% (relative) after each of two
  # steps, and the parameter updates point the same way (cosine > 0.9).
  for a, b in zip(m32, m16):
    for k in ("loss/critic", "loss/generator"):
      np.testing.assert_allclose(b[k], a[k], rtol=0.05, err_msg=k)
  init = jax.tree.leaves(jax.device_get(exp.init_state().gen_params))
  d32 = np.concatenate([(np.asarray(x) - y).ravel() for x, y in zip(
      jax.tree.leaves(jax.device_get(s32.gen_params)), init)])
  d16 = np.concatenate([(np.asarray(x) - y).ravel() for x, y in zip(
      jax.tree.leaves(jax.device_get(s16.gen_params)), init)])
  cosine = d32 @ d16 / (np.linalg.norm(d32) * np.linalg.norm(d16))
  assert cosine > 0.9, cosine

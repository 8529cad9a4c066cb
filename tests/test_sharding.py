"""Data parallelism: the sharded step is the single-device step, chunked too.

The transport problem spans the global batch, so splitting the batch over
devices (or cutting it into chunks) must not change the loss or the update.
Steps use SGD here: Adam's first update is about lr * sign(g), which would hide
gradient differences (and amplify harmless ones where g is near 0).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from configs import test as test_config
from otgan_jax import losses
from otgan_jax import sharding as sharding_lib
from otgan_jax import experiment


def _experiment(devices, **otgan):
  c = test_config.get_config()
  c.batch_size = 16
  for k, v in otgan.items():
    c.otgan[k] = v
  exp = experiment.Experiment(c, devices=devices)
  exp.method.gen_tx = exp.method.critic_tx = optax.sgd(0.5)
  return exp


def _run(exp, loop_batch, num_steps=1):
  state = exp.init_state()
  step = exp.jit_train_step()
  for s in range(num_steps):
    state, metrics = step(state, loop_batch(exp, s), jax.random.key(3), None)
  return step, state, jax.device_get(metrics)


def _assert_states_close(a, b, rtol, atol):
  for x, y in zip(jax.tree.leaves(jax.device_get(a)),
                  jax.tree.leaves(jax.device_get(b))):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=atol)


def test_sharded_step_equals_single_device_step_and_compiles_once(
    loop_batch):
  devices = jax.devices()
  assert len(devices) == 8
  _, one_state, one = _run(_experiment(devices[:1]), loop_batch,
                           num_steps=2)
  exp = _experiment(devices)
  step, state, eight = _run(exp, loop_batch, num_steps=2)
  for k in one:
    np.testing.assert_allclose(eight[k], one[k], rtol=2e-4, atol=1e-5,
                               err_msg=k)
  _assert_states_close(state, one_state, rtol=1e-3, atol=1e-5)
  # The parameters moved (the comparison is not between two initial states).
  init = exp.init_state()
  moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
      jax.tree.leaves(jax.device_get(init.gen_params)),
      jax.tree.leaves(jax.device_get(state.gen_params)))]
  assert max(moved) > 1e-3
  # Shardings kept (replicated over all 8 devices) and one compilation.
  for leaf, abstract in zip(jax.tree.leaves(state),
                            jax.tree.leaves(exp.abstract_state())):
    assert leaf.sharding.is_equivalent_to(abstract.sharding, leaf.ndim)
    assert len(leaf.sharding.device_set) == 8
  assert step._cache_size() == 1


def _assert_updates_close(a, b, init, rel):
  """Each leaf's update (new - initial value) in `a` and `b` agrees to `rel`
  of that leaf's largest update, plus float32 rounding of its values."""
  for x, y, x0 in zip(jax.tree.leaves(jax.device_get(a)),
                      jax.tree.leaves(jax.device_get(b)),
                      jax.tree.leaves(jax.device_get(init))):
    x, y, x0 = (np.asarray(v, np.float64) for v in (x, y, x0))
    dx, dy = x - x0, y - x0
    scale = np.abs(dy).max(initial=0.0)
    rounding = 4 * np.finfo(np.float32).eps * np.abs(y).max(initial=0.0)
    np.testing.assert_allclose(dx, dy, rtol=0, atol=rel * scale + rounding)


def test_chunked_step_equals_unchunked_step(loop_batch):
  # Tolerance: the features of a chunk and of the whole batch are the same
  # math in another XLA program (other float32 rounding); epsilon 0.002 and
  # 20 unconverged Sinkhorn iterations amplify it to at most 0.7% of a
  # leaf's largest update here (measured, jax 0.10.2 on x86 CPU); a wrong
  # chunked gradient is off by O(100%).
  devices = jax.devices()
  exp = _experiment(devices)
  init = exp.init_state()
  _, whole_state, whole = _run(exp, loop_batch)
  _, chunk_state, chunked = _run(_experiment(devices, chunk_size=8),
                                 loop_batch)
  for k in whole:
    np.testing.assert_allclose(chunked[k], whole[k], rtol=2e-4, atol=1e-5,
                               err_msg=k)
  _assert_updates_close(chunk_state, whole_state, init, rel=2e-2)


def test_chunk_size_that_does_not_split_evenly_is_a_clear_error():
  c = test_config.get_config()
  c.otgan.chunk_size = 12  # Does not divide 16.
  try:
    experiment.Experiment(c)
  except ValueError as e:
    assert "chunk_size=12" in str(e)
  else:
    raise AssertionError("expected a ValueError")


def test_transport_memory_per_device_falls_with_the_device_count():
  # One global problem split by rows: each device holds n/D rows of the six
  # cost and plan matrices (compiled memory analysis, no execution).
  n, d = 512, 16
  temp = {}
  for num in (1, 8):
    mesh = sharding_lib.make_mesh((num,), ("data",),
                                  devices=jax.devices()[:num])
    rows = NamedSharding(mesh, P("data", None))
    fn = jax.jit(jax.grad(
        lambda *f: losses.minibatch_energy_distance(*f, num_iterations=5)[0],
        argnums=(0, 1, 2, 3)), in_shardings=(rows,) * 4)
    arg = jax.ShapeDtypeStruct((n, d), jnp.float32, sharding=rows)
    temp[num] = fn.lower(*(arg,) * 4).compile().memory_analysis(
    ).temp_size_in_bytes
  six_matrices = 6 * n * n * 4
  assert temp[1] >= six_matrices
  assert temp[8] < temp[1] / 5, temp


def test_fsdp_step_equals_the_replicated_step_and_shards_the_state(
    loop_batch):
  # Tolerance as in the chunked test below: another XLA program, its float32
  # rounding amplified by the unconverged Sinkhorn (measured: up to 0.72% of
  # a leaf's largest update, jax 0.10.2 on x86 CPU, XLA:CPU's older fusion
  # emitters at LLVM level 0; 0.27% with the default ones).
  devices = jax.devices()
  rep_exp = _experiment(devices)
  init = rep_exp.init_state()
  _, rep_state, rep = _run(rep_exp, loop_batch)
  exp = _experiment(devices)
  exp.config.mesh.fsdp = True
  _, state, fsdp = _run(exp, loop_batch)
  for k in rep:
    np.testing.assert_allclose(fsdp[k], rep[k], rtol=2e-4, atol=1e-5,
                               err_msg=k)
  _assert_updates_close(state, rep_state, init, rel=2e-2)
  sharded = [leaf for leaf in jax.tree.leaves(state)
             if not leaf.sharding.is_fully_replicated]
  big = [leaf for leaf in jax.tree.leaves(state)
         if leaf.size >= sharding_lib.FSDP_MIN_SIZE]
  assert sharded and len(sharded) == len(big)
  for leaf in sharded:  # Each device holds 1/8 of every sharded leaf.
    assert leaf.addressable_shards[0].data.size == leaf.size // 8

"""How the Checkpointer writes: in one process, no replica-parallel slicing
(no program compiled per array), in Orbax's standard layout."""

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from otgan_jax import checkpointing


def _replicated_tree():
  mesh = Mesh(np.array(jax.devices()), ("data",))
  rep = NamedSharding(mesh, P())
  rng = np.random.default_rng(0)
  # Distinct shapes whose rows split over the 8 replicas, as a model's do.
  return {f"w{i}": jax.device_put(
      jnp.asarray(rng.normal(size=(8 * (i + 1), 3)), jnp.float32), rep)
          for i in range(5)}


def test_a_save_in_one_process_compiles_nothing_per_array(tmp_path, caplog):
  assert jax.device_count() == 8 and jax.process_count() == 1
  tree = _replicated_tree()
  ckpt = checkpointing.Checkpointer(str(tmp_path), every_steps=1)
  with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles(True):
    ckpt.save(1, tree)
    ckpt.wait_until_finished()
  ckpt.close()
  compiled = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith("Finished XLA compilation of")]
  # The fingerprint's one program (otgan_jax/fingerprint.py), and no
  # replica-parallel slice of each array (Orbax's default compiled 8 here).
  assert compiled and all("jit(_all_sums)" in m for m in compiled), compiled

  # Orbax's standard handler reads it, with the arrays and shardings written.
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
  path = epath.Path(os.path.join(str(tmp_path), "checkpoints", "1",
                                 ocp.checkpoint_manager.DEFAULT_ITEM_NAME))
  read = ocp.StandardCheckpointHandler().restore(
      path, args=ocp.args.StandardRestore(target))
  for name, array in tree.items():
    np.testing.assert_array_equal(np.asarray(read[name]), np.asarray(array))
    assert read[name].sharding == array.sharding

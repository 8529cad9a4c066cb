"""Checkpoint fingerprints: flipped bits are caught, the newest checkpoint that
verifies is restored, bad ones are kept aside, other configs are errors."""

import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from otgan_jax import checkpointing
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _state(k=0):
  rng = np.random.default_rng(k)
  return {
      "w": jnp.asarray(rng.normal(size=(64, 24)), jnp.float32),
      "h": jnp.asarray(rng.normal(size=(16, 8)), jnp.bfloat16),
      "f16": jnp.asarray(rng.normal(size=(8,)), jnp.float16),
      "i": jnp.asarray(rng.integers(-9, 9, size=(8, 3)), jnp.int32),
      "i8": jnp.asarray(rng.integers(-9, 9, size=(16,)), jnp.int8),
      "u8": jnp.asarray(rng.integers(0, 255, size=(16,)), jnp.uint8),
      "mask": jnp.asarray(rng.integers(0, 2, size=(8,)), jnp.bool_),
      "step": jnp.int32(k),
  }


def _abstract(state):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def _reference(x) -> str:
  """The documented fingerprint, in NumPy with 64-bit arithmetic."""
  x = np.asarray(x)
  if x.dtype == np.bool_:
    u = x.astype(np.uint64)
  else:
    width = {1: np.uint8, 2: np.uint16, 4: np.uint32}[x.dtype.itemsize]
    u = x.view(width).astype(np.uint64)
  u = u.reshape(-1)
  i = np.arange(u.size, dtype=np.uint64)
  mod = np.uint64(2**32)
  a = int(u.sum() % mod)
  b = int(((u * (2 * i + 1)) % mod).sum() % mod)
  return f"{a:08x}{b:08x}"


def _flip_bit(x, position, bit=0):
  """`x` with one bit of its `position`-th byte flipped."""
  raw = bytearray(np.asarray(x).tobytes())
  raw[position] ^= 1 << bit
  return jnp.asarray(np.frombuffer(bytes(raw), np.asarray(x).dtype).reshape(
      x.shape))


def test_fingerprint_is_exact_and_the_same_on_1_and_8_devices():
  state = _state(3)
  one = checkpointing.fingerprint(state)
  assert one == {k: _reference(v) for k, v in state.items()}
  devices = jax.devices()
  assert len(devices) == 8
  flat = Mesh(np.array(devices), ("d",))
  grid = Mesh(np.array(devices).reshape(2, 4), ("a", "b"))
  specs = {"w": NamedSharding(grid, P("b", "a")),
           "h": NamedSharding(flat, P("d", None)),
           "f16": NamedSharding(flat, P("d")),
           "i": NamedSharding(flat, P("d", None)),
           "i8": NamedSharding(flat, P("d")),
           "u8": NamedSharding(grid, P(("a", "b"))),
           "mask": NamedSharding(flat, P("d")),
           "step": NamedSharding(flat, P())}
  sharded = {k: jax.device_put(v, specs[k]) for k, v in state.items()}
  assert sharded["w"].sharding.shard_shape((64, 24)) == (16, 12)
  assert checkpointing.fingerprint(sharded) == one
  on_one = {k: jax.device_put(v, devices[5]) for k, v in state.items()}
  assert checkpointing.fingerprint(on_one) == one


@pytest.mark.parametrize("name", ["w", "h", "f16", "i", "i8", "u8", "step"])
def test_one_flipped_bit_changes_the_fingerprint(name):
  state = _state(1)
  before = checkpointing.fingerprint(state)
  nbytes = np.asarray(state[name]).nbytes
  for position, bit in [(0, 0), (nbytes - 1, 7), (nbytes // 2, 3)]:
    changed = dict(state, **{name: _flip_bit(state[name], position, bit)})
    after = checkpointing.fingerprint(changed)
    assert after[name] != before[name], (position, bit)
    assert {k: v for k, v in after.items() if k != name} == {
        k: v for k, v in before.items() if k != name}


def test_swapped_elements_change_the_fingerprint():
  x = jnp.arange(10, dtype=jnp.float32)
  swapped = x.at[jnp.array([2, 7])].set(x[jnp.array([7, 2])])
  assert (checkpointing.fingerprint({"x": x})
          != checkpointing.fingerprint({"x": swapped}))


def _data_files(workdir, step):
  files = glob.glob(os.path.join(workdir, "checkpoints", str(step), "default",
                                 "ocdbt.process_*", "d", "*"))
  return sorted(files, key=os.path.getsize)


def _flip_in_file(path, where=0.5):
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    data[int(len(data) * where)] ^= 0x10
    f.seek(0)
    f.write(data)


def _save_steps(workdir, steps, max_to_keep=5):
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1,
                                    max_to_keep=max_to_keep)
  for s in steps:
    ckpt.save(s, _state(s))
  ckpt.close()


def _assert_state(restored, k):
  for name, value in _state(k).items():
    got = restored[name]
    assert got.dtype == value.dtype, name
    np.testing.assert_array_equal(np.asarray(got), np.asarray(value), name)


def test_flipped_bit_in_a_data_file_is_caught_and_the_previous_one_restored(
    tmp_path, caplog):
  workdir = str(tmp_path)
  _save_steps(workdir, [1, 2, 3])
  _flip_in_file(_data_files(workdir, 3)[-1])
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  with pytest.raises(checkpointing.CheckpointError,
                     match="differs from the fingerprint") as info:
    ckpt.restore(_abstract(_state()), 3)
  assert "mv " in str(info.value)
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "3"))  # Kept.
  assert ckpt.verified(3) is False

  with caplog.at_level(logging.WARNING):
    step, restored, skipped = ckpt.restore_latest(_abstract(_state()))
  assert (step, skipped) == (2, [3])
  _assert_state(restored, 2)
  # 3 is no longer a checkpoint of this run (moved aside): unknown.
  assert ckpt.verified(2) is True and ckpt.verified(3) is None
  corrupt = os.path.join(workdir, "checkpoints_corrupt", "3")
  warning = " ".join(r.getMessage() for r in caplog.records)
  assert "skipped the corrupt checkpoint(s) 3" in warning
  assert corrupt in warning
  assert os.path.isdir(corrupt)  # Kept on disk, out of Orbax's way.
  assert not os.path.exists(os.path.join(workdir, "checkpoints", "3"))
  assert ckpt.latest_step() == 2

  # Training goes on from 2 and saves 3 again: no collision; if that one is
  # hit too, it is kept beside the first.
  ckpt.save(3, _state(3))
  ckpt.close()
  _flip_in_file(_data_files(workdir, 3)[-1])
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  step, _, skipped = ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  assert (step, skipped) == (2, [3])
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_corrupt"))) == [
      "3", "3.1"]


def test_a_checkpoint_written_as_a_dataclass_state_round_trips(tmp_path):
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top
  exp = experiment.Experiment(test_config.get_config("gaussians"))
  state = exp.init_state()
  ckpt = checkpointing.Checkpointer(str(tmp_path), every_steps=1,
                                    max_to_keep=2)
  ckpt.save(4, state)
  ckpt.wait_until_finished()
  assert ckpt.verified(4) is True
  step, restored, skipped = ckpt.restore_latest(exp.abstract_state())
  ckpt.close()
  assert (step, skipped) == (4, [])
  assert type(restored) is type(state)
  assert checkpointing.fingerprint(restored) == checkpointing.fingerprint(
      state)
  assert restored.gen_params["params"].keys() == state.gen_params[
      "params"].keys()


def test_truncated_newest_falls_back_with_a_short_reason(tmp_path, caplog):
  workdir = str(tmp_path)
  _save_steps(workdir, [1, 2])
  path = _data_files(workdir, 2)[-1]
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.restore(_abstract(_state()), 2)
  message = str(info.value)
  assert "unreadable" in message and len(message.splitlines()) == 1
  assert "'driver'" not in message and len(message) < 900, message
  with caplog.at_level(logging.WARNING):
    step, restored, skipped = ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  assert (step, skipped) == (1, [2])
  _assert_state(restored, 1)
  assert all(len(r.getMessage().splitlines()) == 1 for r in caplog.records)


def test_garbled_step_metadata_is_corruption_not_a_missing_fingerprint(
    tmp_path):
  workdir = str(tmp_path)
  _save_steps(workdir, [1, 2])
  with open(os.path.join(workdir, "checkpoints", "2", "_CHECKPOINT_METADATA"),
            "w") as f:
    f.write("garbage")
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  step, _, skipped = ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  assert (step, skipped) == (1, [2])


def test_checkpoints_without_a_fingerprint_restore_with_one_warning(
    tmp_path, caplog):
  workdir = str(tmp_path)
  # As the Checkpointer wrote them before fingerprints existed.
  manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  manager.save(5, args=ocp.args.StandardSave(_state(5)))
  manager.wait_until_finished()
  manager.close()
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  with caplog.at_level(logging.WARNING):
    _assert_state(ckpt.restore(_abstract(_state())), 5)
  ours = [r for r in caplog.records if "fingerprint" in r.getMessage()]
  assert len(ours) == 1 and len(ours[0].getMessage().splitlines()) == 1
  assert "without verifying" in ours[0].getMessage()
  assert ckpt.verified(5) is None
  step, _, skipped = ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  assert (step, skipped) == (5, [])


def test_other_shapes_are_a_config_error_not_a_fallback(tmp_path):
  workdir = str(tmp_path)
  _save_steps(workdir, [1, 2])
  other = _abstract(_state())
  other["w"] = jax.ShapeDtypeStruct((64, 25), jnp.float32)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  for call in (lambda: ckpt.restore(other),
               lambda: ckpt.restore_latest(other)):
    with pytest.raises(checkpointing.CheckpointError,
                       match="different configuration") as info:
      call()
    assert "w: (64, 24) in the checkpoint, (64, 25) now" in str(info.value)
    assert "mv " not in str(info.value)
  missing = _abstract(_state())
  missing["new_param"] = jax.ShapeDtypeStruct((3,), jnp.float32)
  with pytest.raises(checkpointing.CheckpointError,
                     match="different configuration.*new_param"):
    ckpt.restore_latest(missing)
  ckpt.close()
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  assert not os.path.exists(os.path.join(workdir, "checkpoints_corrupt"))


def test_another_dtype_is_read_as_stored_verified_then_cast(tmp_path):
  workdir = str(tmp_path)
  _save_steps(workdir, [1])
  wanted = _abstract(_state())
  wanted["w"] = jax.ShapeDtypeStruct((64, 24), jnp.bfloat16)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  step, restored, _ = ckpt.restore_latest(wanted)
  ckpt.close()
  assert step == 1 and ckpt.verified(1) is True
  assert restored["w"].dtype == jnp.bfloat16
  np.testing.assert_array_equal(
      np.asarray(restored["w"]),
      np.asarray(_state(1)["w"].astype(jnp.bfloat16)))


def test_when_nothing_verifies_nothing_is_moved(tmp_path):
  workdir = str(tmp_path)
  _save_steps(workdir, [1, 2])
  for step in (1, 2):
    _flip_in_file(_data_files(workdir, step)[-1])
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=5)
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  message = str(info.value)
  assert "verifies" in message and "Nothing was moved or deleted" in message
  assert "step 2:" in message and "step 1:" in message
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  assert not os.path.exists(os.path.join(workdir, "checkpoints_corrupt"))


def test_read_only_creates_moves_and_saves_nothing(tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  ckpt = checkpointing.Checkpointer(workdir, read_only=True)
  assert ckpt.latest_step() is None and ckpt.all_steps() == []
  with pytest.raises(checkpointing.CheckpointError, match="No checkpoint"):
    ckpt.restore_latest(_abstract(_state()))
  with pytest.raises(checkpointing.CheckpointError, match="read-only"):
    ckpt.save(1, _state(1))
  ckpt.close()
  ckpt.close()
  assert os.listdir(workdir) == []  # No empty checkpoints/ folder.

  _save_steps(workdir, [1, 2])
  _flip_in_file(_data_files(workdir, 2)[-1])
  tmp = os.path.join(workdir, "checkpoints", "3.orbax-checkpoint-tmp")
  os.makedirs(tmp)  # An interrupted save: left alone when read-only.
  ckpt = checkpointing.Checkpointer(workdir, read_only=True)
  step, _, skipped = ckpt.restore_latest(_abstract(_state()))
  ckpt.close()
  assert (step, skipped) == (1, [2])
  assert os.path.isdir(tmp)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [
      "1", "2", "3.orbax-checkpoint-tmp"]
  assert not os.path.exists(os.path.join(workdir, "checkpoints_corrupt"))


_VALUES = textwrap.dedent("""
    import numpy as np
    def values():
      # Big enough that each shard is a data file of its own (not inlined).
      return {"w": np.sin(np.arange(1024 * 8) * 0.37).astype(
                  np.float32).reshape(1024, 8),
              "n": np.arange(8, dtype=np.int32), "step": np.int32(0)}
""")
_NS = {}
exec(_VALUES, _NS)  # pylint: disable=exec-used

_TWO_PROCESSES = _VALUES + textwrap.dedent("""
    import json, os, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=pid)
    import numpy as np
    import jax.numpy as jnp
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from otgan_jax import checkpointing
    mesh = Mesh(np.array(jax.devices()), ("d",))  # 2 processes x 2 devices.
    full = values()
    def global_state(k):
      # Sharded over the processes: no process holds all of "w".
      out = {}
      for name, value in full.items():
        value = (value + k).astype(value.dtype)
        spec = P("d") if value.ndim else P()
        sharding = NamedSharding(mesh, spec)
        out[name] = jax.make_array_from_callback(
            value.shape, sharding, lambda idx, v=value: v[idx])
      return out
    state = global_state(0)
    assert not state["w"].is_fully_addressable
    print("FP", json.dumps(checkpointing.fingerprint(state)), flush=True)
    ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
    ckpt.save(1, global_state(1))
    ckpt.save(2, global_state(2))
    ckpt.wait_until_finished()
    multihost_utils.sync_global_devices("saved")
    if pid == 0:  # Step 2's content no longer matches its fingerprint.
      meta = os.path.join(workdir, "checkpoints", "2", "_CHECKPOINT_METADATA")
      with open(meta) as f:
        record = json.load(f)
      leaves = record["custom_metadata"]["otgan_fingerprint"]["leaves"]
      leaves["w"] = "%016x" % (int(leaves["w"], 16) ^ 1)
      with open(meta, "w") as f:
        json.dump(record, f)
    multihost_utils.sync_global_devices("flipped")
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        state)
    step, restored, skipped = ckpt.restore_latest(abstract)
    same = checkpointing.fingerprint(restored) == checkpointing.fingerprint(
        global_state(1))
    print("RESTORED", step, skipped, same, flush=True)
    # Step 3 with the files of process 1's arrays cut short: whichever
    # processes fail to read them, all fall back together.
    ckpt.save(3, global_state(3))
    ckpt.wait_until_finished()
    multihost_utils.sync_global_devices("saved 3")
    if pid == 0:
      data = os.path.join(workdir, "checkpoints", "3", "default",
                          "ocdbt.process_1", "d")
      for name in os.listdir(data):
        with open(os.path.join(data, name), "r+b") as f:
          f.truncate(os.path.getsize(os.path.join(data, name)) // 2)
    multihost_utils.sync_global_devices("truncated")
    step, restored, skipped = ckpt.restore_latest(abstract)
    print("TRUNCATED", step, skipped, flush=True)
    ckpt.close()
""")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_on_the_fingerprint_and_the_fallback(tmp_path):
  values = _NS["values"]()
  reference = checkpointing.fingerprint(
      {k: jnp.asarray(v) for k, v in values.items()})
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu",
      XLA_FLAGS="--xla_force_host_platform_device_count=2",
      PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  port, workdir = _free_port(), str(tmp_path / "run")
  procs = [subprocess.Popen(
      [sys.executable, "-c", _TWO_PROCESSES, str(port), str(i), workdir],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=240))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.communicate()
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
    lines = dict(line.split(" ", 1) for line in out.splitlines()
                 if line.startswith(("FP ", "RESTORED ", "TRUNCATED ")))
    assert json.loads(lines["FP"]) == reference  # As on one device.
    assert lines["RESTORED"] == "1 [2] True"
    assert lines["TRUNCATED"] == "1 [3]"
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_corrupt"))) == [
      "2", "3"]
  shutil.rmtree(workdir)

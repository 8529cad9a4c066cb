"""A failed checkpoint write is one clear CheckpointError; nothing is lost;
the manager shuts down cleanly after it."""

import errno
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax import checkpointing
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# What Orbax raises when TensorStore hits a full disk (its OCDBT writer turns
# ENOSPC into RESOURCE_EXHAUSTED), and what Python's own writes raise.
_TENSORSTORE_FULL = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "w/0" in OCDBT database at local file '
    '"/x/checkpoints/2.orbax-checkpoint-tmp/default.orbax-checkpoint-tmp/'
    'ocdbt.process_0/": Failed writing: "/x/d/5c1a6b": Failed to write 4096 '
    "bytes to file 7: No space left on device [os_error_code='28']")
_PYTHON_FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                       "/x/checkpoints/2.orbax-checkpoint-tmp/_METADATA")


def _state(k):
  return {"w": jnp.full((32, 4), float(k)), "step": jnp.int32(k)}


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                      _state(0))


def _expected(step, last, directory):
  return (f"could not write checkpoint step {step} (no space left on device); "
          f"the last complete checkpoint is step {last} and nothing was lost; "
          f"free space in {directory} and rerun the same command")


def _intact(workdir, step):
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=1)
  got, state, skipped = ckpt.restore_latest(_abstract())
  ckpt.close()
  assert (got, skipped) == (step, [])
  np.testing.assert_array_equal(np.asarray(state["w"]),
                                np.asarray(_state(step)["w"]))


@pytest.mark.parametrize("error", [_TENSORSTORE_FULL, _PYTHON_FULL],
                         ids=["tensorstore", "python"])
def test_async_failure_surfacing_in_wait_is_one_clear_error(
    tmp_path, monkeypatch, error):
  workdir = str(tmp_path)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
  ckpt.save(1, _state(1))
  ckpt.wait_until_finished()
  real_wait = ckpt._manager.wait_until_finished
  armed = []

  def failing_wait():
    real_wait()
    if armed and not armed[0]:  # The background write of step 2 failed.
      armed[0] = True
      raise error
  monkeypatch.setattr(ckpt._manager, "wait_until_finished", failing_wait)
  ckpt.save(2, _state(2))
  armed.append(False)
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.wait_until_finished()
  assert str(info.value) == _expected(2, 1, ckpt.directory)
  assert ckpt.verified(2) is False and ckpt.verified(1) is True
  ckpt.close()  # No second error.
  ckpt.close()


def test_failure_surfacing_in_the_next_save_names_the_failed_step(
    tmp_path, monkeypatch):
  workdir = str(tmp_path)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
  ckpt.save(1, _state(1))
  ckpt.wait_until_finished()
  real_save = ckpt._manager.save

  def save(step, *args, **kwargs):
    if step == 3:  # Orbax waits for step 2 first; its write failed.
      raise _TENSORSTORE_FULL
    return real_save(step, *args, **kwargs)
  monkeypatch.setattr(ckpt._manager, "save", save)
  monkeypatch.setattr(ckpt, "_complete_steps", lambda: [1])
  ckpt.save(2, _state(2))
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.save(3, _state(3))
  assert str(info.value) == _expected(2, 1, ckpt.directory)
  ckpt.close()


def test_failure_surfacing_in_close_is_raised_once_and_orbax_is_closed(
    tmp_path, monkeypatch):
  ckpt = checkpointing.Checkpointer(str(tmp_path), every_steps=1,
                                    max_to_keep=3)
  ckpt.save(1, _state(1))
  real_wait, real_close = ckpt._manager.wait_until_finished, ckpt._manager.close
  closed = []

  def failing_wait():
    real_wait()
    raise _PYTHON_FULL

  def close():
    closed.append(1)
    real_close()
  monkeypatch.setattr(ckpt._manager, "wait_until_finished", failing_wait)
  monkeypatch.setattr(ckpt._manager, "close", close)
  monkeypatch.setattr(ckpt, "_complete_steps", lambda: [])
  with pytest.raises(checkpointing.CheckpointError,
                     match="could not write checkpoint step 1 .*no checkpoint "
                           "was completed before it"):
    ckpt.close()
  assert closed == [1]  # Shut down although the wait failed.
  ckpt.close()


def test_other_write_errors_are_one_short_error_too(tmp_path, monkeypatch):
  ckpt = checkpointing.Checkpointer(str(tmp_path), every_steps=1,
                                    max_to_keep=3)
  long_error = ValueError("INTERNAL: something broke\n" + "spec: {...}\n" * 60)

  def save(*args, **kwargs):
    raise long_error
  monkeypatch.setattr(ckpt._manager, "save", save)
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.save(1, _state(1))
  message = str(info.value)
  assert message.startswith(
      "could not write checkpoint step 1 (ValueError: INTERNAL: something "
      "broke); no checkpoint was completed before it;")
  assert len(message.splitlines()) == 1
  assert info.value.__cause__ is long_error
  ckpt.close()


# A real write failure, no root needed: a file size limit makes TensorStore's
# writes fail (EFBIG) as a full disk does (ENOSPC), through Orbax's async path.
_REAL_FAILURE = textwrap.dedent("""
    import resource, signal, sys
    import jax, jax.numpy as jnp
    from otgan_jax import checkpointing
    workdir = sys.argv[1]
    ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=1)
    ckpt.save(1, {"w": jnp.full((32, 4), 1.0), "step": jnp.int32(1)})
    ckpt.wait_until_finished()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    big = {"w": jax.random.normal(jax.random.key(0), (250_000, 4)),
           "step": jnp.int32(2)}
    try:
      try:
        ckpt.save(2, big)
        ckpt.save(3, big)
      finally:
        ckpt.close()
    except checkpointing.CheckpointError as e:
      print("ERROR", e, flush=True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
""")


def test_a_real_write_failure_is_one_error_and_exits_cleanly(tmp_path):
  workdir = str(tmp_path / "run")
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu", XLA_FLAGS="",
      PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, "-c", _REAL_FAILURE, workdir],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  errors = [line for line in proc.stdout.splitlines()
            if line.startswith("ERROR ")]
  directory = os.path.join(workdir, "checkpoints")
  assert errors == ["ERROR could not write checkpoint step 2 (file too large "
                    "for the file system or the file size limit); the last "
                    "complete checkpoint is step 1 and nothing was lost; free "
                    f"space in {directory} and rerun the same command"]
  for bad in ("Event loop is closed", "Exception ignored", "Traceback"):
    assert bad not in proc.stderr, proc.stderr[-4000:]
  _intact(workdir, 1)  # And the half-written step 2 is cleaned up.
  assert sorted(os.listdir(directory)) == ["1"]


def test_truncated_file_restore_error_is_short(tmp_path):
  workdir = str(tmp_path)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
  ckpt.save(1, {"w": jax.random.normal(jax.random.key(1), (4096,)),
                "step": jnp.int32(1)})
  ckpt.close()
  files = [os.path.join(d, f) for d, _, fs in os.walk(
      os.path.join(workdir, "checkpoints", "1")) for f in fs
           if os.sep + "d" + os.sep in os.path.join(d, f)]
  big = max(files, key=os.path.getsize)
  with open(big, "r+b") as f:
    f.truncate(os.path.getsize(big) // 2)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
  with pytest.raises(checkpointing.CheckpointError) as info:
    ckpt.restore({"w": jax.ShapeDtypeStruct((4096,), jnp.float32),
                  "step": jax.ShapeDtypeStruct((), jnp.int32)})
  ckpt.close()
  message = str(info.value)
  assert len(message.splitlines()) == 1 and "'driver'" not in message
  assert "OUT_OF_RANGE" in message  # The reason, from TensorStore's cause.
  assert "mv " in message and len(message) < 900, message


def test_short_reason_keeps_the_first_lines_only():
  cause = ValueError('OUT_OF_RANGE: Error reading "a/0" [source locations='
                     "'x.cc:1']")
  try:
    try:
      raise cause
    except ValueError as c:
      raise Exception("Encountered error while reading array index: (0,). "
                      "See full TensorStore details: <spec({\n 'driver': "
                      "'zarr',\n" + " 'k': 1,\n" * 60 + "})>.") from c
  except Exception as e:  # pylint: disable=broad-except
    reason = checkpointing.short_reason(e)
  assert reason == ("Exception: Encountered error while reading array index: "
                    '(0,). (caused by: OUT_OF_RANGE: Error reading "a/0")')


_TRUNCATED_RESTORE = textwrap.dedent("""
    import os, sys
    import jax, jax.numpy as jnp
    from otgan_jax import checkpointing
    workdir = sys.argv[1]
    state = {"w": jax.random.normal(jax.random.key(1), (4096,)),
             "v": jnp.ones((64,)), "step": jnp.int32(1)}
    ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
    ckpt.save(1, state)
    ckpt.close()
    data = os.path.join(workdir, "checkpoints", "1", "default",
                        "ocdbt.process_0", "d")
    big = max((os.path.join(data, n) for n in os.listdir(data)),
              key=os.path.getsize)
    with open(big, "r+b") as f:
      f.truncate(os.path.getsize(big) // 2)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                            state)
    ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=3)
    try:
      ckpt.restore(abstract)
    except checkpointing.CheckpointError as e:
      print("ERROR", e, flush=True)
    finally:
      ckpt.close()
""")


def test_a_failed_restore_leaves_no_tracebacks_at_exit(tmp_path):
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu", XLA_FLAGS="",
      PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run(
      [sys.executable, "-c", _TRUNCATED_RESTORE, str(tmp_path / "run")],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert [line[:6] for line in proc.stdout.splitlines()] == ["ERROR "]
  for bad in ("Event loop is closed", "Exception ignored", "Traceback"):
    assert bad not in proc.stderr, proc.stderr[-4000:]

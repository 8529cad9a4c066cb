"""kill -9 at the worst moments, then resume: nothing completed is lost and
the final state equals an uninterrupted run's, bit for bit.

The run is `launch.train` as a user starts it (a subprocess, tiny ring
config, a checkpoint every 2 steps); SIGKILL gives it no chance to clean up:
no checkpoint finalised, the workdir lock left behind. Every wait has a
deadline, so the suite cannot hang.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
TOTAL = 200
# One CPU device: hundreds of steps of 8 fake devices on 2 cores can starve
# XLA:CPU's collective rendezvous (it aborts after 40 s); the sharded path
# has its own tests.
ENV = child_processes.child_env(
    XLA_FLAGS="--xla_force_host_platform_device_count=1",
    JAX_PLATFORMS="cpu")


def _command(workdir, every):
  return [sys.executable, "-m", "launch.train",
          "--config=configs/test.py:gaussians", f"--workdir={workdir}",
          f"--config.total_steps={TOTAL}", f"--config.ckpt.every_steps={every}",
          "--config.ckpt.max_to_keep=1000", "--config.log_every_steps=1000",
          "--config.sample_every_steps=1000"]


def _train(workdir, every=1000):
  proc = subprocess.run(_command(workdir, every), cwd=ROOT, env=ENV,
                        capture_output=True, text=True, timeout=600,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _fingerprint(workdir, step):
  """The content hash of every state leaf saved with checkpoint `step`."""
  path = os.path.join(workdir, "checkpoints", str(step),
                      "_CHECKPOINT_METADATA")
  with open(path) as f:
    return json.load(f)["custom_metadata"]["otgan_fingerprint"]["leaves"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """The final state's fingerprint of an uninterrupted run of TOTAL steps."""
  workdir = str(tmp_path_factory.mktemp("straight") / "run")
  _train(workdir)
  return _fingerprint(workdir, TOTAL)


def _start(workdir):
  return subprocess.Popen(_command(workdir, 2), cwd=ROOT, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)


def _entries(folder):
  try:
    return os.listdir(folder)
  except FileNotFoundError:
    return []


def _complete(folder):
  return sorted(int(n) for n in _entries(folder) if n.isdigit())


def _kill_when(proc, ready, deadline_s=240):
  """SIGKILL `proc` as soon as `ready()` holds (polled every ~1 ms)."""
  deadline = time.time() + deadline_s
  try:
    while not ready():
      if proc.poll() is not None:
        raise AssertionError("the run ended before the fault:\n"
                             + proc.stderr.read()[-3000:])
      if time.time() > deadline:
        raise AssertionError("timed out waiting for the moment to kill")
      time.sleep(0.001)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL


def _resume_and_compare(workdir, kept_before, straight):
  # Every checkpoint complete at the kill is still there...
  folder = os.path.join(workdir, "checkpoints")
  assert set(kept_before) <= set(_complete(folder))
  # ...the dead run's lock is taken over, and the run ends where an
  # uninterrupted one does (every leaf's content hash equal).
  proc = _train(workdir)
  assert "at step" in proc.stderr
  resumed = _fingerprint(workdir, TOTAL)
  assert resumed.keys() == straight.keys()
  assert resumed == straight


def test_kill_during_training_then_resume_equals_an_uninterrupted_run(
    tmp_path, straight):
  workdir = str(tmp_path / "run")
  folder = os.path.join(workdir, "checkpoints")
  proc = _start(workdir)
  _kill_when(proc, lambda: len(_complete(folder)) >= 5)
  _resume_and_compare(workdir, _complete(folder), straight)


def test_kill_during_a_checkpoint_write_then_resume(tmp_path, straight):
  workdir = str(tmp_path / "run")
  folder = os.path.join(workdir, "checkpoints")
  seen = {}

  def writing():
    # Orbax writes a step into a temporary folder, renamed when complete.
    partial = [n for n in _entries(folder) if not n.isdigit()
               and "tmp" in n]
    if partial and len(_complete(folder)) >= 3:
      seen["partial"] = partial
      seen["complete"] = _complete(folder)
      return True
    return False

  _kill_when(_start(workdir), writing)
  assert seen["partial"]
  _resume_and_compare(workdir, seen["complete"], straight)

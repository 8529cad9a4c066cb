"""Faults around a training run: signals at start-up, a full disk, a
read-only workdir, a NaN, a resume that replays steps.

Subprocess tests have timeouts, so the suite cannot hang. The disk and
read-only tests mount a small tmpfs (they need root; skipped otherwise, the
simulated write failure of test_checkpoint_errors.py still runs).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from configs import test as test_config
from otgan_jax import train
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
ENV = child_processes.child_env(
    XLA_FLAGS="--xla_force_host_platform_device_count=1",
    JAX_PLATFORMS="cpu")


def _train_command(workdir, *flags):
  return [sys.executable, "-m", "launch.train",
          "--config=configs/test.py:gaussians", f"--workdir={workdir}",
          *flags]


def _interactive_train_command(workdir, *flags):
  """`_train_command` with Python's SIGINT handler even if this suite runs
  in the background (child_processes.with_interactive_sigint)."""
  return child_processes.with_interactive_sigint(
      *_train_command(workdir, *flags)[2:])


def _run(cmd, timeout=300):
  return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True,
                        text=True, timeout=timeout, check=False)


_messages = child_processes.messages


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130),
                                      (signal.SIGTERM, 143)])
def test_a_signal_before_the_first_step_says_nothing_to_save(tmp_path, sig,
                                                            code):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(
      _interactive_train_command(workdir, "--config.total_steps=50"),
      cwd=ROOT, env=ENV,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  # Start-up is under way once the config is logged (before compilation).
  deadline, seen = time.time() + 120, ""
  try:
    while "Config:" not in seen and time.time() < deadline:
      line = proc.stderr.readline()
      if not line:
        break
      seen += line
    proc.send_signal(sig)
    rest = proc.communicate(timeout=120)[1]
  finally:
    if proc.poll() is None:
      proc.kill()
  stderr = seen + rest
  assert "Config:" in seen, stderr[-3000:]
  assert proc.returncode == code, stderr[-3000:]
  assert "Traceback" not in stderr, stderr[-3000:]
  assert _messages(stderr)[-1] == (f"{signal.Signals(sig).name}: stopped "
                                   "before the first step, nothing to save")
  assert not os.path.exists(workdir / "checkpoints") or not os.listdir(
      workdir / "checkpoints")


def test_a_non_finite_step_writes_no_sample_grid(tmp_path):
  workdir = str(tmp_path)
  c = test_config.get_config("gaussians")
  c.total_steps, c.sample_every_steps, c.log_every_steps = 2, 1, 1
  train.train_and_evaluate(c, workdir)
  c.total_steps = 9
  c.optim.critic.learning_rate = 1e30
  c.optim.generator.learning_rate = 1e30
  with pytest.raises(train.NonFiniteLossError) as e:
    train.train_and_evaluate(c, workdir)
  bad = int(str(e.value).split("step ")[1].split()[0].rstrip(":,."))
  plots = sorted(os.listdir(os.path.join(workdir, "samples")))
  assert f"step_{bad:07d}.png" not in plots
  assert plots[-1] == f"step_{bad - 1:07d}.png"


def test_steps_replayed_after_a_resume_are_logged_once(tmp_path):
  workdir = str(tmp_path)
  c = test_config.get_config("gaussians")
  c.total_steps, c.log_every_steps, c.ckpt.every_steps = 5, 1, 2
  train.train_and_evaluate(c, workdir)
  # Lose the checkpoints after step 2: steps 3..5 run again.
  for step in ("4", "5"):
    path = os.path.join(workdir, "checkpoints", step)
    os.rename(path, os.path.join(workdir, f"moved_{step}"))
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 6, "loss')  # A line cut short by a killed process.
  c.total_steps = 6
  train.train_and_evaluate(c, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == [1, 2, 3, 4, 5, 6]


@pytest.fixture
def tmpfs(tmp_path):
  """A mounted 4 MiB tmpfs (root only), unmounted afterwards."""
  mount = tmp_path / "tmpfs"
  mount.mkdir()
  proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                         str(mount)], capture_output=True, text=True,
                        check=False)
  if proc.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
  try:
    yield mount
  finally:
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_loses_nothing_and_the_run_resumes_once_freed(tmpfs):
  workdir = tmpfs / "run"
  flags = ("--config.total_steps=400", "--config.ckpt.every_steps=1",
           "--config.ckpt.max_to_keep=1000", "--config.log_every_steps=1",
           "--config.sample_every_steps=100000")
  # Leave the run about 600 KB: enough for some checkpoints, not 400.
  filler = tmpfs / "filler"
  stat = os.statvfs(tmpfs)
  with open(filler, "wb") as f:
    f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 600_000))
  proc = _run(_train_command(workdir, *flags))
  assert proc.returncode == 1, proc.stderr[-3000:]
  for bad in ("Traceback", "Event loop is closed", "Exception ignored"):
    assert bad not in proc.stderr, proc.stderr[-3000:]
  # One error line, the last (the log shows the config above it).
  message = [line for line in _messages(proc.stderr) if "error" in line]
  assert len(message) == 1, proc.stderr[-3000:]
  assert _messages(proc.stderr)[-1] == message[0]
  assert "nothing was lost" in message[0] and "free space" in message[0]
  kept = sorted(int(n) for n in os.listdir(workdir / "checkpoints")
                if n.isdigit())
  assert kept and kept[-1] < 400
  # (A save still in flight at the error may complete while closing.)
  named = int(message[0].split("the last complete checkpoint is step ")[1]
              .split()[0])
  assert named in kept
  os.remove(filler)
  proc = _run(_train_command(workdir, *flags, "--config.ckpt.every_steps=400",
                             "--config.ckpt.max_to_keep=2"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"at step {kept[-1]}" in proc.stderr


def test_a_read_only_workdir_is_one_line_and_still_samples(tmpfs, tmp_path):
  workdir = tmpfs / "run"
  assert _run(_train_command(workdir, "--config.total_steps=2")
              ).returncode == 0
  remount = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)],
                           capture_output=True, text=True, check=False)
  if remount.returncode:
    pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
  proc = _run(_train_command(workdir, "--config.total_steps=4"))
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert _messages(proc.stderr)[-1:] == [
      f"error (WorkdirError): Cannot write in --workdir={workdir} (Read-only "
      "file system; a read-only location?): give a folder you can write to "
      "(sampling and evaluation of a finished run only read it)."]
  out = tmp_path / f"{uuid.uuid4().hex}.npz"
  proc = _run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
               "--num=20", f"--out={out}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert out.exists()
  # Evaluation reads it too; its result goes where it can be written.
  evaluate = [sys.executable, "-m", "launch.evaluate", f"--workdir={workdir}",
              "--metrics=w1", "--num_samples=50", "--num_reference=50"]
  proc = _run(evaluate + [f"--out={tmp_path}/eval.json"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = _run(evaluate)  # Into the read-only workdir: one line.
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert "Read-only file system" in _messages(proc.stderr)[-1]

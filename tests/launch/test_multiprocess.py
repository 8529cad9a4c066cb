"""The multi-host path, on localhost: two real processes joined by
`jax.distributed` (CPU collectives over gloo), each reading its half of
every batch, train like one process; their checkpoint restores in one."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from configs import test as test_config
from otgan_jax import checkpointing
from otgan_jax import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_two_processes_train_like_one_and_their_checkpoint_restores_in_one(
    tmp_path):
  two = str(tmp_path / "two")
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "launch.train", "--config=configs/test.py",
       f"--workdir={two}", f"--coordinator_address=127.0.0.1:{port}",
       "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  assert "Process 1 of 2; 4 local and 8 global devices" in outs[1][1]

  # The same run in this process: 8 devices, one process.
  config = test_config.get_config()
  one = str(tmp_path / "one")
  state = train.train_and_evaluate(config, one)

  # Only process 0 wrote logs, and the losses agree with one process.
  two_metrics, one_metrics = _metrics(two), _metrics(one)
  assert [m["step"] for m in two_metrics] == [m["step"] for m in one_metrics]
  for a, b in zip(two_metrics, one_metrics):
    for key in ("loss/critic", "loss/generator", "w/xy", "w/yyp"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)

  # The checkpoint written by two processes restores in one, on one device.
  exp = train.Experiment(config, devices=jax.devices()[:1])
  ckpt = checkpointing.Checkpointer(two, every_steps=1, max_to_keep=1)
  restored = ckpt.restore(exp.abstract_state())
  ckpt.close()
  assert int(restored.step) == config.total_steps
  assert restored.gen_params is not None
  for a, b in zip(jax.tree.leaves(jax.device_get(restored)),
                  jax.tree.leaves(jax.device_get(state))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3,
                               atol=1e-4)


def test_sigterm_to_one_process_stops_both_at_one_saved_step(tmp_path):
  # JAX's preemption service spreads the notice; both processes reach the
  # same sync step, save one checkpoint together and exit cleanly.
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "launch.train", "--config=configs/test.py",
       f"--workdir={workdir}", f"--coordinator_address=127.0.0.1:{port}",
       "--num_processes=2", f"--process_id={i}",
       "--config.total_steps=100000", "--config.log_every_steps=1",
       "--config.ckpt.every_steps=100000"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (
      metrics.exists() and metrics.read_text().count("\n") >= 3):
    time.sleep(0.5)
  procs[0].send_signal(signal.SIGTERM)
  outs = [p.communicate(timeout=300) for p in procs]
  stopped = []
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
    line = [l for l in err.splitlines() if "Stopped at step" in l][0]
    stopped.append(int(line.split("Stopped at step ")[1].split()[0]))
  assert stopped[0] == stopped[1]
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [
      stopped[0]]

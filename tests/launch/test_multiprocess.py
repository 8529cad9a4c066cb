"""The multi-host path, on localhost: two real processes joined by
`jax.distributed` (CPU collectives over gloo), each reading its half of
every batch, train like one process; their checkpoint restores in one."""

import glob
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from configs import test as test_config
from otgan_jax import checkpointing
from otgan_jax import experiment
from otgan_jax import train
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch_two(workdir, local_devices, *flags):
  """Starts launch.train as processes 0 and 1 of one run on localhost."""
  port = _free_port()
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu",
      XLA_FLAGS=f"--xla_force_host_platform_device_count={local_devices}")
  return [subprocess.Popen(
      [sys.executable, "-m", "launch.train", f"--workdir={workdir}",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
       f"--process_id={i}", *flags],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]


def _finish(procs, timeout=600):
  """Waits for both; each must exit 0. Returns their stderr."""
  outs = [p.communicate(timeout=timeout) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  return [err for _, err in outs]


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_two_processes_train_like_one_and_their_checkpoint_restores_in_one(
    tmp_path):
  two = str(tmp_path / "two")
  # Step 4 is profiled too (it changes no value): both processes share this
  # host and workdir, and each writes its own trace, perfetto copy included.
  errs = _finish(_launch_two(two, 4, "--config=configs/test.py",
                             "--config.profile.start_step=3",
                             "--config.profile.num_steps=1"))
  assert "Process 1 of 2; 4 local and 8 global devices" in errs[1]
  for i in range(2):
    found = glob.glob(os.path.join(two, "tb", f"process_{i}", "plugins",
                                   "profile", "*", "*"))
    names = sorted(os.path.basename(f) for f in found)
    assert len(names) == 3 and names[0] == "perfetto_trace.json.gz", names
    assert names[1].endswith(".trace.json.gz"), names
    assert names[2].endswith(".xplane.pb"), names

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
  exp = experiment.Experiment(config, devices=jax.devices()[:1])
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
  procs = _launch_two(workdir, 2, "--config=configs/test.py",
                      "--config.total_steps=100000",
                      "--config.log_every_steps=1",
                      "--config.ckpt.every_steps=100000")
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (
      metrics.exists() and metrics.read_text().count("\n") >= 3):
    time.sleep(0.5)
  procs[0].send_signal(signal.SIGTERM)
  stopped = []
  for err in _finish(procs, timeout=300):
    line = [l for l in err.splitlines() if "Stopped at step" in l][0]
    stopped.append(int(line.split("Stopped at step ")[1].split()[0]))
  assert stopped[0] == stopped[1]
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [
      stopped[0]]


def test_potgan_on_two_processes_trains_the_vae_once_and_both_use_it(tmp_path):
  # Process 0 pretrains the VAE into the shared workdir while process 1 waits
  # at a barrier; then both load the same encoder and train in step.
  workdir = tmp_path / "potgan"
  flags = ["--config=configs/test.py:potgan", "--config.total_steps=2"]
  errs = _finish(_launch_two(workdir, 2, *flags))
  assert "POT-GAN: encoder saved to" in errs[0]
  assert "POT-GAN: training the VAE" not in errs[1]
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2"]
  # No temporary directory of the atomic write is left behind.
  assert not [p for p in workdir.iterdir() if p.name.startswith("tmp")]
  logged = _metrics(workdir)
  assert logged[-1]["step"] == 2
  assert np.isfinite(logged[-1]["pot/matching_cost"])


def test_bad_input_in_both_processes_is_one_line_each(tmp_path):
  # Each process ends with its one-line error, having left jax.distributed
  # first: no peer logs the lost connection.
  missing = tmp_path / "missing"
  procs = _launch_two(tmp_path / "run", 1,
                      "--config=configs/otgan_cifar10.py:smoke",
                      f"--config.data.data_dir={missing}")
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 1, err[-3000:]
    lines = child_processes.messages(err)
    assert lines == [f"error (DataError): The data folder '{missing}' for "
                     "cifar10 does not exist or is not a folder. Pass "
                     "--config.data.data_dir=DIR pointing at the folder "
                     "with the official files, or use "
                     "--config.data.source=tfds."], err[-3000:]

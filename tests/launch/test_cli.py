"""The command-line entry points, run as a user would, twice to prove resume."""

import os
import subprocess
import sys

import numpy as np

from configs import test as test_config
from otgan_jax import train
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))




def test_train_twice_resumes_then_sample(tmp_path, cli):
  workdir = str(tmp_path / "run")
  first = cli("launch.train", "--config=configs/test.py", f"--workdir={workdir}",
              "--config.total_steps=3")
  assert "Initialised a new run" in first.stderr
  second = cli("launch.train", "--config=configs/test.py",
               f"--workdir={workdir}", "--config.total_steps=6")
  assert "Resumed from" in second.stderr and "at step 3" in second.stderr
  assert "step 6/6" in second.stderr and "ETA" in second.stderr
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  # A changed config on resume is kept beside the original, not over it.
  assert os.path.exists(os.path.join(workdir, "config_resumed_at_3.json"))

  out = str(tmp_path / "s" / "samples.npz")
  cli("launch.sample", f"--workdir={workdir}", "--num=37", f"--out={out}")
  samples = np.load(out)["samples"]
  assert samples.shape == (37, 8, 8, 1) and samples.dtype == np.float32
  assert np.isfinite(samples).all()
  assert samples.min() >= -1e-3 and samples.max() <= 16 + 1e-3  # digits' range
  assert samples.std() > 0
  assert os.path.getsize(str(tmp_path / "s" / "samples.png")) > 0


def test_vector_data_sample_gives_a_scatter_plot(tmp_path, cli):
  # The run is trained here (the fault tests train the ring through the
  # command line); the sampling command is the subject.
  workdir = str(tmp_path / "run")
  c = test_config.get_config("gaussians")
  c.total_steps = 2
  train.train_and_evaluate(c, workdir)
  out = str(tmp_path / "g.npz")
  cli("launch.sample", f"--workdir={workdir}", "--num=50", f"--out={out}")
  assert np.load(out)["samples"].shape == (50, 2)
  assert os.path.getsize(str(tmp_path / "g.png")) > 0


def test_config_typo_is_an_error(cli):
  proc = cli("launch.train", "--config=configs/test.py",
             "--config.ot.epsilom=0.1", check=False)
  assert proc.returncode != 0
  assert 'Did you mean "epsilon"' in proc.stderr


def test_bad_data_folder_is_a_clear_error(tmp_path, cli):
  os.makedirs(tmp_path / "empty")
  workdir = tmp_path / "run"
  proc = cli("launch.train", "--config=configs/otgan_mnist.py:smoke",
             f"--workdir={workdir}", f"--config.data.data_dir={tmp_path}/empty",
             check=False)
  assert proc.returncode != 0
  assert "train-images-idx3-ubyte.gz" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not os.path.exists(workdir)


def test_sample_without_a_run_is_a_clear_error(tmp_path, cli):
  proc = cli("launch.sample", f"--workdir={tmp_path}", check=False)
  assert proc.returncode != 0 and "config.json" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, cli):
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  proc = subprocess.Popen(
      [sys.executable, "-m", "launch.train", "--config=configs/test.py",
       f"--workdir={workdir}", "--config.total_steps=100000",
       "--config.log_every_steps=1", "--config.ckpt.every_steps=100000"],
      cwd=ROOT, env=child_processes.child_env(), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (metrics.exists()
                                        and metrics.read_text().count("\n") >= 2):
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-3000:]
  assert "Stopped at step" in stderr
  saved = [int(s) for s in os.listdir(workdir / "checkpoints")]
  assert len(saved) == 1 and 2 <= saved[0] < 100000
  resumed = cli("launch.train", "--config=configs/test.py",
                f"--workdir={workdir}", f"--config.total_steps={saved[0] + 1}",
                "--config.log_every_steps=1", "--config.ckpt.every_steps=100000")
  assert f"at step {saved[0]}" in resumed.stderr

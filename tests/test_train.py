"""Training: the step learns, resume is bit-exact, bad input fails clearly."""

import glob
import logging
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from otgan_jax import checkpointing
from otgan_jax import data as data_lib
from otgan_jax import device_memory
from otgan_jax import experiment
from otgan_jax import train
from otgan_jax.methods import otgan as otgan_method


def _config(arg=None, **overrides):
  c = test_config.get_config(arg)
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  return c


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


def test_train_step_lowers_the_generator_loss_on_toy_data(loop_batch):
  # A fixed (frozen) critic: the generator's objective is then a fixed,
  # consistent distance, and training must lower it.
  c = _config("gaussians", total_steps=60, batch_size=64)
  c.otgan.freeze_critic_at_step = 0
  c.optim.generator.learning_rate = 3e-3
  exp = experiment.Experiment(c)
  state = exp.init_state()
  step = exp.jit_train_step()
  eval_batches = [data_lib.normalize(exp.source.sample(10**6 + i, 128)["x"],
                                     exp.info) for i in range(4)]

  def loss(gen_params):
    # On host copies: one device, no cross-device programs outside the step.
    gen_params = jax.device_get(gen_params)
    critic_params = jax.device_get(state.critic_params)
    vals = []
    for i, real in enumerate(eval_batches):
      value, _ = otgan_method.ot_loss(
          gen_params, critic_params, real.reshape(2, 64, 2),
          jax.random.key(100 + i), generator=exp.generator,
          critic=exp.method.critic, z_dim=c.model.z_dim,
          loss_fn=exp.method.loss_fn(),
          random_flip=False)
      vals.append(float(value))
    return np.mean(vals)

  before = loss(state.gen_params)
  critic_before = _leaves(state.critic_params)
  rng = jax.random.key(0)
  for s in range(c.total_steps):
    state, metrics = step(state, loop_batch(exp, s), rng, None)
  after = loss(state.gen_params)
  assert np.isfinite(after)
  assert after < 0.7 * before, (before, after)
  # The frozen critic really stayed fixed.
  for a, b in zip(critic_before, _leaves(state.critic_params)):
    np.testing.assert_array_equal(a, b)
  assert float(metrics["critic/frozen"]) == 1.0


def test_resume_is_bit_exact(tmp_path):
  straight = train.train_and_evaluate(_config(total_steps=6),
                                      str(tmp_path / "straight"))
  interrupted = str(tmp_path / "interrupted")
  train.train_and_evaluate(_config(total_steps=3), interrupted)
  resumed = train.train_and_evaluate(_config(total_steps=6), interrupted)
  assert int(resumed.step) == int(straight.step) == 6
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  steps_saved = sorted(int(os.path.basename(p)) for p in
                       glob.glob(os.path.join(interrupted, "checkpoints", "*")))
  assert steps_saved == [3, 6]
  assert os.path.exists(os.path.join(interrupted, "metrics.jsonl"))
  assert glob.glob(os.path.join(interrupted, "tb", "events.out.tfevents.*"))
  assert sorted(os.listdir(os.path.join(interrupted, "samples"))) == [
      "step_0000003.png", "step_0000006.png"]


def test_impossible_batch_size_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match=r"multiple of 8.*--config.batch_size=8"):
    train.train_and_evaluate(_config(batch_size=12), str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")


def test_a_step_too_large_for_memory_stops_before_it_runs(tmp_path,
                                                         monkeypatch, caplog):
  # XLA's memory analysis of the compiled step against the host (here made
  # 1 MiB): a clear error before the step runs, instead of XLA's
  # "Out of memory allocating ..." mid-run; the checkpoints already
  # written are kept. And the loop compiles its step once.
  workdir = str(tmp_path)
  with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles(True):
    train.train_and_evaluate(_config(total_steps=3), workdir)
  compiles = [r.getMessage() for r in caplog.records if r.getMessage()
              .startswith("Finished XLA compilation of jit(train_step)")]
  assert len(compiles) == 1, compiles
  monkeypatch.setattr(device_memory, "_host_meminfo",
                      lambda: {"MemTotal": 2**20, "MemAvailable": 2**20})
  with pytest.raises(device_memory.DeviceMemoryError,
                     match=r"config.batch_size=16 over 8 device\(s\).*"
                           r"1.0 MiB of memory and swap.*Lower "
                           r"--config.batch_size.*--config.otgan.chunk_size"):
    train.train_and_evaluate(_config(total_steps=6), workdir)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=3, max_to_keep=5)
  assert ckpt.latest_step() == 3
  ckpt.close()


def test_a_batch_larger_than_the_data_is_a_warning(caplog):
  c = _config(batch_size=8)
  size = experiment.Experiment(c).info.num_examples
  with caplog.at_level(logging.WARNING):
    experiment.Experiment(_config(batch_size=8))
    assert not [r for r in caplog.records if "larger than" in r.getMessage()]
    experiment.Experiment(_config(batch_size=8 * (size // 8 + 1)))
  assert [r for r in caplog.records
          if f"larger than the {size} examples" in r.getMessage()]


def test_a_misspelt_metric_stops_the_run_before_anything_is_written(tmp_path):
  c = _config(total_steps=2)
  c.evals.metrics, c.evals.every_steps = "w1,fidd", 0
  with pytest.raises(ValueError, match=r"Unknown metric\(s\) \['fidd'\]"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("key,value,message", [
    ("ckpt.every_steps", 0, "config.ckpt.every_steps must be at least 1"),
    ("log_every_steps", 0, "config.log_every_steps must be at least 1"),
    ("model.z_dim", 0, "config.model.z_dim must be at least 1"),
    ("optim.generator.learning_rate", -1.0,
     "config.optim.generator.learning_rate must be finite and at least 0"),
    ("optim.ema_decay", 2.0, r"config.optim.ema_decay must be in \[0, 1\]"),
    ("ot.epsilon", 0.0, "config.ot.epsilon must be positive"),
    ("ot.num_iterations", 0, "config.ot.num_iterations must be at least 1"),
])
def test_impossible_settings_stop_the_run_before_anything_is_written(
    tmp_path, key, value, message):
  # Before: a ZeroDivisionError traceback after the first step, a
  # checkpoint of empty arrays, or NaN with the advice to lower the
  # learning rate.
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(_config(**{key: value}), str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_missing_data_folder_names_the_files(tmp_path):
  c = _config()
  c.data.name, c.data.source = "mnist", "files"
  c.data.data_dir = str(tmp_path / "nowhere")
  with pytest.raises(data_lib.DataError, match="data_dir"):
    experiment.Experiment(c)
  os.makedirs(tmp_path / "empty")
  c.data.data_dir = str(tmp_path / "empty")
  with pytest.raises(data_lib.DataError, match="train-images-idx3-ubyte.gz"):
    experiment.Experiment(c)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(total_steps=3), workdir)
  c = _config(total_steps=9)
  c.optim.critic.learning_rate = 1e30
  c.optim.generator.learning_rate = 1e30
  with pytest.raises(train.NonFiniteLossError, match="step 3"):
    train.train_and_evaluate(c, workdir)
  ckpt = checkpointing.Checkpointer(workdir, every_steps=3, max_to_keep=5)
  assert ckpt.latest_step() == 3
  ckpt.close()


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_deleted(tmp_path):
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(total_steps=3), workdir)
  files = [p for p in glob.glob(os.path.join(workdir, "checkpoints", "3", "**"),
                                recursive=True) if os.path.isfile(p)]
  for path in files:
    with open(path, "wb") as f:
      f.write(b"garbage")
  with pytest.raises(checkpointing.CheckpointError, match="mv .*3 .*3.bad"):
    train.train_and_evaluate(_config(total_steps=6), workdir)
  assert all(os.path.exists(p) for p in files)


def test_conditional_training_runs_and_samples_by_class(tmp_path):
  c = _config("conditional", total_steps=2, sample_every_steps=2,
              num_samples=20)
  exp = experiment.Experiment(c)
  state = exp.init_state()
  # Conditional networks: the same latent with another label gives another
  # image, and the critic's features depend on the label too.
  z = jnp.zeros((2, c.model.z_dim))
  imgs = exp.generator.apply(jax.device_get(state.gen_params), z,
                             jnp.array([0, 1]))
  assert float(jnp.abs(imgs[0] - imgs[1]).max()) > 1e-4
  state = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert int(state.step) == 2
  metrics = [l for l in open(tmp_path / "run" / "metrics.jsonl")]
  assert "w/xyp" in metrics[-1] and "w/xy\"" not in metrics[-1]
  samples = np.asarray(exp.jit_generate(20)(state.ema_params,
                                            jax.random.key(0)))
  assert samples.shape == (20, 8, 8, 1) and np.isfinite(samples).all()


def test_profile_traces_the_chosen_steps_into_tensorboard(tmp_path):
  c = _config("gaussians", total_steps=3, **{"profile.start_step": 1,
                                             "profile.num_steps": 1})
  train.train_and_evaluate(c, str(tmp_path))
  traces = glob.glob(str(tmp_path / "tb" / "plugins" / "profile" / "*" /
                         "*.xplane.pb"))
  assert len(traces) == 1, traces
  assert os.path.getsize(traces[0]) > 0
  # The perfetto copy beside it names the step's operations in a terminal.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from bench import trace_summary  # pylint: disable=g-import-not-at-top
  summary = trace_summary.summarize(str(tmp_path / "tb"))
  assert summary["top"] and summary["top"][0]["ms"] > 0


def test_profile_settings_are_checked_before_anything_runs(tmp_path):
  c = _config("gaussians", **{"profile.start_step": 1,
                              "profile.num_steps": 0})
  with pytest.raises(ValueError, match="profile.num_steps must be at least 1"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_ot_precision_reaches_the_loss_and_a_typo_is_a_clear_error(tmp_path):
  exp = experiment.Experiment(_config())
  assert exp.method.loss_fn().keywords["precision"] == "highest"
  exp = experiment.Experiment(_config(**{"ot.precision": "tensorfloat32"}))
  assert exp.method.loss_fn().keywords["precision"] == "tensorfloat32"
  c = _config(**{"ot.precision": "tf32"})
  with pytest.raises(ValueError, match="config.ot.precision must be one of"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()

"""A trained run, restored for the tools: samples from its EMA generator.

`restore_run` is the one way `launch.sample` and `launch.evaluate` open a
workdir's checkpoint (read-only: a run may still be training there).
"""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np

from otgan_jax import checkpointing
from otgan_jax import experiment as experiment_lib
from otgan_jax import workdir as workdir_lib


def restore_run(workdir: str, *, config: ml_collections.ConfigDict | None = None,
                step: int | None = None, with_data: bool = False):
  """The run's `Experiment`, the restored state and its step.

  Args:
    workdir: the run's folder.
    config: the config to build with; default its config.json (older runs'
      keys mapped to today's).
    step: which checkpoint; default the latest.
    with_data: read the training data (evaluation needs it); otherwise the
      experiment is built from dataset_info.json alone.

  Returns:
    `(experiment, state, step)`.

  Raises:
    checkpointing.CheckpointError: no checkpoint, or one that cannot be
      restored, with what to do.
  """
  config = config or workdir_lib.load_config(workdir)
  info = None if with_data else workdir_lib.read_info(workdir)
  exp = experiment_lib.Experiment(config, info=info)
  ckpt = checkpointing.Checkpointer(workdir, read_only=True)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise checkpointing.CheckpointError(
          f"No checkpoint in {ckpt.directory}: train first "
          "(python -m launch.train --workdir=...).")
    state = ckpt.restore(exp.abstract_state(), step)
  finally:
    ckpt.close()
  return exp, state, step


def sample_from_workdir(workdir: str, *, num: int, seed: int = 0,
                        step: int | None = None, chunk: int = 1000,
                        config: ml_collections.ConfigDict | None = None
                        ) -> tuple[np.ndarray, int]:
  """Returns `(samples [num, ...] float32 in the data's range, step)`."""
  if num <= 0:
    raise ValueError(f"--num must be positive, got {num}.")
  exp, state, step = restore_run(workdir, config=config, step=step)
  return exp.sample(state.ema_params, num, jax.random.key(seed),
                    chunk=chunk), step


def save(out: str, samples: np.ndarray, workdir: str,
         config: ml_collections.ConfigDict | None = None) -> str:
  """Writes `out` (.npz with `samples`) and a PNG beside it; returns its path."""
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez(out, samples=samples)
  png = os.path.splitext(out)[0] + ".png"
  config = config or workdir_lib.load_config(workdir)
  info = workdir_lib.read_info(workdir)
  try:  # With the data at hand, 2-D plots show it beside the samples.
    exp = experiment_lib.Experiment(config)
  except (OSError, ValueError):
    exp = experiment_lib.Experiment(config, info=info)
  shown = samples[:100] if info.is_image else samples
  workdir_lib.save_samples(exp, shown, png)
  return png

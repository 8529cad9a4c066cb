"""Samples from a trained run's latest (or a given) checkpoint, EMA weights."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np

from otgan_jax import checkpointing
from otgan_jax import train


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: --workdir must be the folder a training run wrote "
        "(it holds config.json, dataset_info.json and checkpoints/).")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def sample_from_workdir(workdir: str, *, num: int, seed: int = 0,
                        step: int | None = None, chunk: int = 1000,
                        config: ml_collections.ConfigDict | None = None
                        ) -> tuple[np.ndarray, int]:
  """Returns `(samples [num, ...] float32 in the data's range, step)`.

  `config` defaults to the run's `config.json`.
  """
  if num <= 0:
    raise ValueError(f"--num must be positive, got {num}.")
  config = config or load_config(workdir)
  exp = train.Experiment(config, info=train.read_info(workdir))
  ckpt = checkpointing.Checkpointer(workdir, every_steps=1, max_to_keep=None)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise checkpointing.CheckpointError(
          f"No checkpoint in {ckpt.directory}: train first "
          "(python -m launch.train --workdir=...).")
    state = ckpt.restore(exp.abstract_state(), step)
  finally:
    ckpt.close()
  return exp.sample(state.ema_params, num, jax.random.key(seed),
                    chunk=chunk), step


def save(out: str, samples: np.ndarray, workdir: str,
         config: ml_collections.ConfigDict | None = None) -> str:
  """Writes `out` (.npz with `samples`) and a PNG beside it; returns its path."""
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez(out, samples=samples)
  png = os.path.splitext(out)[0] + ".png"
  config = config or load_config(workdir)
  info = train.read_info(workdir)
  try:  # With the data at hand, 2-D plots show it beside the samples.
    exp = train.Experiment(config)
  except (OSError, ValueError):
    exp = train.Experiment(config, info=info)
  shown = samples[:100] if info.is_image else samples
  train.save_samples(exp, shown, png)
  return png

"""A run's folder: what the loop and the tools write there and read back.

`config.json` (the run's config; older runs' keys mapped to today's),
`dataset_info.json` (so sampling needs no data), `constants.json` (the
sha256 of the method's constants, checked on resume), and the sample grids
and plots under `samples/`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from otgan_jax import data as data_lib
from otgan_jax import visualize

CONFIG_FILE = "config.json"
INFO_FILE = "dataset_info.json"
CONSTANTS_FILE = "constants.json"
METRICS_FILE = "metrics.jsonl"  # Written by metric_writers.MetricWriter.


class ConstantsMismatchError(ValueError):
  """A resumed run's constants differ from those it started with."""


class WorkdirError(ValueError):
  """The workdir cannot be used: a file, not creatable, or not writable."""


def prepare_workdir(workdir: str) -> None:
  """Creates `workdir` if needed and checks that a run can write there.

  Raises:
    WorkdirError: it is a file, cannot be created, or is not writable; the
      message says which and what to do. Nothing is written then.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} is a file, not a folder: give a "
                       "new or existing folder.")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(
        f"Cannot create --workdir={workdir} ({e.strerror or e}): give a "
        "folder on a location you can write to.") from e
  probe = os.path.join(workdir, f".write_test.{os.getpid()}")
  try:
    with open(probe, "w") as f:
      f.write("")
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(
        f"Cannot write in --workdir={workdir} ({e.strerror or e}; a "
        "read-only location?): give a folder you can write to (sampling and "
        "evaluation of a finished run only read it).") from e


def trim_metrics(workdir: str, step: int) -> int:
  """Drops the records after `step` from metrics.jsonl; returns how many.

  A resumed run replays the steps after its checkpoint; without this they
  would be logged twice. A line cut short by a killed process is dropped too.
  """
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return 0
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = f.readlines()
  kept = []
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:
      continue
    if (line.endswith("\n") and isinstance(record, dict)
        and isinstance(record.get("step"), int) and record["step"] <= step):
      kept.append(line)
  dropped = len(lines) - len(kept)
  if dropped:
    logging.info("metrics.jsonl: dropped %d record(s) after step %d (those "
                 "steps run again now).", dropped, step)
    _write_text(path, "".join(kept))
  return dropped


def write_config(config: ml_collections.ConfigDict, workdir: str,
                 step: int) -> None:
  """Writes config.json; a resume with other values adds another file."""
  path = os.path.join(workdir, CONFIG_FILE)
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:
        return
    # Resumed with other settings: keep the original, record the new one.
    path = os.path.join(workdir, f"config_resumed_at_{step}.json")
    logging.warning("Config differs from workdir/config.json; saved as %s",
                    path)
  _write_text(path, text)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """A run's saved config, completed with today's defaults for newer keys.

  Keys that moved since the run was written are mapped to their new place
  (each method's `legacy_keys`), and keys no longer used are dropped, so
  older runs can still be sampled and evaluated.

  Raises:
    FileNotFoundError: with what to do, if `workdir` holds no config.json.
  """
  # pylint: disable=g-import-not-at-top
  from configs import common
  from otgan_jax import methods
  # pylint: enable=g-import-not-at-top
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: --workdir must be the folder a training run wrote "
        "(it holds config.json, dataset_info.json and checkpoints/).")
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    if not isinstance(saved, dict):
      raise ValueError("not a JSON object")
  except (OSError, ValueError) as e:
    raise ValueError(f"{path} is unreadable ({e}): restore it from a copy, "
                     "or train again in a new --workdir.") from e
  moved = {}
  for name in methods.names():
    moved.update(methods.get(name).legacy_keys)
  for old, new in moved.items():
    value = _pop(saved, old)
    if value is not _MISSING:
      _put(saved, new, value)
  _pop(saved, "model.critic.head")  # Now decided by the method.
  config = common.get_config()
  config.update(saved)
  return config


_MISSING = object()


def _pop(d: dict, dotted: str):
  *path, last = dotted.split(".")
  for p in path:
    d = d.get(p)
    if not isinstance(d, dict):
      return _MISSING
  return d.pop(last, _MISSING)


def _put(d: dict, dotted: str, value) -> None:
  *path, last = dotted.split(".")
  for p in path:
    d = d.setdefault(p, {})
  d[last] = value


def write_info(info: data_lib.DatasetInfo, workdir: str) -> None:
  """Saves the dataset's shape and range so sampling needs no data."""
  _write_text(os.path.join(workdir, INFO_FILE),
              json.dumps(dataclasses.asdict(info), indent=2))


def read_info(workdir: str) -> data_lib.DatasetInfo:
  """The run's dataset_info.json.

  Raises:
    ValueError: missing or unreadable, with what to do.
  """
  path = os.path.join(workdir, INFO_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      d = json.load(f)
    d["shape"] = tuple(d["shape"])
    return data_lib.DatasetInfo(**d)
  except FileNotFoundError as e:
    raise ValueError(f"{path} not found: --workdir must be the folder a "
                     "training run wrote.") from e
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise ValueError(f"{path} is unreadable ({type(e).__name__}: {e}): "
                     "restore it from a copy, or train again in a new "
                     "--workdir.") from e


def constants_digest(constants) -> dict[str, str]:
  """`{leaf path: sha256 of its dtype, shape and bytes}` of host arrays."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(constants):
    a = np.ascontiguousarray(np.asarray(leaf))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    out[jax.tree_util.keystr(path)] = h.hexdigest()
  return out


def check_constants(workdir: str, constants, *, fresh: bool) -> None:
  """Records (fresh run) or checks (resume) the constants' sha256.

  Raises:
    ConstantsMismatchError: on resume, if they differ from the record.
  """
  path = os.path.join(workdir, CONSTANTS_FILE)
  digest = constants_digest(constants)
  if not fresh and os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    if recorded != digest:
      bad = sorted(k for k in set(recorded) | set(digest)
                   if recorded.get(k) != digest.get(k))
      raise ConstantsMismatchError(
          f"The method's constants {', '.join(bad)} differ from those this "
          f"run started with ({path}): the data (config.data) or a "
          "constant's file changed since. Resume with the original data and "
          "files, or start a new --workdir.")
    return
  if jax.process_index() == 0:
    if not fresh:
      logging.warning("No %s in %s (a run from before it was recorded): "
                      "recording the constants now.", CONSTANTS_FILE,
                      workdir)
    _write_text(path, json.dumps(digest, indent=2, sort_keys=True))


def save_samples(exp, samples: np.ndarray, path: str, writer=None,
                 step: int = 0) -> None:
  """A PNG grid for images, a scatter plot over real data for 2-D vectors."""
  info = exp.info
  if info.is_image:
    grid = visualize.save_image_grid(path, samples, low=info.low,
                                     high=info.high)
    if writer is not None:
      writer.write_image(step, "samples", grid)
  elif samples.shape[-1] == 2:
    reference = None
    if exp.source is not None:
      reference = exp.source.sample(2**30 + 1, 2048)["x"]
    centers = None
    if info.name == "gaussians":
      g = exp.config.data.gaussians
      centers = data_lib.mode_centers(g.num_modes, g.radius)
    visualize.save_scatter(path, samples, reference=reference,
                           centers=centers, title=os.path.basename(path))


def _write_text(path: str, text: str) -> None:
  """Writes `path` atomically (a temporary file, then a rename)."""
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)

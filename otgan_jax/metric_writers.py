"""Metric logging: TensorBoard event files, a JSON-lines file, progress lines."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Mapping

import numpy as np


class MetricWriter:
  """Writes scalars to `workdir/tb` (TensorBoard) and `workdir/metrics.jsonl`.

  Only one process should write: pass `enabled=False` elsewhere and every call
  becomes a no-op.
  """

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    os.makedirs(workdir, exist_ok=True)
    self._tb = SummaryWriter(os.path.join(workdir, "tb"))
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    for name, value in scalars.items():
      self._tb.add_scalar(name, float(value), global_step=step)
    record = {"step": int(step), "time": time.time()}
    record.update({k: float(v) for k, v in scalars.items()})
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """`image`: `[H, W, 3]` uint8."""
    if self._enabled:
      self._tb.add_image(name, image, global_step=step, dataformats="HWC")

  def flush(self) -> None:
    if self._enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self._enabled:
      self._tb.close()
      self._jsonl.close()


def format_duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
  """Steps per second and the time left, measured between log points."""

  def __init__(self, total_steps: int, start_step: int):
    self._total = total_steps
    self._last_step = start_step
    self._last_time = time.perf_counter()

  def update(self, step: int) -> tuple[float, float]:
    """Returns (steps/s since the last call, estimated seconds left)."""
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    eta = (self._total - step) / rate if rate > 0 else float("inf")
    return rate, eta

  def line(self, step: int, scalars: Mapping[str, float]) -> str:
    rate, eta = self.update(step)
    shown = " ".join(f"{k}={float(v):.4g}" for k, v in scalars.items()
                     if k.startswith("loss/"))
    return (f"step {step}/{self._total} ({100.0 * step / self._total:.0f}%) | "
            f"{rate:.2f} steps/s | ETA {format_duration(eta)} | {shown}")

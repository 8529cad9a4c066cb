"""From a data source to global, sharded device batches, prefetched.

The batch of train step `s` is a pure function of `(seed, s)`, so a resumed run
sees exactly the batches an uninterrupted one would. Each process reads only
its own slice of every batch and the global array is assembled with
`jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import Callable, Iterator

from absl import logging
import jax
import numpy as np
from jax.sharding import NamedSharding

from otgan_jax import interrupts


def host_batch(source, step: int, *, num_updates: int, batch_size: int,
               shard_index: int, num_shards: int, with_labels: bool = False,
               draws: int = 2) -> dict[str, np.ndarray]:
  """This process's part of the real examples of one train step.

  Args:
    source: a data source (see `sources.Source`).
    step: train step.
    num_updates: updates per train step (1 critic + n_gen generator).
    batch_size: global size n of each of X and X'.
    shard_index: this process's index.
    num_shards: number of processes.
    with_labels: also return the labels (conditional training).
    draws: independent real batches per update (2 for OT-GAN's X and X', 1
      for the adversarial baselines).

  Returns:
    `{"x": [num_updates, draws, n // num_shards, ...]}` raw examples (and
    `"label": [num_updates, draws, n // num_shards]` int32); update u's
    batches are the source's batches number `(step * num_updates + u) *
    draws + j`, so all are independent draws.
  """
  draws = [[source.sample((step * num_updates + u) * draws + j, batch_size,
                          shard_index=shard_index, num_shards=num_shards)
            for j in range(draws)] for u in range(num_updates)]
  out = {"x": np.stack([np.stack([d["x"] for d in pair]) for pair in draws])}
  if with_labels:
    out["label"] = np.stack([np.stack([d["label"] for d in pair])
                             for pair in draws]).astype(np.int32)
  return out


def global_batch(local: dict[str, np.ndarray], sharding: NamedSharding,
                 batch_axis: int) -> dict[str, jax.Array]:
  """Assembles global arrays from each process's local part."""
  def one(x):
    shape = list(x.shape)
    shape[batch_axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(shape))
  return {k: one(v) for k, v in local.items()}


class PrefetchError(RuntimeError):
  """The input thread ended without delivering the next batch or an error."""


class Prefetcher:
  """Builds device batches for steps `[start, stop)` in a background thread.

  Host reading and the host-to-device copy overlap the running step; the
  training loop never waits on the host unless the input is slower than the
  step itself.

  The consumer never waits forever: an empty range ends at once; an error in
  the input thread is raised in the consumer's thread; an input thread that
  ended without a batch or an error is a `PrefetchError`; and the wait polls,
  so signal handlers run in the main thread while it waits, and
  `stop_when()` (e.g. "a SIGTERM/SIGINT handler has set its flag") ends the
  iteration (`StopIteration`) even while the input is stuck. (A Ctrl-C whose
  handler ran inside JAX's garbage-collector callback during the wait is
  delivered again, not lost: `otgan_jax.interrupts`, installed here.)
  """

  def __init__(self, source, start: int, stop: int, *, num_updates: int,
               batch_size: int, sharding: NamedSharding, batch_axis: int,
               buffer_size: int = 2, with_labels: bool = False,
               draws: int = 2, stop_when: Callable[[], bool] | None = None,
               poll_seconds: float = 0.1):
    """See the class docstring.

    Args:
      source: a data source (see `sources.Source`).
      start: first step.
      stop: end of the range (exclusive); `start >= stop` is an empty range.
      num_updates: updates per train step.
      batch_size: global batch size.
      sharding: sharding of the global batch arrays.
      batch_axis: the batch axis of the arrays.
      buffer_size: batches built ahead.
      with_labels: also the labels.
      draws: real batches per update.
      stop_when: polled while waiting for a batch; when it returns True the
        iteration ends (`StopIteration`) and the input thread is told to stop.
        For one process (e.g. "a SIGTERM/SIGINT handler set its flag"); with
        several, a per-process flag would stop them at different steps
        (there JAX's preemption sync stops them together).
      poll_seconds: how often the wait checks the input thread and
        `stop_when`.
    """
    interrupts.install()
    self._queue: queue.Queue = queue.Queue(maxsize=max(1, buffer_size))
    self._stop = threading.Event()
    self._stop_when = stop_when
    self._poll = poll_seconds
    self._error: BaseException | None = None
    self._range = (start, stop)
    self._build = functools.partial(
        device_batch, source, num_updates=num_updates, batch_size=batch_size,
        sharding=sharding, batch_axis=batch_axis, with_labels=with_labels,
        draws=draws)
    self._done = start >= stop  # An empty range ends before any thread.
    self._thread = None
    if not self._done:
      self._thread = threading.Thread(target=self._run, daemon=True,
                                      name="Prefetcher")
      self._thread.start()

  def _put(self, item) -> bool:
    """Puts `item` unless told to stop first; returns whether it was put."""
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=self._poll)
        return True
      except queue.Full:
        continue
    return False

  def _run(self) -> None:
    try:
      self._produce()
    except BaseException as e:  # pylint: disable=broad-except
      self._put((None, e))  # Re-raised in the consumer's thread.

  def _produce(self) -> None:
    """The thread's work: one item per step, then the end marker."""
    start, stop = self._range
    for step in range(start, stop):
      if not self._put((step, self._build(step))):
        return
    self._put((None, None))  # End of the range.

  def __iter__(self) -> Iterator[tuple[int, dict[str, jax.Array]]]:
    return self

  def __next__(self) -> tuple[int, dict[str, jax.Array]]:
    if self._error is not None:
      raise self._error
    if self._done:
      raise StopIteration
    while True:
      if self._stop_when is not None and self._stop_when():
        self._done = True
        self._stop.set()
        raise StopIteration
      try:
        step, item = self._queue.get(timeout=self._poll)
        break
      except queue.Empty:
        if self._thread.is_alive():
          continue
        try:  # It may have put its last item just before it ended.
          step, item = self._queue.get_nowait()
          break
        except queue.Empty:
          self._error = PrefetchError(
              f"The input thread ended without producing the batch of the "
              f"next step (range {self._range[0]}..{self._range[1]}) and "
              "without an error.")
          raise self._error from None
    if step is None:
      if item is None:
        self._done = True
        raise StopIteration
      self._error = item
      raise item
    return step, item

  def close(self, timeout: float = 5.0) -> None:
    """Stops the input thread; safe to call more than once and after errors."""
    self._stop.set()
    self._done = True
    thread, self._thread = self._thread, None
    if thread is not None and thread is not threading.current_thread():
      thread.join(timeout=timeout)
      if thread.is_alive():
        logging.warning("The input thread did not stop within %.0f s (stuck "
                        "reading data?); leaving it behind.", timeout)
    while True:  # Frees the device buffers of batches nobody will take.
      try:
        self._queue.get_nowait()
      except queue.Empty:
        break


def device_batch(source, step: int, *, num_updates: int, batch_size: int,
                 sharding: NamedSharding, batch_axis: int, with_labels: bool,
                 draws: int) -> dict[str, jax.Array]:
  """The training loop's global batch of `step`: this process's part of it
  (`host_batch`), assembled on the mesh (`global_batch`)."""
  local = host_batch(source, step, num_updates=num_updates,
                     batch_size=batch_size, shard_index=jax.process_index(),
                     num_shards=jax.process_count(), with_labels=with_labels,
                     draws=draws)
  return global_batch(local, sharding, batch_axis)

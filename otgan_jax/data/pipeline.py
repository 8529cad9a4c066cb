"""From a data source to global, sharded device batches, prefetched.

The batch of train step `s` is a pure function of `(seed, s)`, so a resumed run
sees exactly the batches an uninterrupted one would. Each process reads only
its own slice of every batch and the global array is assembled with
`jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import jax
import numpy as np
from jax.sharding import NamedSharding


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


class Prefetcher:
  """Builds device batches for steps `[start, stop)` in a background thread.

  Host reading and the host-to-device copy overlap the running step; the
  training loop never waits on the host unless the input is slower than the
  step itself.
  """

  def __init__(self, source, start: int, stop: int, *, num_updates: int,
               batch_size: int, sharding: NamedSharding, batch_axis: int,
               buffer_size: int = 2, with_labels: bool = False,
               draws: int = 2):
    self._queue: queue.Queue = queue.Queue(maxsize=buffer_size)
    self._stop = threading.Event()

    def work():
      try:
        for step in range(start, stop + 1):
          if step == stop:
            item = (None, None)  # End of the range.
          else:
            local = host_batch(source, step, num_updates=num_updates,
                               batch_size=batch_size,
                               shard_index=jax.process_index(),
                               num_shards=jax.process_count(),
                               with_labels=with_labels, draws=draws)
            item = (step, global_batch(local, sharding, batch_axis))
          while not self._stop.is_set():
            try:
              self._queue.put(item, timeout=0.1)
              break
            except queue.Full:
              continue
          if self._stop.is_set():
            return
      except BaseException as e:  # Re-raised in the consumer's thread.
        self._queue.put((None, e))

    self._thread = threading.Thread(target=work, daemon=True)
    self._thread.start()

  def __iter__(self) -> Iterator[tuple[int, dict[str, jax.Array]]]:
    return self

  def __next__(self) -> tuple[int, dict[str, jax.Array]]:
    step, item = self._queue.get()
    if step is None:
      if item is None:
        self._queue.put((None, None))  # Later calls stop too.
        raise StopIteration
      raise item
    return step, item

  def close(self) -> None:
    self._stop.set()
    self._thread.join(timeout=5)

"""`argmin_j cost(x_i, y_j) + offset_j` over many keys, a block at a time.

One search serves three callers: the assignment method's exact assignment
(`losses.assignment.assign`, offsets = the assigner psi), POT-GAN's nearest
latents (`losses.potgan.nearest_assignment`, no offsets) and the metrics'
assignment to real points (`evaluation.transport.assign_to_reals`, on the
host in float64).

The keys are taken `block_size` at a time inside a `lax.scan`, so only a
`[queries, block_size]` cost block is ever held; optionally the queries are
also taken `query_block_size` at a time (an outer `lax.map`). The result is
the argmin over the full row, as `jnp.argmin` would give it on the whole
`[n, m]` matrix: ties go to the lowest key index (earlier blocks win ties,
and `jnp.argmin` takes the first within a block), and a NaN, if any, is
chosen first, as `jnp.argmin` and `np.argmin` do.

When `m` is not a multiple of `block_size`, the last block is not padded: it
is the last `block_size` keys (a `lax.dynamic_slice` clamped to the end), and
the keys it shares with the previous block are masked out with the worst
value, so no key is counted twice and nothing is copied or padded. Queries
that do not fill the last query block are padded with copies of the last
query, whose results are dropped.

Everything is traceable with static shapes (`jit`, `grad` of surrounding
code; no gradient flows through the index) and works with sharded inputs:
GSPMD partitions the queries' axis as the caller's sharding constraints say.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
# (queries [q, ...], keys [b, ...]) -> [q, b] costs.
PairwiseCost = Callable[[Array, Array], Array]


def _worst(dtype) -> Array:
  """A value no real cost beats: +inf, or the largest integer."""
  if jnp.issubdtype(dtype, jnp.inexact):
    return jnp.array(jnp.inf, dtype)
  return jnp.array(jnp.iinfo(dtype).max, dtype)


def _over_keys(queries: Array, keys: Array, cost: PairwiseCost,
               offsets: Array | None, block_size: int
               ) -> tuple[Array, Array]:
  """The search over all keys for one block of queries."""
  m = keys.shape[0]
  num_blocks = -(-m // block_size)

  def block(start, masked: bool):
    # The last block is clamped to end at m; its columns before `start` were
    # already searched by the previous block.
    begin = jnp.minimum(start, m - block_size)
    values = cost(queries, jax.lax.dynamic_slice_in_dim(
        keys, begin, block_size, axis=0))
    if offsets is not None:
      values = values + jax.lax.dynamic_slice_in_dim(
          offsets, begin, block_size)[None, :]
    if masked:
      fresh = begin + jnp.arange(block_size) >= start
      values = jnp.where(fresh[None, :], values, _worst(values.dtype))
    j = jnp.argmin(values, axis=1)
    value = jnp.take_along_axis(values, j[:, None], axis=1)[:, 0]
    return (begin + j).astype(jnp.int32), value

  index, value = block(0, masked=False)
  if num_blocks == 1:
    return index, value

  def body(carry, start):
    best_index, best_value = carry
    i, v = block(start, masked=True)
    # Strictly better only, so earlier blocks keep ties; a NaN beats any
    # number (the first NaN wins), as in jnp.argmin.
    better = (v < best_value) | (jnp.isnan(v) & ~jnp.isnan(best_value))
    return (jnp.where(better, i, best_index),
            jnp.where(better, v, best_value)), None

  starts = jnp.arange(1, num_blocks, dtype=jnp.int32) * block_size
  (index, value), _ = jax.lax.scan(body, (index, value), starts)
  return index, value


def argmin(queries: Array, keys: Array, cost: PairwiseCost,
           offsets: Array | None = None, *, block_size: int,
           query_block_size: int | None = None) -> tuple[Array, Array]:
  """`argmin_j cost(queries_i, keys_j) + offsets_j` for every query i.

  Args:
    queries: `[n, ...]` query points.
    keys: `[m, ...]` candidates, m >= 1.
    cost: `(q [c, ...], k [b, ...]) -> [c, b]` pairwise costs; it is called
      on blocks of queries and keys, with `b = min(block_size, m)`.
    offsets: `[m]` values added to each key's column, or None.
    block_size: Keys per block (memory: `[n or query_block_size, block_size]`
      costs).
    query_block_size: If set and smaller than n, queries per block.

  Returns:
    `index [n]` int32, the lowest-index minimiser of each row, and `value
    [n]`, the minimum (in the dtype of `cost + offsets`). Neither carries a
    gradient worth taking: stop gradients on the inputs first if the caller
    differentiates around this.
  """
  n, m = queries.shape[0], keys.shape[0]
  if m < 1:
    raise ValueError("argmin needs at least one key.")
  if block_size < 1 or (query_block_size is not None and query_block_size < 1):
    raise ValueError(f"Block sizes must be positive, got block_size="
                     f"{block_size}, query_block_size={query_block_size}.")
  if offsets is not None and offsets.shape != (m,):
    raise ValueError(f"offsets must be [{m}] (one per key), got "
                     f"{offsets.shape}.")
  block_size = min(block_size, m)
  if query_block_size is None or n <= query_block_size:
    return _over_keys(queries, keys, cost, offsets, block_size)
  num = -(-n // query_block_size)
  pad = num * query_block_size - n
  padded = jnp.concatenate(
      [queries, jnp.repeat(queries[-1:], pad, axis=0)]) if pad else queries
  blocks = padded.reshape((num, query_block_size) + queries.shape[1:])
  index, value = jax.lax.map(
      lambda q: _over_keys(q, keys, cost, offsets, block_size), blocks)
  return index.reshape(-1)[:n], value.reshape(-1)[:n]

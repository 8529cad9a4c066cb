"""A content fingerprint of a pytree of arrays, computed on device.

Per array, two wrap-around sums of its bits (`fingerprint`): exact for any
reduction order, so one state gives one fingerprint on one device or sharded
over many devices and processes, and any flipped bit changes it.
`checkpointing` stores it with every checkpoint and checks it on restore.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np


def to_tree(state: Any) -> Any:
  """A dataclass state as a dict of its non-None fields (else unchanged).

  Checkpoints then hold only the fields a method uses, so a field added later
  with a None default (`TrainState.extra`) leaves older checkpoints readable.
  """
  if dataclasses.is_dataclass(state) and not isinstance(state, type):
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
            if getattr(state, f.name) is not None}
  return state


def path_str(path) -> str:
  """A tree path as `a/b/0` (dict keys, attribute names, sequence indices)."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


_SUB_BYTE = ("int2", "uint2", "int4", "uint4", "float4_e2m1fn")


def _words(x: jax.Array) -> jax.Array:
  """The bits of `x` as uint32 words (narrower types widened, not packed)."""
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  x = jnp.asarray(x)
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  if jnp.issubdtype(x.dtype, jnp.complexfloating):
    x = jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)
  bits = jnp.dtype(x.dtype).itemsize * 8
  if jnp.dtype(x.dtype).name in _SUB_BYTE:
    # Sub-byte types (int4, float4): their value, exactly, in a wider type.
    wide = (jnp.float32 if jnp.issubdtype(x.dtype, jnp.floating)
            else jnp.int32)
    x, bits = x.astype(wide), 32
  if bits == 8:
    return lax.bitcast_convert_type(x, jnp.uint8).astype(jnp.uint32)
  if bits == 16:
    return lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32)
  if bits == 32:
    return lax.bitcast_convert_type(x, jnp.uint32)
  if bits == 64:  # [..., 2] words.
    return lax.bitcast_convert_type(x, jnp.uint32)
  raise TypeError(f"No fingerprint for dtype {x.dtype}.")


def _leaf_sums(x: jax.Array) -> jax.Array:
  """`[sum(u), sum(u * (2i + 1))] mod 2^32` with u the words, i their index.

  Integer sums mod 2^32 are exact whatever the reduction order, so the result
  does not depend on the sharding or the number of devices or processes.
  """
  u = _words(x)
  index = jnp.zeros(u.shape, jnp.uint32)
  stride = 1
  for axis in reversed(range(u.ndim)):
    index = index + lax.broadcasted_iota(jnp.uint32, u.shape, axis) * (
        np.uint32(stride % 2**32))
    stride *= u.shape[axis]
  odd = index * np.uint32(2) + np.uint32(1)
  return jnp.stack([jnp.sum(u, dtype=jnp.uint32),
                    jnp.sum(u * odd, dtype=jnp.uint32)])


def _all_sums(leaves):
  if not leaves:
    return jnp.zeros((0, 2), jnp.uint32)
  return jnp.stack([_leaf_sums(x) for x in leaves])


@functools.lru_cache(maxsize=None)
def _sums_fn(out_sharding):
  return jax.jit(_all_sums, out_shardings=out_sharding)


def _replicated(leaves):
  for x in leaves:
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, jax.sharding.NamedSharding):
      return jax.sharding.NamedSharding(sharding.mesh,
                                        jax.sharding.PartitionSpec())
  return None


def _to_host(x: jax.Array) -> np.ndarray:
  if isinstance(x, jax.Array) and not (x.is_fully_addressable
                                       or x.is_fully_replicated):
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def fingerprint(tree: Any) -> dict[str, str]:
  """A content fingerprint of every array of `tree`, computed on device.

  Per leaf: its bits as uint32 words u (16-bit types widened from uint16,
  8-bit and bool from uint8; 64-bit types as two words), and the pair
  `sum(u), sum(u * (2i + 1)) mod 2^32` over the flat index i, as 16 hex
  digits. Exact for any reduction order, so the same state gives the same
  fingerprint on one device or sharded over many devices and processes; any
  single flipped bit changes it. One jitted computation over the (global)
  arrays: in a multi-process run every process must call it (as with
  `Checkpointer.save`).

  Args:
    tree: a pytree of arrays (dataclass states are taken field by field, as
      `Checkpointer` stores them).

  Returns:
    `{leaf path: hex}` with paths like `gen_params/params/dense_0/kernel`.
  """
  flat, _ = jax.tree_util.tree_flatten_with_path(to_tree(tree))
  paths = [path_str(p) for p, _ in flat]
  leaves = [x for _, x in flat]
  try:
    sums = _to_host(_sums_fn(_replicated(leaves))(leaves))
  except ValueError as e:  # Leaves on different device sets: one at a time.
    if "devices" not in str(e).lower():
      raise
    sums = np.stack([_to_host(_sums_fn(_replicated([x]))([x]))[0]
                     for x in leaves]) if leaves else np.zeros((0, 2))
  sums = np.asarray(sums, np.uint64)
  return {p: f"{int(a):08x}{int(b):08x}" for p, (a, b) in zip(paths, sums)}

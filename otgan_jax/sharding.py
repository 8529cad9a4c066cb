"""Device meshes and shardings.

A single code path for every scale: one device is a mesh of size one. Mesh
axes are of type Auto, so XLA partitions ott-jax's Sinkhorn by rows and inserts
the collectives (ott raises a ShardingTypeError under Explicit axes).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(shape: Sequence[int], axis_names: Sequence[str],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh over `devices` (default: all); one entry of `shape` may be -1."""
  devices = list(jax.devices() if devices is None else devices)
  shape, axis_names = tuple(shape), tuple(axis_names)
  if len(shape) != len(axis_names):
    raise ValueError(f"config.mesh.shape {shape} and config.mesh.axis_names "
                     f"{axis_names} must have the same length.")
  if DATA_AXIS not in axis_names:
    raise ValueError(f"config.mesh.axis_names {axis_names} must contain "
                     f"{DATA_AXIS!r}, the axis the batch is split over.")
  if shape.count(-1) > 1:
    raise ValueError(f"config.mesh.shape {shape}: at most one -1.")
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if len(devices) % known:
      raise ValueError(f"config.mesh.shape {shape} does not divide the "
                       f"{len(devices)} available devices.")
    shape = tuple(len(devices) // known if s == -1 else s for s in shape)
  if math.prod(shape) != len(devices):
    raise ValueError(f"config.mesh.shape {shape} needs {math.prod(shape)} "
                     f"devices but {len(devices)} are available; use -1 for "
                     "'all remaining devices'.")
  return jax.make_mesh(shape, axis_names,
                       axis_types=(AxisType.Auto,) * len(shape),
                       devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int) -> NamedSharding:
  """Splits dimension `batch_axis` of an array over the mesh's data axis."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def batch_constraint(mesh: Mesh | None):
  """`(x, axis) -> x` constrained to be split over the data axis at `axis`.

  Without a mesh, the identity (the layout is left to XLA).
  """
  if mesh is None:
    return lambda x, axis: x

  def constrain(x, axis):
    return jax.lax.with_sharding_constraint(x, batch_sharding(mesh, axis))
  return constrain


def data_parallel_size(mesh: Mesh) -> int:
  return mesh.shape[DATA_AXIS]


# Leaves smaller than this stay replicated under FSDP: sharding them saves
# little memory and costs a collective each.
FSDP_MIN_SIZE = 2**10


def state_sharding(mesh: Mesh, shapes, *, fsdp: bool):
  """Shardings of a state pytree: replicated, or FSDP over the data axis.

  With `fsdp`, every leaf of at least `FSDP_MIN_SIZE` elements is split over
  the data axis along its largest dimension that the axis size divides
  (parameters, optimizer moments and EMA alike, ZeRO-3 style); XLA gathers
  them where the step needs them whole. Other leaves are replicated.

  Args:
    mesh: the device mesh.
    shapes: pytree of arrays or `jax.ShapeDtypeStruct`.
    fsdp: shard (True) or replicate everything (False).

  Returns:
    A pytree of `NamedSharding` matching `shapes`.
  """
  rep = replicated(mesh)
  size = data_parallel_size(mesh)

  def one(leaf):
    if not fsdp or size == 1 or math.prod(leaf.shape) < FSDP_MIN_SIZE:
      return rep
    dims = sorted(range(len(leaf.shape)), key=lambda d: -leaf.shape[d])
    for d in dims:
      if leaf.shape[d] % size == 0:
        return batch_sharding(mesh, d)
    return rep

  return jax.tree.map(one, shapes)

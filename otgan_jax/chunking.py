"""Features of batches larger than activations allow: chunks, then VJPs.

OT-GAN's loss couples the whole batch through the transport plans, but the
networks act on each example alone. So the gradient of `L(F(params, inputs))`
can be taken in three passes that never hold the activations of the whole
batch: (1) the features `F` chunk by chunk, keeping only the `[n, ..., d]`
outputs; (2) the loss and its gradient with respect to those features (the
transport problem on the full batch); (3) chunk by chunk again, recompute the
chunk's forward pass and pull its feature gradient back to the parameters
(a VJP), summing over chunks. Memory is then bounded by the features and one
chunk's activations; the price is one extra forward pass.

Chunk `j` holds rows `j, j + c, j + 2c, ...` of the batch (`c` chunks), so
with the batch split over devices every chunk is split the same way and no
data moves between devices when chunking.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array
Constrain = Callable[[Array, int], Array]


def no_constraint(x: Array, axis: int) -> Array:
  """The `Constrain` that leaves the layout to XLA."""
  del axis
  return x


def num_chunks(batch_size: int, chunk_size: int) -> int:
  """Chunks per batch; 1 when `chunk_size` is 0 or covers the batch."""
  if chunk_size <= 0 or chunk_size >= batch_size:
    return 1
  if batch_size % chunk_size:
    raise ValueError(f"A chunk size of {chunk_size} must divide the batch "
                     f"of {batch_size} it cuts.")
  return batch_size // chunk_size


def to_chunks(x: Array, chunks: int) -> Array:
  """`[n, ...]` -> `[chunks, n // chunks, ...]`; chunk j = rows j::chunks."""
  return x.reshape((x.shape[0] // chunks, chunks) + x.shape[1:]).swapaxes(0, 1)


def from_chunks(x: Array) -> Array:
  """Inverse of `to_chunks`."""
  return x.swapaxes(0, 1).reshape((-1,) + x.shape[2:])


def apply(fn: Callable[[Any], Any], inputs: Any, *, chunk_size: int,
          constrain: Constrain = no_constraint) -> Any:
  """`fn(inputs)` for a row-wise `fn`, computed `chunk_size` rows at a time.

  Args:
    fn: maps a pytree of `[m, ...]` arrays to a pytree of `[m, ...]` arrays,
      each output row depending only on the same input row.
    inputs: pytree of `[n, ...]` arrays.
    chunk_size: rows per chunk; 0 computes the whole batch at once.
    constrain: `(array, batch_axis) -> array` sharding constraint.

  Returns:
    `fn(inputs)`, without keeping more than one chunk's intermediates.
  """
  n = jax.tree.leaves(inputs)[0].shape[0]
  chunks = num_chunks(n, chunk_size)
  if chunks == 1:
    return fn(inputs)
  chunked = jax.tree.map(lambda x: constrain(to_chunks(x, chunks), 1), inputs)
  out = jax.lax.map(lambda x: fn(jax.tree.map(lambda a: constrain(a, 0), x)),
                    chunked)
  return jax.tree.map(lambda x: constrain(from_chunks(x), 0), out)


def value_and_grad(loss_fn: Callable[[Array], tuple[Array, Any]],
                   feature_fn: Callable[[Any, Any], Array], params: Any,
                   inputs: Any, *, chunk_size: int,
                   constrain: Constrain = no_constraint
                   ) -> tuple[tuple[Array, Any], Any]:
  """Value and parameter gradient of `loss_fn(feature_fn(params, inputs))`.

  With `chunk_size` 0 (or the whole batch) this is `jax.value_and_grad`; else
  the three passes of the module docstring, which give the same gradient up
  to floating-point summation order.

  Args:
    loss_fn: features `[n, ...]` -> `(loss, aux)`; may couple all rows.
    feature_fn: `(params, inputs [m, ...]) -> features [m, ...]`, row-wise.
    params: the parameters to differentiate.
    inputs: pytree of `[n, ...]` arrays.
    chunk_size: rows per chunk; 0 disables chunking.
    constrain: `(array, batch_axis) -> array` sharding constraint.

  Returns:
    `((loss, aux), grads)` with `grads` shaped like `params`.
  """
  n = jax.tree.leaves(inputs)[0].shape[0]
  chunks = num_chunks(n, chunk_size)
  if chunks == 1:
    return jax.value_and_grad(lambda p: loss_fn(feature_fn(p, inputs)),
                              has_aux=True)(params)
  feats = apply(lambda x: feature_fn(params, x), inputs,
                chunk_size=chunk_size, constrain=constrain)
  (value, aux), feat_grads = jax.value_and_grad(loss_fn, has_aux=True)(feats)

  def pull_back(acc, xs):
    x, g = xs
    x = jax.tree.map(lambda a: constrain(a, 0), x)
    _, vjp = jax.vjp(lambda p: feature_fn(p, x), params)
    return jax.tree.map(jnp.add, acc, vjp(constrain(g, 0))[0]), None

  xs = (jax.tree.map(lambda x: constrain(to_chunks(x, chunks), 1), inputs),
        constrain(to_chunks(feat_grads, chunks), 1))
  zeros = jax.tree.map(jnp.zeros_like, params)
  grads, _ = jax.lax.scan(pull_back, zeros, xs)
  return (value, aux), grads

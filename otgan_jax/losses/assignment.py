"""The assignment method's losses (Laschos, Tinapp, Obermayer; paper 004).

An assigner `psi` takes a value at every REAL point `y_j`; each generated
point `x` goes to `y(x) = argmin_j c(x, y_j) + psi_j` over ALL the reals
(computed exactly, in chunks). The assigner minimises

    -( sum_j n_j psi_j / sum_j n_j  -  mean_j psi_j ),

where `n_j` counts the generated points assigned to real j: psi rises at
over-assigned reals, which pushes points to the others. (Read as a loss, the
paper's Algorithm 1, line 8, has the opposite sign; this is the sign that
balances.) When every real receives the same share, psi is an optimal dual
potential and `x -> y(x)` an optimal transport map (Theorem 3.3). The
generator minimises `c(G(z), y(G(z)))` with the assignment held fixed.

Costs: `pairwise` costs `[n, m]` feed the assignment; `elementwise` costs
`[n]` of matched pairs feed the generator. "sqeuclidean" is the mean squared
difference per coordinate (images in [-1, 1]: in [0, 4]); "psnr" its log,
`log(mse + 1e-8)` (PSNR up to sign and scale, monotone in the MSE); "ssim"
is `5 - 5 SSIM` on images shifted to [0, 2] (dm-pix), elementwise only: a
pairwise SSIM over all reals is too costly, so pair it with "psnr" or
"sqeuclidean" for the assigner, as the paper does.
"""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

from otgan_jax.losses import blockwise

Array = jax.Array
PAIRWISE = ("sqeuclidean", "psnr")
ELEMENTWISE = ("sqeuclidean", "psnr", "ssim")
Cost = Union[str, Callable[[Array, Array], Array]]


def _flat(x: Array) -> Array:
  return x.reshape(x.shape[0], -1)


def pairwise_cost(x: Array, y: Array, cost: Cost = "sqeuclidean") -> Array:
  """`[n, m]` costs between generated `x [n, ...]` and reals `y [m, ...]`."""
  if callable(cost):
    return cost(x, y)
  if cost not in PAIRWISE:
    raise ValueError(f"Unknown assigner cost {cost!r}: use one of {PAIRWISE} "
                     "or a callable (x [n, ...], y [m, ...]) -> [n, m].")
  a, b = _flat(x), _flat(y)
  # float32 products on every backend (a TPU's default rounds to bfloat16,
  # which would move the argmin of the assignment).
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  sq = jnp.sum(a * a, 1)[:, None] - 2.0 * ab + jnp.sum(b * b, 1)[None]
  mse = jnp.maximum(sq, 0.0) / a.shape[1]
  return mse if cost == "sqeuclidean" else jnp.log(mse + 1e-8)


def elementwise_cost(x: Array, y: Array, cost: Cost = "sqeuclidean", *,
                     ssim_filter_size: int = 11) -> Array:
  """`[n]` costs of matched pairs `x[i]`, `y[i]` (differentiable).

  `ssim_filter_size` is the SSIM's Gaussian window (sigma 1.5); paper 004's
  code used 4 for its generator.
  """
  if callable(cost):
    return cost(x, y)
  if cost not in ELEMENTWISE:
    raise ValueError(f"Unknown generator cost {cost!r}: use one of "
                     f"{ELEMENTWISE} or a callable (x, y) -> [n].")
  if cost == "ssim":
    import dm_pix  # pylint: disable=g-import-not-at-top
    if x.ndim != 4:
      raise ValueError("The SSIM cost needs [n, H, W, C] images.")
    return 5.0 - 5.0 * dm_pix.ssim(x + 1.0, y + 1.0, max_val=2.0,
                                   filter_size=ssim_filter_size)
  mse = jnp.mean(jnp.square(_flat(x) - _flat(y)), axis=1)
  return mse if cost == "sqeuclidean" else jnp.log(mse + 1e-8)


def assign(x: Array, reals: Array, psi: Array, *, cost: Cost = "sqeuclidean",
           chunk_size: int = 1024) -> tuple[Array, Array]:
  """`argmin_j c(x_i, y_j) + psi_j` over all reals, `chunk_size` at a time.

  The search is `blockwise.argmin`: exact, ties to the lowest index.

  Args:
    x: `[n, ...]` generated points.
    reals: `[m, ...]` all real points.
    psi: `[m]` assigner values at the reals.
    cost: a pairwise cost (see `pairwise_cost`).
    chunk_size: reals per block (memory: n x chunk_size costs).

  Returns:
    `index [n]` int32 of the assigned reals and `value [n]`, the minimised
    `c + psi` (no gradients: the assignment is held fixed).
  """
  x, reals, psi = (jax.lax.stop_gradient(a) for a in (x, reals, psi))
  index, value = blockwise.argmin(
      x, reals, lambda a, b: pairwise_cost(a, b, cost), psi,
      block_size=chunk_size)
  # float32 or wider, the dtype `value` has always had.
  return index, value.astype(jnp.promote_types(value.dtype, jnp.float32))


def assignment_counts(index: Array, num_reals: int) -> Array:
  """`n_j`: how many generated points went to each real, `[m]` float32."""
  return jnp.zeros((num_reals,), jnp.float32).at[index].add(1.0)


def assigner_loss(psi: Array, counts: Array) -> Array:
  """`-(sum_j n_j psi_j / sum_j n_j - mean_j psi_j)`, to be minimised.

  Its gradient in `psi_j` is `1/m - n_j / sum n`: negative (psi rises) at
  reals assigned more than their share, zero when all shares are equal.
  """
  counts = jax.lax.stop_gradient(counts)
  return -(jnp.sum(counts * psi) / jnp.sum(counts) - jnp.mean(psi))

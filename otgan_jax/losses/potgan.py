"""POT-GAN's latent optimal-transport regulariser (Avraham et al., CVPR 2019).

Notation of the paper (section 4): Q is the frozen encoder of a pretrained VAE
(here its posterior MEAN), `z_r = Q(x_r)` are real latents, `z_g = Q(G(z))`
generated latents, and F the Latent Transformation Forest
(`otgan_jax.models.forest`), which maps generated latents towards real ones:
the learned cost is `c(z_r, z_g) = ||z_r - F(z_g)||^2` (Eq. 15). Per GAN step:

1. Algorithm 1 (`fit_forest`): `iters` times, assign latents under the current
   cost, then take one Adam step on F's parameters minimising the matched
   cost; this approximates Eq. 14, `min_{F, sigma} sum_i ||z_r,sigma(i) -
   F(z_g,i)||^2`.
2. The generator adds `lambda_POT * pot_regulariser(z_r[sigma], F(z_g))` to
   its WGAN-GP loss (Eq. 13 and Algorithm 2's `L_POT`), with sigma, z_r and
   F's parameters held fixed, so the gradient reaches G only through `z_g =
   Q(G(z))` inside `F(z_g)`.

The assignment (options of `fit_forest`; say in the config which a run used):

* "nearest": each generated latent is paired with its nearest real latent,
  `sigma(j) = argmin_i ||z_r,i - F(z_g,j)||^2`; sigma [n] indexes z_r. Not a
  permutation: several generated latents may share a real one.
* "hungarian": the exact minimum-cost permutation (Monge map of Eq. 11 on the
  minibatch, `optax.assignment.hungarian_algorithm`, O(n^3)); needs equal
  batch sizes; sigma [n] indexes z_r.
* "covering": the direction Algorithm 1 literally writes,
  `rho_i = argmin_j ||z_r,i - F(z_g,j)||^2` for each REAL latent i, which the
  text motivates as "a sample z_r from the data distribution will be covered
  by a generated sample z_g"; rho [m] indexes F(z_g), so pairs are
  `(z_r,i, F(z_g)_rho(i))`. Generated latents nearest to no real one get no
  gradient, those nearest to several get several.

For a permutation the directions coincide. `assigned_pairs` turns any of the
three into aligned pairs for `pot_regulariser`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from otgan_jax.losses import blockwise

Array = jax.Array
Params = Any

ASSIGNMENTS = ('nearest', 'hungarian', 'covering')

# Query rows per block in `nearest_assignment`: the block's distance matrix is
# [_QUERY_CHUNK, key_chunk] floats.
_QUERY_CHUNK = 512
_KEY_CHUNK = 8192


def squared_distances(a: Array, b: Array) -> Array:
  """`[n, d], [m, d] -> [n, m]` squared L2 distances, clipped at 0."""
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  d2 = (jnp.sum(jnp.square(a), -1)[:, None] + jnp.sum(jnp.square(b), -1)[None]
        - 2.0 * ab)
  return jnp.maximum(d2, 0.0)


def nearest_assignment(z_r: Array, f_zg: Array, *,
                       query_chunk: int = _QUERY_CHUNK,
                       key_chunk: int = _KEY_CHUNK) -> Array:
  """Each generated latent's nearest real latent under squared L2.

  Never holds more than a `[query_chunk, key_chunk]` distance block
  (`blockwise.argmin`), so a whole data set of real latents can be searched.
  Ties go to the lowest index. Passing the arguments swapped,
  `nearest_assignment(f_zg, z_r)`, gives the "covering" direction (each real
  latent's nearest generated one).

  Args:
    z_r: [m, d] real latents (the candidates).
    f_zg: [n, d] transformed generated latents F(z_g) (the queries).
    query_chunk: queries per block.
    key_chunk: candidates per block.

  Returns:
    [n] int32 sigma, `sigma[j] = argmin_i ||z_r[i] - f_zg[j]||^2`; no
    gradient flows through it.
  """
  index, _ = blockwise.argmin(
      jax.lax.stop_gradient(f_zg), jax.lax.stop_gradient(z_r),
      squared_distances, block_size=key_chunk, query_block_size=query_chunk)
  return index


def hungarian_assignment(z_r: Array, f_zg: Array) -> Array:
  """The minimum-cost permutation between equal-size batches (exact).

  Args:
    z_r: [n, d] real latents.
    f_zg: [n, d] transformed generated latents F(z_g).

  Returns:
    [n] int32 permutation sigma minimising `sum_j ||z_r[sigma[j]] -
    f_zg[j]||^2`; no gradient flows through it.
  """
  if z_r.shape != f_zg.shape:
    raise ValueError('The Hungarian assignment needs equal batch sizes and '
                     f'dims; got z_r {z_r.shape}, F(z_g) {f_zg.shape}.')
  cost = squared_distances(jax.lax.stop_gradient(f_zg),
                           jax.lax.stop_gradient(z_r))  # [gen, real]
  rows, cols = optax.assignment.hungarian_algorithm(cost)
  n = f_zg.shape[0]
  return jnp.zeros((n,), jnp.int32).at[rows].set(cols.astype(jnp.int32))


def assign(z_r: Array, f_zg: Array, *, assignment: str) -> Array:
  """sigma for `assignment` in ASSIGNMENTS (see the module docstring)."""
  if assignment == 'nearest':
    return nearest_assignment(z_r, f_zg)
  if assignment == 'hungarian':
    return hungarian_assignment(z_r, f_zg)
  if assignment == 'covering':
    return nearest_assignment(f_zg, z_r)
  raise ValueError(
      f'Unknown assignment {assignment!r}; use one of {ASSIGNMENTS}.')


def assigned_pairs(z_r: Array, f_zg: Array, sigma: Array, *,
                   assignment: str) -> tuple[Array, Array]:
  """Aligned (real, generated) pairs of an assignment.

  Args:
    z_r: [m, d] real latents.
    f_zg: [n, d] transformed generated latents.
    sigma: `assign`'s output for the same `assignment`.
    assignment: one of ASSIGNMENTS.

  Returns:
    `(z_r[sigma], f_zg)`, both [n, d], for "nearest" and "hungarian";
    `(z_r, f_zg[sigma])`, both [m, d], for "covering".
  """
  if assignment == 'covering':
    return z_r, f_zg[sigma]
  if assignment in ASSIGNMENTS:
    return z_r[sigma], f_zg
  raise ValueError(
      f'Unknown assignment {assignment!r}; use one of {ASSIGNMENTS}.')


def pot_regulariser(z_r_assigned: Array, f_zg: Array) -> Array:
  """POT-GAN's generator regulariser `sum_i ||z_r,sigma(i) - F(z_g,i)||^2`.

  This is Algorithm 2's `L_POT` (Eq. 13's expectation written, as in the
  algorithm, as a SUM over the minibatch, and over latent dims): the paper's
  `lambda_POT = 0.01` multiplies this sum, so its size grows with the batch
  (64 in the paper). `z_r_assigned` is held constant (stop_gradient): the
  gradient flows only through `f_zg`. In the generator's step, compute
  `f_zg = forest.apply(forest_params, Q(G(z)))` with the forest parameters
  from `fit_forest` treated as constants (differentiate with respect to the
  generator's parameters only), and the assignment from `fit_forest` (an
  integer array, so no gradient).

  Args:
    z_r_assigned: [n, d] the real latent paired with each generated one.
    f_zg: [n, d] F(z_g) of the generated latents, differentiable.

  Returns:
    Scalar sum of squared distances.
  """
  diff = jax.lax.stop_gradient(z_r_assigned) - f_zg
  return jnp.sum(jnp.square(diff))


def matching_cost(z_r: Array, f_zg: Array, sigma: Array, *,
                  assignment: str) -> Array:
  """Mean over pairs of `||z_r - F(z_g)||^2` for an assignment (a scalar)."""
  a, b = assigned_pairs(z_r, f_zg, sigma, assignment=assignment)
  return jnp.mean(jnp.sum(jnp.square(a - b), axis=-1))


def fit_forest(forest_params: Params, z_r: Array, z_g: Array, *,
               forest: nn.Module, steps: int, learning_rate: float,
               assignment: str = 'nearest', b1: float = 0.5, b2: float = 0.9
               ) -> tuple[Params, Array, dict[str, Array]]:
  """The paper's Algorithm 1: alternate assignments and Adam steps on F.

  `steps` times: sigma <- assignment under `||z_r - F(z_g)||^2` with the
  current F; one Adam step on F's parameters minimising the MEAN over pairs of
  `||z_r,sigma - F(z_g)||^2` (Algorithm 1 writes the sum; Adam is invariant
  to the loss scale up to its epsilon, and the mean keeps `learning_rate`
  independent of the batch size). Then a last assignment with the final F,
  which is what the generator's regulariser uses. Adam's state is created
  here and dropped on return: only F's parameters carry over between GAN
  steps (Algorithm 2 passes l along; its optimizer state is unstated). The
  betas default to the paper's GAN Adam (0.5, 0.9).

  Pure and jittable (jit with `forest`, `steps`, `assignment` static, e.g.
  through functools.partial). Gradients of the result with respect to the
  inputs are not meaningful: z_r and z_g are treated as data.

  Args:
    forest_params: the forest's variables, `{'params': ...}`.
    z_r: [m, d] real latents Q(x_r).
    z_g: [n, d] generated latents Q(G(z)).
    forest: the LatentTransformationForest module.
    steps: Algorithm 1's `iters` (>= 0).
    learning_rate: Adam's learning rate for F.
    assignment: "nearest", "hungarian" or "covering" (module docstring).
    b1, b2: Adam's moment decays.

  Returns:
    `(forest_params, sigma, aux)`: the updated parameters; the final
    assignment (`[n]` indices into z_r, or `[m]` indices into z_g for
    "covering"); aux with `cost` [steps] (the mean matched cost before each
    Adam step), `cost_initial` and `cost_final` (the mean matched cost under
    the first and the final assignment and F) and `unique_fraction` (distinct
    matched latents on the assigned side over their count: 1 for a
    permutation, a mode-collapse signal for nearest neighbours).
  """
  if assignment not in ASSIGNMENTS:
    raise ValueError(
        f'Unknown assignment {assignment!r}; use one of {ASSIGNMENTS}.')
  z_r = jax.lax.stop_gradient(z_r)
  z_g = jax.lax.stop_gradient(z_g)
  tx = optax.adam(learning_rate, b1=b1, b2=b2)

  def loss_fn(params, sigma):
    f_zg = forest.apply(params, z_g)
    return matching_cost(z_r, f_zg, sigma, assignment=assignment)

  def body(carry, _):
    params, opt_state = carry
    sigma = assign(z_r, forest.apply(params, z_g), assignment=assignment)
    cost, grads = jax.value_and_grad(loss_fn)(params, sigma)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), cost

  (params, _), costs = jax.lax.scan(
      body, (forest_params, tx.init(forest_params)), None, length=steps)
  f_zg = forest.apply(params, z_g)
  sigma = assign(z_r, f_zg, assignment=assignment)
  cost_final = matching_cost(z_r, f_zg, sigma, assignment=assignment)
  cost_initial = costs[0] if steps > 0 else cost_final
  pool = z_g.shape[0] if assignment == 'covering' else z_r.shape[0]
  distinct = jnp.sum(jnp.zeros((pool,), jnp.int32).at[sigma].max(1))
  aux = {
      'cost': costs,
      'cost_initial': cost_initial,
      'cost_final': cost_final,
      'unique_fraction': distinct / sigma.shape[0],
  }
  return params, sigma, aux

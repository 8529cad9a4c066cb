"""POT-GAN's assignments, Algorithm 1 and regulariser against references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from otgan_jax.losses import potgan
from otgan_jax.models.forest import LatentTransformationForest


def _normal(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape),
                     jnp.float32)


def _sq_dists(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum(np.square(a[:, None] - b[None]), axis=-1)


@pytest.mark.parametrize('query_chunk,key_chunk', [(512, 8192), (32, 50)])
def test_nearest_assignment_matches_brute_force(query_chunk, key_chunk):
  # Small chunks exercise both the blocked scan and lax.map with a remainder.
  z_r, f_zg = _normal((333, 6), 0), _normal((101, 6), 1)
  sigma = jax.jit(functools.partial(
      potgan.nearest_assignment, query_chunk=query_chunk,
      key_chunk=key_chunk))(z_r, f_zg)
  assert sigma.shape == (101,) and sigma.dtype == jnp.int32
  np.testing.assert_array_equal(sigma, np.argmin(_sq_dists(f_zg, z_r), 1))


def test_hungarian_assignment_is_optimal_permutation():
  z_r, f_zg = _normal((40, 5), 2), _normal((40, 5), 3)
  sigma = np.asarray(jax.jit(potgan.hungarian_assignment)(z_r, f_zg))
  np.testing.assert_array_equal(np.sort(sigma), np.arange(40))
  cost = _sq_dists(f_zg, z_r)  # [generated, real]
  rows, cols = optimize.linear_sum_assignment(cost)
  np.testing.assert_allclose(cost[np.arange(40), sigma].sum(),
                             cost[rows, cols].sum(), rtol=1e-5)
  with pytest.raises(ValueError, match='equal batch sizes'):
    potgan.hungarian_assignment(z_r, f_zg[:30])


def test_assigned_pairs_of_each_assignment():
  z_r, f_zg = _normal((7, 3), 4), _normal((5, 3), 5)
  sigma = potgan.assign(z_r, f_zg, assignment='nearest')
  a, b = potgan.assigned_pairs(z_r, f_zg, sigma, assignment='nearest')
  assert a.shape == b.shape == (5, 3)
  rho = potgan.assign(z_r, f_zg, assignment='covering')
  np.testing.assert_array_equal(rho, np.argmin(_sq_dists(z_r, f_zg), 1))
  a, b = potgan.assigned_pairs(z_r, f_zg, rho, assignment='covering')
  assert a.shape == b.shape == (7, 3)
  np.testing.assert_array_equal(a, z_r)
  with pytest.raises(ValueError, match='Unknown assignment'):
    potgan.assign(z_r, f_zg, assignment='sinkhorn')


def _fit(assignment, steps, learning_rate=0.05):
  forest = LatentTransformationForest(num_trees=8, depth=3, out_dim=8)
  return forest, jax.jit(functools.partial(
      potgan.fit_forest, forest=forest, steps=steps,
      learning_rate=learning_rate, assignment=assignment))


@pytest.mark.parametrize('assignment', potgan.ASSIGNMENTS)
def test_fit_forest_lowers_the_matching_cost(assignment):
  # Unrelated clouds: F can only partly align them, but the cost must drop.
  z_r = _normal((48, 8), 6) * 0.5 + 1.0
  z_g = _normal((48, 8), 7)
  forest, fit = _fit(assignment, steps=60)
  params = forest.init(jax.random.key(0), z_g)
  new_params, sigma, aux = fit(params, z_r, z_g)
  assert aux['cost'].shape == (60,)
  assert float(aux['cost_final']) < 0.5 * float(aux['cost_initial'])
  # The returned sigma is the final F's assignment.
  f_zg = forest.apply(new_params, z_g)
  np.testing.assert_array_equal(
      sigma, potgan.assign(z_r, f_zg, assignment=assignment))
  if assignment == 'hungarian':
    assert float(aux['unique_fraction']) == 1.0


@pytest.mark.parametrize('assignment', ['hungarian', 'covering'])
def test_fit_forest_recovers_a_translation(assignment):
  z_g = _normal((48, 8), 8)
  shift = jnp.array([1.0, -2.0, 0.5, 0.0, 0.0, 1.0, 0.0, 3.0])
  perm = np.random.default_rng(9).permutation(48)
  z_r = (z_g + shift)[perm]
  forest, fit = _fit(assignment, steps=200)
  params = forest.init(jax.random.key(0), z_g)
  _, sigma, aux = fit(params, z_r, z_g)
  assert float(aux['cost_initial']) > 5.0
  assert float(aux['cost_final']) < 1e-2
  if assignment == 'hungarian':
    # sigma[j] is where generated latent j went: the inverse of perm.
    np.testing.assert_array_equal(perm[np.asarray(sigma)], np.arange(48))


def test_pot_regulariser_sum_and_gradients():
  z_r, f_zg = _normal((9, 4), 10), _normal((6, 4), 11)
  sigma = potgan.nearest_assignment(z_r, f_zg)
  value = potgan.pot_regulariser(z_r[sigma], f_zg)
  expected = np.sum(np.square(np.asarray(z_r)[np.asarray(sigma)] - f_zg))
  np.testing.assert_allclose(value, expected, rtol=1e-5)

  def full(z_r, f_zg):
    # The whole path, assignment included, as a generator step would run it.
    s = potgan.nearest_assignment(z_r, f_zg)
    return potgan.pot_regulariser(z_r[s], f_zg)

  g_zr, g_f = jax.jit(jax.grad(full, argnums=(0, 1)))(z_r, f_zg)
  np.testing.assert_array_equal(g_zr, np.zeros_like(z_r))
  # d/df sum ||z_r[sigma] - f||^2 = 2 (f - z_r[sigma]): sigma is a constant.
  np.testing.assert_allclose(g_f, 2.0 * (f_zg - z_r[sigma]), rtol=1e-5,
                             atol=1e-6)


def test_regulariser_gradient_reaches_generated_latents_through_forest():
  z_r, z_g = _normal((16, 8), 12), _normal((16, 8), 13)
  forest, fit = _fit('hungarian', steps=5)
  params, sigma, _ = fit(forest.init(jax.random.key(0), z_g), z_r, z_g)
  frozen = jax.lax.stop_gradient(params)
  g = jax.grad(lambda zg: potgan.pot_regulariser(
      z_r[sigma], forest.apply(frozen, zg)))(z_g)
  assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0

"""The Latent Transformation Forest: shapes, routing, gradients, indices."""

import jax
import jax.numpy as jnp
import numpy as np

from otgan_jax.models import forest as forest_lib


def _latents(n=12, d=8, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)),
                     jnp.float32)


def test_shapes_and_identity_start():
  z = _latents(d=8)
  f = forest_lib.LatentTransformationForest(num_trees=5, depth=3, out_dim=8)
  params = f.init(jax.random.key(0), z)
  p = params['params']
  assert p['thresholds'].shape == (5, 7)
  assert p['log_inv_temperature'].shape == (5, 7)
  assert p['leaves'].shape == (5, 8, 8)
  out = jax.jit(f.apply)(params, z)
  assert out.shape == (12, 8)
  # Residual form with zero leaves: F starts as the identity.
  np.testing.assert_allclose(out, z, atol=1e-6)
  plain = forest_lib.LatentTransformationForest(
      num_trees=5, depth=3, out_dim=3, residual=False)
  assert plain.apply(plain.init(jax.random.key(0), z), z).shape == (12, 3)


def test_routing_probabilities_sum_to_one_per_tree():
  z = 3.0 * _latents(n=20, d=6)
  f = forest_lib.LatentTransformationForest(num_trees=4, depth=4, out_dim=6)
  params = f.init(jax.random.key(0), z)
  params = jax.tree.map(
      lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape),
      params)
  mu = f.apply(params, z, method=f.routing)
  assert mu.shape == (20, 4, 16)
  assert bool(jnp.all(mu >= 0))
  np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-5)


def test_leaf_probabilities_are_path_products():
  a, b, c = 0.9, 0.3, 0.6
  mu = forest_lib.leaf_probabilities(jnp.array([a, b, c]))
  np.testing.assert_allclose(
      mu, [a * b, a * (1 - b), (1 - a) * c, (1 - a) * (1 - c)], rtol=1e-6)


def test_node_indices():
  idx = forest_lib.node_indices(10, 3, 3, seed=0)
  assert idx.shape == (3, 7) and idx.min() >= 0 and idx.max() < 10
  # 21 slots from permutations of range(10): the first 10 are all distinct.
  assert len(set(idx.reshape(-1)[:10].tolist())) == 10
  np.testing.assert_array_equal(idx, forest_lib.node_indices(10, 3, 3, seed=0))
  assert not np.array_equal(idx, forest_lib.node_indices(10, 3, 3, seed=1))
  reshape = forest_lib.node_indices(10, 3, 3, shuffle=False)
  np.testing.assert_array_equal(reshape.reshape(-1), np.arange(21) % 10)


def test_gradients_reach_thresholds_temperatures_and_leaves():
  z = _latents(d=8)
  target = _latents(d=8, seed=1)
  f = forest_lib.LatentTransformationForest(num_trees=4, depth=3, out_dim=8)
  params = f.init(jax.random.key(0), z)
  # Zero leaves hide the routing from the output; start from non-zero ones.
  leaves = 0.5 * jax.random.normal(jax.random.key(2),
                                   params['params']['leaves'].shape)
  params = {'params': dict(params['params'], leaves=leaves)}
  grads = jax.jit(jax.grad(
      lambda p: jnp.sum(jnp.square(f.apply(p, z) - target))))(params)
  for name, g in grads['params'].items():
    assert bool(jnp.all(jnp.isfinite(g))), name
    assert float(jnp.max(jnp.abs(g))) > 1e-6, name
  # Gradient also flows into the input (the generator's path in POT-GAN).
  gz = jax.grad(lambda x: jnp.sum(jnp.square(f.apply(params, x))))(z)
  assert bool(jnp.all(jnp.isfinite(gz))) and float(jnp.max(jnp.abs(gz))) > 0

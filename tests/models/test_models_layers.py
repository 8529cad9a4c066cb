"""Tests of the weight-normalised layers and activations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.models import layers


def _stats(y):
  axes = tuple(range(y.ndim - 1))
  return np.asarray(jnp.mean(y, axis=axes)), np.asarray(jnp.std(y, axis=axes))


def test_glu_splits_last_axis_value_then_gate():
  h = jnp.array([[1.0, -2.0, 0.0, 3.0]])
  out = layers.glu(h)
  expected = jnp.array([[1.0, -2.0]]) * jax.nn.sigmoid(jnp.array([[0.0, 3.0]]))
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  with pytest.raises(ValueError):
    layers.glu(jnp.ones((2, 3)))


def test_crelu_doubles_channels():
  x = jnp.array([[[[1.0, -2.0]]]])
  out = layers.crelu(x)
  assert out.shape == (1, 1, 1, 4)
  np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.0, 0.0, 2.0])


def test_upsample_nearest_2x_copies_pixels_to_blocks():
  x = jnp.arange(2 * 2 * 2 * 3, dtype=jnp.float32).reshape(2, 2, 2, 3)
  out = layers.upsample_nearest_2x(x)
  assert out.shape == (2, 4, 4, 3)
  for i in range(4):
    for j in range(4):
      np.testing.assert_array_equal(out[:, i, j], x[:, i // 2, j // 2])


@pytest.mark.parametrize('init_scale', [1.0, 0.1])
def test_wn_dense_data_dependent_init(init_scale):
  layer = layers.WNDense(16, init_scale=init_scale)
  x = 3.0 * jax.random.normal(jax.random.key(0), (256, 8)) + 1.5
  variables = layer.init(jax.random.key(1), x)
  params = variables['params']
  assert params['kernel'].shape == (8, 16)
  assert params['scale'].shape == (16,)
  assert params['bias'].shape == (16,)
  mean, std = _stats(layer.apply(variables, x))
  np.testing.assert_allclose(mean, 0.0, atol=1e-4 * max(1.0, init_scale))
  np.testing.assert_allclose(std, init_scale, rtol=1e-3)


@pytest.mark.parametrize('strides', [1, 2])
def test_wn_conv_data_dependent_init(strides):
  layer = layers.WNConv(6, kernel_size=5, strides=strides, init_scale=0.1)
  x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 3), minval=-1, maxval=2)
  variables = layer.init(jax.random.key(1), x)
  assert variables['params']['kernel'].shape == (5, 5, 3, 6)
  y = layer.apply(variables, x)
  assert y.shape == (4, 8 // strides, 8 // strides, 6)
  mean, std = _stats(y)
  np.testing.assert_allclose(mean, 0.0, atol=1e-5)
  np.testing.assert_allclose(std, 0.1, rtol=1e-3)


def test_direction_init_is_normal_005():
  layer = layers.WNDense(512)
  x = jax.random.normal(jax.random.key(0), (32, 64))
  v = layer.init(jax.random.key(1), x)['params']['kernel']
  assert abs(float(jnp.std(v)) - 0.05) < 2e-3


def test_apply_is_deterministic_and_uses_stored_params():
  layer = layers.WNConv(5, kernel_size=3)
  x = jax.random.normal(jax.random.key(0), (8, 6, 6, 2))
  variables = layer.init(jax.random.key(1), x)
  y1 = layer.apply(variables, x)
  y2 = jax.jit(layer.apply)(variables, x)
  np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)

  # A second batch is not renormalised: its statistics differ.
  x2 = 4.0 * jax.random.normal(jax.random.key(2), (8, 6, 6, 2)) + 2.0
  _, std2 = _stats(layer.apply(variables, x2))
  assert np.min(std2) > 2.0  # ~4x the init batch's unit std.

  # The output is exactly x * (g * v / ||v||) + b with the stored params.
  p = variables['params']
  w = p['kernel'] / jnp.linalg.norm(
      p['kernel'].reshape(-1, 5), axis=0
  ) * p['scale']
  expected = jax.lax.conv_general_dilated(
      x2, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  ) + p['bias']
  np.testing.assert_allclose(
      layer.apply(variables, x2), expected, rtol=1e-4, atol=1e-4
  )

  # Changing the stored scale and bias changes the output accordingly.
  edited = {'params': dict(p, scale=2.0 * p['scale'], bias=p['bias'] + 1.0)}
  y_edit = layer.apply(edited, x)
  np.testing.assert_allclose(
      y_edit, 2.0 * (y1 - p['bias']) + p['bias'] + 1.0, rtol=1e-4, atol=1e-4
  )


def test_init_depends_on_init_batch():
  layer = layers.WNDense(4)
  x1 = jax.random.normal(jax.random.key(0), (64, 3))
  x2 = 10.0 * x1 + 5.0
  p1 = layer.init(jax.random.key(1), x1)['params']
  p2 = layer.init(jax.random.key(1), x2)['params']
  np.testing.assert_array_equal(p1['kernel'], p2['kernel'])
  np.testing.assert_allclose(p2['scale'], p1['scale'] / 10.0, rtol=1e-4)


def test_wn_conv_rejects_non_image_input():
  with pytest.raises(ValueError):
    layers.WNConv(4).init(jax.random.key(0), jnp.ones((2, 8, 3)))


def test_wn_conv_upsample_equals_upsampling_first():
  # Same parameters (names, shapes, data-dependent init) and outputs as
  # upsample_nearest_2x followed by the plain layer.
  x = jax.random.normal(jax.random.key(0), (4, 4, 4, 6))
  fused = layers.WNConv(8, 5, init_scale=0.5, upsample=True)
  plain = layers.WNConv(8, 5, init_scale=0.5)
  up = layers.upsample_nearest_2x(x)
  p_fused = fused.init(jax.random.key(1), x)
  p_plain = plain.init(jax.random.key(1), up)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5,
                                                       rtol=1e-5),
               p_fused, p_plain)
  np.testing.assert_allclose(fused.apply(p_plain, x), plain.apply(p_plain, up),
                             atol=1e-5, rtol=1e-5)
  with pytest.raises(ValueError, match='stride 1'):
    layers.WNConv(8, 5, strides=2, upsample=True).init(jax.random.key(1), x)

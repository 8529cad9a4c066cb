"""Tests of the OT-GAN convolutional generator and critic."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax import models

CIFAR_GEN_KERNELS = {
    'dense': (100, 2 * 4 * 4 * 1024),
    'conv_0': (5, 5, 1024, 1024),
    'conv_1': (5, 5, 512, 512),
    'conv_2': (5, 5, 256, 256),
    'conv_out': (5, 5, 128, 3),
}
CIFAR_CRITIC_KERNELS = {
    'conv_0': (5, 5, 3, 128),
    'conv_1': (5, 5, 256, 256),
    'conv_2': (5, 5, 512, 512),
    'conv_3': (5, 5, 1024, 1024),
}


def _shapes(tree):
  return jax.tree_util.tree_map(lambda a: tuple(a.shape), tree)


def _check_param_shapes(params, kernels):
  assert set(params) == set(kernels)
  for name, kernel_shape in kernels.items():
    assert params[name]['kernel'] == kernel_shape, name
    assert params[name]['scale'] == (kernel_shape[-1],), name
    assert params[name]['bias'] == (kernel_shape[-1],), name


def _capture(module, variables, *args):
  """Jitted apply returning (output, {'intermediates': ...})."""
  fn = functools.partial(module.apply, capture_intermediates=True)
  return jax.jit(fn)(variables, *args)


def _intermediate_shapes(module, variables, *args):
  """Output shapes of each submodule's __call__, by submodule name."""
  _, state = jax.eval_shape(
      lambda v, *a: module.apply(v, *a, capture_intermediates=True),
      variables,
      *args,
  )
  inter = state['intermediates']
  return {
      k: tuple(v['__call__'][0].shape)
      for k, v in inter.items()
      if k != '__call__'
  }


def test_cifar_generator_shapes():
  gen = models.Generator()
  z = jax.ShapeDtypeStruct((2, 100), jnp.float32)
  variables = jax.eval_shape(gen.init, jax.random.key(0), z)
  _check_param_shapes(_shapes(variables['params']), CIFAR_GEN_KERNELS)
  assert _intermediate_shapes(gen, variables, z) == {
      'dense': (2, 32768),
      'conv_0': (2, 8, 8, 1024),
      'conv_1': (2, 16, 16, 512),
      'conv_2': (2, 32, 32, 256),
      'conv_out': (2, 32, 32, 3),
  }
  assert models.output_size(4, (1024, 512, 256, 128)) == 32
  assert models.Generator.output_size(4, (1024, 512, 256, 128)) == 32


def test_cifar_critic_shapes():
  critic = models.Critic()
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  variables = jax.eval_shape(critic.init, jax.random.key(0), x)
  _check_param_shapes(_shapes(variables['params']), CIFAR_CRITIC_KERNELS)
  assert _intermediate_shapes(critic, variables, x) == {
      'conv_0': (2, 32, 32, 128),
      'conv_1': (2, 16, 16, 256),
      'conv_2': (2, 8, 8, 512),
      'conv_3': (2, 4, 4, 1024),
  }
  assert models.feature_dim((32, 32, 3)) == 32768
  assert models.Critic.feature_dim((32, 32)) == 32768


@pytest.mark.optimised  # the paper-width CIFAR-10 networks
def test_cifar_networks_run_end_to_end():
  gen, critic = models.Generator(), models.Critic()
  z = models.sample_latent(jax.random.key(0), 2, 100)
  assert float(jnp.min(z)) >= -1.0 and float(jnp.max(z)) <= 1.0

  @jax.jit
  def run(z):
    images = gen.apply(gen.init(jax.random.key(1), z), z)
    return images, critic.apply(critic.init(jax.random.key(2), images), images)

  images, features = run(z)
  assert images.shape == (2, 32, 32, 3)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  # Last conv has init_scale 0.1, so outputs start small but non-constant.
  assert 0.03 < float(jnp.std(images)) < 0.2
  assert features.shape == (2, 32768)
  assert np.all(np.isfinite(features))
  np.testing.assert_allclose(jnp.linalg.norm(features, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    'base_size, gen_widths, critic_widths, critic_strides, size',
    [
        (7, (64, 32, 16), (16, 32, 64), (1, 2, 2), 28),
        (2, (64, 32, 16), (16, 32, 64), (1, 2, 2), 8),
    ],
)
def test_greyscale_variants(
    base_size, gen_widths, critic_widths, critic_strides, size
):
  assert models.output_size(base_size, gen_widths) == size
  gen = models.Generator(
      base_size=base_size, widths=gen_widths, out_channels=1
  )
  critic = models.Critic(widths=critic_widths, strides=critic_strides)
  z = models.sample_latent(jax.random.key(0), 16, 32)

  @jax.jit
  def run(z):
    gen_vars = gen.init(jax.random.key(1), z)
    images, state = gen.apply(gen_vars, z, capture_intermediates=True)
    critic_vars = critic.init(jax.random.key(2), images)
    return images, state, critic_vars, critic.apply(critic_vars, images)

  images, state, critic_vars, features = run(z)
  assert images.shape == (16, size, size, 1)
  assert float(jnp.max(jnp.abs(images))) <= 1.0

  # Data-dependent init: the pre-tanh output has mean 0, std out_init_scale
  # per channel on the init batch.
  pre_tanh = state['intermediates']['conv_out']['__call__'][0]
  np.testing.assert_allclose(jnp.mean(pre_tanh, axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.std(pre_tanh, axis=(0, 1, 2)), 0.1, rtol=1e-3)

  dim = models.feature_dim((size, size, 1), critic_widths, critic_strides)
  final = -(-size // 4)
  assert dim == final * final * 2 * critic_widths[-1]
  assert features.shape == (16, dim)
  np.testing.assert_allclose(jnp.linalg.norm(features, axis=-1), 1.0, rtol=1e-5)
  assert critic_vars['params']['conv_0']['kernel'].shape == (5, 5, 1, 16)
  assert critic_vars['params']['conv_1']['kernel'].shape == (5, 5, 32, 32)


def test_default_critic_on_28px_has_ceil_spatial_sizes():
  critic = models.Critic()
  x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
  variables = jax.eval_shape(critic.init, jax.random.key(0), x)
  out = jax.eval_shape(critic.apply, variables, x)
  assert out.shape == (3, models.feature_dim((28, 28, 1))) == (3, 32768)


def test_critic_init_normalises_each_layer_on_init_batch():
  critic = models.Critic(widths=(8, 16), strides=(1, 2))
  x = jax.random.uniform(jax.random.key(0), (8, 8, 8, 3), minval=-1, maxval=1)
  variables = jax.jit(critic.init)(jax.random.key(1), x)
  _, state = _capture(critic, variables, x)
  for name in ('conv_0', 'conv_1'):
    y = state['intermediates'][name]['__call__'][0]
    np.testing.assert_allclose(jnp.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, axis=(0, 1, 2)), 1.0, rtol=1e-3)
  # Applying again is deterministic; a different batch is not renormalised.
  np.testing.assert_array_equal(
      jax.jit(critic.apply)(variables, x), jax.jit(critic.apply)(variables, x)
  )
  _, state2 = _capture(critic, variables, 0.2 * x)
  y2 = state2['intermediates']['conv_0']['__call__'][0]
  assert float(jnp.max(jnp.abs(jnp.std(y2, axis=(0, 1, 2)) - 1.0))) > 0.3


def test_conditional_networks():
  num_classes = 10
  gen = models.Generator(
      base_size=2, widths=(32, 16, 8), out_channels=1, num_classes=num_classes
  )
  critic = models.Critic(
      widths=(8, 16), strides=(2, 2), num_classes=num_classes
  )
  z = models.sample_latent(jax.random.key(0), 4, 12)
  labels = jnp.array([0, 3, 9, 3])

  @jax.jit
  def run(z, labels):
    gen_vars = gen.init(jax.random.key(1), z, labels)
    images = gen.apply(gen_vars, z, labels)
    critic_vars = critic.init(jax.random.key(2), images, labels)
    features = critic.apply(critic_vars, images, labels)
    other = critic.apply(critic_vars, images, (labels + 1) % num_classes)
    return gen_vars, images, critic_vars, features, other

  gen_vars, images, critic_vars, features, other = run(z, labels)
  assert gen_vars['params']['dense']['kernel'].shape == (22, 2 * 2 * 2 * 32)
  assert images.shape == (4, 8, 8, 1)
  assert critic_vars['params']['conv_0']['kernel'].shape == (5, 5, 11, 8)
  assert features.shape == (4, 2 * 2 * 32)
  assert not np.allclose(features, other)
  with pytest.raises(ValueError, match='labels'):
    jax.eval_shape(gen.apply, gen_vars, z)
  with pytest.raises(ValueError, match='labels'):
    models.Generator().init(jax.random.key(0), z, labels)


def test_critic_rejects_mismatched_spec():
  with pytest.raises(ValueError, match='same length'):
    models.feature_dim((32, 32), (8, 16), (1, 2, 2))

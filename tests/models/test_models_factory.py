"""Tests of `build_models` and the toy MLPs."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from otgan_jax import models


def _conv_config(base_size=4, widths=(1024, 512, 256, 128)):
  return ml_collections.ConfigDict({
      'name': 'otgan_conv',
      'z_dim': 100,
      'num_classes': 0,
      'generator': {
          'base_size': base_size,
          'widths': widths,
          'out_init_scale': 0.1,
          'hidden': (256, 128, 128, 128),
      },
      'critic': {
          'widths': (128, 256, 512, 1024),
          'strides': (1, 2, 2, 2),
          'hidden': (32, 32, 32),
          'features': 16,
      },
  })


def _toy_config():
  config = _conv_config()
  config.name = 'toy_mlp'
  config.z_dim = 8
  return config


def test_build_cifar_models():
  gen, critic = models.build_models(_conv_config(), (32, 32, 3))
  assert isinstance(gen, models.Generator)
  assert isinstance(critic, models.Critic)
  assert gen.out_channels == 3 and gen.out_init_scale == 0.1
  z = jax.ShapeDtypeStruct((2, 100), jnp.float32)
  gen_vars = jax.eval_shape(gen.init, jax.random.key(0), z)
  images = jax.eval_shape(gen.apply, gen_vars, z)
  assert images.shape == (2, 32, 32, 3)
  critic_vars = jax.eval_shape(critic.init, jax.random.key(0), images)
  assert jax.eval_shape(critic.apply, critic_vars, images).shape == (2, 32768)


def test_build_accepts_lists_and_sets_channels():
  config = _conv_config(base_size=7, widths=[64, 32, 16])
  config.critic.widths = [16, 32, 64]
  config.critic.strides = [1, 2, 2]
  gen, critic = models.build_models(config, [28, 28, 1])
  assert gen.widths == (64, 32, 16) and gen.out_channels == 1
  assert critic.widths == (16, 32, 64) and critic.strides == (1, 2, 2)
  z = jax.ShapeDtypeStruct((2, 100), jnp.float32)
  gen_vars = jax.eval_shape(gen.init, jax.random.key(0), z)
  assert jax.eval_shape(gen.apply, gen_vars, z).shape == (2, 28, 28, 1)


def test_build_mismatched_size_raises_clear_error():
  with pytest.raises(ValueError) as info:
    models.build_models(_conv_config(), (28, 28, 1))
  message = str(info.value)
  assert '32' in message and '28x28' in message
  assert 'model.generator.base_size' in message
  assert 'model.generator.widths' in message
  # 28 is not a multiple of 2**3 (hint: widths); 8 is (hint: base_size 1).
  with pytest.raises(ValueError, match='base_size=1'):
    models.build_models(_conv_config(), (8, 8, 1))


def test_build_rejects_bad_inputs():
  with pytest.raises(ValueError, match='Unknown model.name'):
    config = _conv_config()
    config.name = 'dcgan'
    models.build_models(config, (32, 32, 3))
  with pytest.raises(ValueError, match='height, width, channels'):
    models.build_models(_conv_config(), (2,))
  with pytest.raises(ValueError, match='vector data'):
    models.build_models(_toy_config(), (32, 32, 3))


def test_build_conditional():
  config = _conv_config(base_size=2, widths=(16, 8, 4))
  config.critic.widths = (8, 16)
  config.critic.strides = (2, 2)
  config.num_classes = 10
  gen, critic = models.build_models(config, (8, 8, 1))
  assert gen.num_classes == 10 and critic.num_classes == 10


def test_toy_models():
  gen, critic = models.build_models(_toy_config(), (2,))
  assert isinstance(gen, models.MLPGenerator)
  assert isinstance(critic, models.MLPCritic)
  assert gen.out_dim == 2 and critic.features == 16
  z = jax.random.normal(jax.random.key(0), (5, 8))
  gen_vars = jax.jit(gen.init)(jax.random.key(1), z)
  points = jax.jit(gen.apply)(gen_vars, z)
  assert points.shape == (5, 2)
  kernels = [gen_vars['params'][f'dense_{i}']['kernel'].shape for i in range(4)]
  assert kernels == [(8, 256), (256, 128), (128, 128), (128, 128)]
  assert gen_vars['params']['dense_out']['kernel'].shape == (128, 2)

  critic_vars = jax.jit(critic.init)(jax.random.key(2), points)
  features = jax.jit(critic.apply)(critic_vars, points)
  assert features.shape == (5, 16)
  # No normalisation of the toy critic's features.
  assert not np.allclose(jnp.linalg.norm(features, axis=-1), 1.0)
  assert set(critic_vars['params']) == {
      'dense_0', 'dense_1', 'dense_2', 'dense_out'
  }


def test_toy_conditional():
  gen = models.MLPGenerator(out_dim=3, num_classes=4)
  critic = models.MLPCritic(num_classes=4)
  z = jnp.ones((2, 5))
  labels = jnp.array([1, 2])
  gen_vars = jax.jit(gen.init)(jax.random.key(0), z, labels)
  assert gen_vars['params']['dense_0']['kernel'].shape == (9, 256)
  x = jax.jit(gen.apply)(gen_vars, z, labels)
  critic_vars = jax.jit(critic.init)(jax.random.key(1), x, labels)
  assert critic.apply(critic_vars, x, labels).shape == (2, 16)
  with pytest.raises(ValueError, match='labels'):
    jax.jit(critic.apply)(critic_vars, x)

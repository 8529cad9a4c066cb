"""Every shipped config loads, is complete, and builds its networks."""

import glob
import importlib
import os

import jax
import jax.numpy as jnp
import pytest

from configs import common
from otgan_jax import methods
from otgan_jax import models
from otgan_jax.evaluation import evaluators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every experiment config (common.py holds the shared keys, reproduce.py the
# reproduction suites, built from these configs and tested in
# tests/test_reproduce.py).
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(ROOT, "configs", "*.py")) if not p.endswith((
        "__init__.py", "common.py", "reproduce.py")))
SHAPES = {"digits": (8, 8, 1), "gaussians": (2,), "mnist": (28, 28, 1),
          "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def _flat_keys(c, prefix=""):
  keys = set()
  for k, v in c.items():
    if hasattr(v, "items"):
      keys |= _flat_keys(v, f"{prefix}{k}.")
    else:
      keys.add(prefix + k)
  return keys


@pytest.mark.parametrize("name", CONFIGS)
def test_config_declares_only_common_keys_and_builds(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert _flat_keys(config) == _flat_keys(common.get_config())
  method = methods.get(config.method)
  methods.check_sections(config)
  shape = SHAPES[config.data.name]
  if config.data.resize:  # Images resized to resize x resize.
    shape = (config.data.resize, config.data.resize) + shape[2:]
  gen, critic = models.build_models(config.model, shape,
                                    head=method.critic_head)
  n = 2
  z = jax.ShapeDtypeStruct((n, config.model.z_dim), jnp.float32)
  x = jax.ShapeDtypeStruct((n,) + shape, jnp.float32)
  params = jax.eval_shape(gen.init, jax.random.key(0), z)
  assert jax.eval_shape(gen.apply, params, z).shape == x.shape
  critic_params = jax.eval_shape(critic.init, jax.random.key(1), x)
  features = jax.eval_shape(critic.apply, critic_params, x)
  if method.critic_head == "scalar":
    assert features.shape == (n, 1)
  evaluators.parse_metrics(config.evals.metrics)


def test_cifar10_config_is_the_papers():
  from configs import otgan_cifar10  # pylint: disable=g-import-not-at-top
  c = otgan_cifar10.get_config()
  assert c.batch_size == 4000 and c.otgan.n_gen == 3
  assert c.ot.epsilon == 0.002 and c.ot.num_iterations == 500
  assert c.optim.generator.learning_rate == 3e-4 and c.optim.ema_decay == 0.999
  assert models.feature_dim((32, 32, 3), c.model.critic.widths,
                            c.model.critic.strides) == 32768
  assert otgan_cifar10.get_config("batch200").batch_size == 100
  assert otgan_cifar10.get_config("random").ot.matching == "random"
  with pytest.raises(ValueError, match="Unknown variant"):
    otgan_cifar10.get_config("batch9")

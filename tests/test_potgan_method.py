"""POT-GAN trains in the shared loop: VAE first, then WGAN-GP + the POT term."""

import json
import os

import jax
import numpy as np
import pytest

from configs import test as test_config
from otgan_jax import experiment
from otgan_jax import train
from otgan_jax import workdir as workdir_lib
from otgan_jax.losses import potgan
from otgan_jax.models import vae as vae_lib


def _config(total_steps=2):
  c = test_config.get_config("potgan")
  c.name = "test_potgan"
  c.total_steps = total_steps
  c.ckpt.every_steps = 2
  return c


def test_potgan_pretrains_the_vae_trains_and_resumes(tmp_path):
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(_config(2), workdir)
  encoder_file = os.path.join(workdir, "vae_encoder.npz")
  assert os.path.exists(encoder_file)
  assert os.path.exists(encoder_file + ".sha256")
  logged = [json.loads(l) for l in open(os.path.join(workdir,
                                                     "metrics.jsonl"))]
  assert {"pot/matching_cost", "pot/unique_fraction",
          "critic/gradient_penalty"} <= set(logged[-1])
  assert all(np.isfinite(v) for v in logged[-1].values())
  # The encoder is a constant: not in the state, its sha256 recorded.
  assert set(state.extra) == {"forest"}
  recorded = json.load(open(os.path.join(workdir, "constants.json")))
  exp = experiment.Experiment(_config())
  params = exp.method.load_encoder(encoder_file)
  assert recorded == workdir_lib.constants_digest({"encoder": params})
  # The forest moved (Algorithm 1 ran).
  fresh = exp.init_state()
  moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
              for a, b in zip(jax.tree.leaves(jax.device_get(fresh.extra[
                  "forest"])), jax.tree.leaves(jax.device_get(
                      state.extra["forest"]))))
  assert moved > 0
  # Resume loads the same (hash-checked) encoder.
  resumed = train.train_and_evaluate(_config(4), workdir)
  assert int(resumed.step) == 4
  # A resumed run whose encoder went missing is not silently retrained.
  os.remove(encoder_file)
  with pytest.raises(ValueError, match="encoder .* is missing"):
    train.train_and_evaluate(_config(6), workdir)
  assert not os.path.exists(encoder_file)


def test_a_replaced_encoder_is_refused_on_resume(tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_config(2), workdir)
  other = _config(2)
  other.seed = 1
  exp = experiment.Experiment(other)
  exp.method.train_encoder(exp.source, os.path.join(workdir,
                                                    "vae_encoder.npz"))
  with pytest.raises(workdir_lib.ConstantsMismatchError,
                     match="differ from those this run started with"):
    train.train_and_evaluate(_config(4), workdir)


def test_an_encoder_of_another_shape_is_a_clear_error(tmp_path):
  c = _config()
  exp = experiment.Experiment(c)
  path = str(tmp_path / "enc.npz")
  exp.method.train_encoder(exp.source, path)
  c.potgan.latent_dim = 6
  c.potgan.encoder_path = path
  with pytest.raises(ValueError, match="does not match this config's VAE"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  with open(path, "r+b") as f:  # Corrupt one byte: the hash check fails.
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 1]))
  with pytest.raises(vae_lib.EncoderFileError):
    exp.method.load_encoder(path)


@pytest.mark.parametrize("assignment", ["covering", "nearest"])
def test_pot_term_gradient_equals_the_direct_gradient(tmp_path, assignment):
  # The step pulls the regulariser's gradient back through one encoder VJP
  # (and the generator runs once); it must equal differentiating
  # `weight * pot_regulariser(z_r[sigma], F(Q(fake)))` directly, with the
  # refitted F and its final assignment held fixed.
  c = _config()
  c.potgan.assignment = assignment
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  method = exp.method
  path = str(tmp_path / "enc.npz")
  method.train_encoder(exp.source, path)
  constants = {"encoder": method.load_encoder(path)}
  state = jax.device_get(exp.init_state())
  real = jax.random.normal(jax.random.key(1), (16, 2))
  fake = jax.random.normal(jax.random.key(2), (16, 2)) * 0.5
  extra, (value, d_fake), _ = method.generator_term(state, real, fake,
                                                    constants)

  def encode(x):
    return vae_lib.encode_mean(constants["encoder"], x, model=method.encoder)

  forest = extra["forest"]
  z_r = encode(real)
  sigma = potgan.assign(z_r, method.forest.apply(forest, encode(fake)),
                        assignment=assignment)

  def direct(f):
    pairs = potgan.assigned_pairs(
        z_r, method.forest.apply(forest, encode(f)), sigma,
        assignment=assignment)
    return c.potgan.weight * potgan.pot_regulariser(*pairs)

  want_value, want_grad = jax.value_and_grad(direct)(fake)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  np.testing.assert_allclose(d_fake, want_grad, rtol=1e-4, atol=1e-8)
  assert float(np.abs(want_grad).max()) > 0


@pytest.mark.parametrize("key,value", [
    ("latent_dim", 0), ("forest_trees", 0), ("vae_batch_size", 0),
    ("vae_steps", -1), ("weight", -1.0)])
def test_impossible_potgan_settings_are_clear_errors(key, value):
  # Before: a traceback from inside the networks (latent_dim, vae_batch_size
  # 0) or NaN at the first log (forest_trees 0).
  c = _config()
  c.potgan[key] = value
  with pytest.raises(ValueError, match=f"config.potgan.{key} must be"):
    experiment.Experiment(c)

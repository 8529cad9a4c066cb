"""POT-GAN trains in the shared loop: VAE first, then WGAN-GP + the POT term."""

import json
import os

import jax
import numpy as np
import pytest

from configs import test as test_config
from otgan_jax import train
from otgan_jax.models import vae as vae_lib


def _config(total_steps=2):
  c = test_config.get_config("gaussians")
  c.name = "test_potgan"
  c.method = "potgan"
  c.model.critic.head = "scalar"
  c.baseline.n_critic = 2
  c.total_steps = total_steps
  c.ckpt.every_steps = 2
  c.potgan.latent_dim = 4
  c.potgan.vae_steps = 20
  c.potgan.vae_examples = 512
  c.potgan.forest_trees = 2
  c.potgan.forest_depth = 2
  c.potgan.forest_steps = 3
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
  # The forest moved (Algorithm 1 ran) and the encoder stayed frozen.
  exp = train.Experiment(_config())
  params, _ = vae_lib.load_encoder(encoder_file)
  for a, b in zip(jax.tree.leaves(params),
                  jax.tree.leaves(jax.device_get(state.extra["encoder"]))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  fresh = exp.init_state(exp.load_encoder(encoder_file))
  moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
              for a, b in zip(jax.tree.leaves(jax.device_get(fresh.extra[
                  "forest"])), jax.tree.leaves(jax.device_get(
                      state.extra["forest"]))))
  assert moved > 0
  # Resume: the encoder and forest come back from the checkpoint.
  os.remove(encoder_file)
  resumed = train.train_and_evaluate(_config(4), workdir)
  assert int(resumed.step) == 4


def test_an_encoder_of_another_shape_is_a_clear_error(tmp_path):
  c = _config()
  exp = train.Experiment(c)
  path = str(tmp_path / "enc.npz")
  exp.train_encoder(path)
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
    exp.load_encoder(path)


@pytest.mark.parametrize("assignment", ["covering", "nearest"])
def test_pot_term_gradient_equals_the_direct_gradient(tmp_path, assignment):
  # The step pulls the regulariser's gradient back through one encoder VJP
  # (and the generator runs once); it must equal differentiating
  # `pot_regulariser(z_r[sigma], F(Q(fake)))` directly, with the refitted F
  # and its final assignment held fixed.
  from otgan_jax import gan_steps  # pylint: disable=g-import-not-at-top
  from otgan_jax.losses import potgan  # pylint: disable=g-import-not-at-top
  c = _config()
  c.potgan.assignment = assignment
  exp = train.Experiment(c, devices=jax.devices()[:1])
  path = str(tmp_path / "enc.npz")
  exp.train_encoder(path)
  state = jax.device_get(exp.init_state(exp.load_encoder(path)))
  real = jax.random.normal(jax.random.key(1), (16, 2))
  fake = jax.random.normal(jax.random.key(2), (16, 2)) * 0.5
  pot_term = gan_steps._pot_term  # pylint: disable=protected-access
  extra, (value, d_fake), _ = pot_term(exp.pot, state, real, fake)

  def encode(x):
    return vae_lib.encode_mean(state.extra["encoder"], x, model=exp.pot.encoder)

  forest = extra["forest"]
  z_r = encode(real)
  sigma = potgan.assign(z_r, exp.pot.forest.apply(forest, encode(fake)),
                        assignment=assignment)

  def direct(f):
    pairs = potgan.assigned_pairs(
        z_r, exp.pot.forest.apply(forest, encode(f)), sigma,
        assignment=assignment)
    return potgan.pot_regulariser(*pairs)

  want_value, want_grad = jax.value_and_grad(direct)(fake)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  np.testing.assert_allclose(d_fake, want_grad, rtol=1e-4, atol=1e-6)
  assert float(np.abs(want_grad).max()) > 0

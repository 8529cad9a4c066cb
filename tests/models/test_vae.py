"""The POT-GAN VAE: shapes, training, reconstruction, encoder files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.models import vae as vae_lib


def _ring(n=2000, seed=0):
  rng = np.random.default_rng(seed)
  angle = rng.integers(0, 8, n) * np.pi / 4
  x = np.stack([np.cos(angle), np.sin(angle)], 1) + 0.05 * rng.normal(
      size=(n, 2))
  return x.astype(np.float32)


def _images(n, shape, seed=0):
  """Blurry random blobs in [-1, 1]: learnable structure, cheap to make."""
  rng = np.random.default_rng(seed)
  h, w, c = shape
  yy, xx = np.mgrid[:h, :w]
  centres = rng.uniform(0.2, 0.8, size=(n, 2)) * [h, w]
  d2 = (yy[None] - centres[:, :1, None]) ** 2 + (
      xx[None] - centres[:, 1:, None]) ** 2
  img = np.exp(-d2 / (2 * (0.15 * h) ** 2))[..., None].repeat(c, -1)
  return (2 * img - 1).astype(np.float32)


def test_conv_vae_shapes():
  shape = (32, 32, 3)
  model = vae_lib.ConvVAE(image_shape=shape, latent_dim=16, widths=(8, 16),
                          hidden=32)
  x = jnp.asarray(_images(4, shape))
  params = jax.jit(model.init)(jax.random.key(0), x, jax.random.key(1))
  recon, mean, logvar = jax.jit(model.apply)(params, x, jax.random.key(2))
  assert recon.shape == x.shape
  assert mean.shape == logvar.shape == (4, 16)
  assert vae_lib.encode_mean(params, x, model=model).shape == (4, 16)
  assert model.apply(params, mean, method=model.decode).shape == x.shape


def test_conv_vae_rejects_indivisible_size():
  model = vae_lib.ConvVAE(image_shape=(30, 30, 1), widths=(8, 16, 32))
  with pytest.raises(ValueError, match='divisible'):
    model.init(jax.random.key(0), jnp.zeros((1, 30, 30, 1)), jax.random.key(1))


@pytest.mark.optimised  # 150 steps
def test_conv_vae_loss_decreases_on_mnist_sized_images():
  shape = (28, 28, 1)
  model = vae_lib.ConvVAE(image_shape=shape, latent_dim=8, widths=(8, 16),
                          hidden=32)
  data = _images(256, shape)
  x = jnp.asarray(data[:64])
  loss = jax.jit(lambda p: vae_lib.vae_loss(p, x, jax.random.key(5),
                                            model=model))
  # train_vae initialises from seed 0 exactly like this (same key, batch).
  init = model.init(jax.random.key(0), jnp.asarray(data[:32]),
                    jax.random.key(0))
  params = vae_lib.train_vae(data, model=model, steps=150, batch_size=32,
                             learning_rate=3e-3, seed=0)
  (before, _), (after, aux) = loss(init), loss(params)
  assert float(after) < 0.5 * float(before)
  # Reconstructions explain most of the pixel variance (0.17 here).
  assert float(aux['mse']) < 0.5 * float(np.mean(np.var(data, axis=0)))


def test_mlp_vae_trains_and_reconstructs(caplog):
  data = _ring()
  model = vae_lib.MLPVAE(data_dim=2, latent_dim=8)
  x = jnp.asarray(data[:500])
  rng = jax.random.key(5)
  init = model.init(jax.random.key(0), x, rng)
  loss = jax.jit(lambda p: vae_lib.vae_loss(p, x, rng, model=model)[0])
  with jax.log_compiles(True):
    params = vae_lib.train_vae(data, model=model, steps=400, batch_size=128,
                               learning_rate=3e-3, seed=0)
  # One program for every step: the first step's arguments are committed to
  # the device like the later ones' (a second compile cost each POT-GAN run
  # 1-2 s on CPU before 2026-12-05).
  compiles = [r for r in caplog.records
              if r.getMessage().startswith("Compiling jit(step_fn)")]
  assert len(compiles) == 1, [r.getMessage()[-200:] for r in compiles]
  assert float(loss(params)) < 0.2 * float(loss(init))
  # Decoding the posterior mean reconstructs well below the data variance
  # (0.5 per coordinate).
  mean = vae_lib.encode_mean(params, x, model=model)
  recon = model.apply(params, mean, method=model.decode)
  assert float(jnp.mean(jnp.square(recon - x))) < 0.02


def test_vae_loss_is_the_negative_elbo():
  model = vae_lib.MLPVAE(data_dim=3, latent_dim=4, hidden=(8,))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
  rng = jax.random.key(1)
  params = model.init(jax.random.key(0), x, rng)
  loss, aux = vae_lib.vae_loss(params, x, rng, model=model, beta=0.5,
                               obs_std=0.2)
  recon, mean, logvar = model.apply(params, x, rng)
  r = np.sum(np.square(np.asarray(recon - x)), 1) / (2 * 0.2**2)
  kl = 0.5 * np.sum(np.exp(logvar) + np.square(mean) - 1 - logvar, 1)
  np.testing.assert_allclose(loss, np.mean(r + 0.5 * kl), rtol=1e-5)
  np.testing.assert_allclose(aux['kl'], np.mean(kl), rtol=1e-5)


def test_encoder_save_load_roundtrip_and_hash_check(tmp_path):
  model = vae_lib.MLPVAE(data_dim=3, latent_dim=4, hidden=(16, 8))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)), jnp.float32)
  params = model.init(jax.random.key(0), x, jax.random.key(1))
  path = tmp_path / 'encoder.npz'
  meta = {'vae': vae_lib.vae_config(model), 'data': 'gaussian'}
  digest = vae_lib.save_encoder(path, params, meta)
  assert (tmp_path / 'encoder.npz.sha256').read_text().split()[0] == digest

  loaded, loaded_meta = vae_lib.load_encoder(path)
  assert loaded_meta == meta
  assert set(loaded['params']) == {'encoder'}  # the decoder is dropped
  rebuilt = vae_lib.vae_from_config(loaded_meta['vae'])
  assert rebuilt == model
  np.testing.assert_allclose(
      vae_lib.encode_mean(loaded, x, model=rebuilt),
      vae_lib.encode_mean(params, x, model=model), rtol=1e-6)
  vae_lib.load_encoder(path, sha256=digest)

  with pytest.raises(vae_lib.EncoderFileError, match='sha256'):
    vae_lib.load_encoder(path, sha256='0' * 64)
  with open(path, 'ab') as f:
    f.write(b'tampered')
  with pytest.raises(vae_lib.EncoderFileError, match='altered'):
    vae_lib.load_encoder(path)
  assert issubclass(vae_lib.EncoderFileError, ValueError)
  (tmp_path / 'encoder.npz.sha256').unlink()
  with pytest.raises(vae_lib.EncoderFileError, match='cannot verify'):
    vae_lib.load_encoder(path)
  with pytest.raises(vae_lib.EncoderFileError, match='not found'):
    vae_lib.load_encoder(tmp_path / 'missing.npz')
  # The same encoder gives the same bytes (and sha256).
  assert vae_lib.save_encoder(tmp_path / 'again.npz', params, meta) == (
      vae_lib.save_encoder(path, params, meta))
  assert vae_lib.load_encoder(path)[1] == meta

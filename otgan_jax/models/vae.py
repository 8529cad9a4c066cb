"""The VAE whose frozen encoder Q gives POT-GAN its latent space.

POT-GAN (Avraham et al., 2019, sec. 5 and Algorithm 2) pretrains a VAE
(Kingma & Welling), discards the decoder and compares real and generated
samples in the encoder's 128-d latent space. The paper defers the VAE's
architecture to its supplement, which we do not have; ours:

* `ConvVAE` (28x28x1 and 32x32xC images, any size divisible by
  `2**len(widths)`): encoder = `len(widths)` 4x4 stride-2 convolutions
  (64, 128 channels by default; 28 -> 14 -> 7, 32 -> 16 -> 8) with leaky ReLU
  (0.2), flatten, a dense layer of `hidden` = 512 units, then two dense heads
  for the posterior mean and log-variance. Decoder = the mirror image: dense
  512, dense to the smallest feature map, 4x4 stride-2 transposed
  convolutions with ReLU, and a linear 3x3 convolution to the image channels.
  No normalisation layers, so the encoder is a pure function of its input.
* `MLPVAE` (vectors, the 2-D ring and 3-D ball): two hidden ReLU layers of
  128 units in both encoder and decoder.

Likelihood: Gaussian with a FIXED standard deviation `obs_std` per data entry
(default 0.1 in data units, [-1, 1] for images), so the reconstruction term is
`sum (x - decode(z))**2 / (2 obs_std**2)` (+ a constant we drop); the decoder
output is the mean, linear. A smaller `obs_std` weighs reconstruction over the
KL term (like beta < 1), which keeps more latent dimensions informative: what
POT-GAN needs from Q. The loss is the negative ELBO per example, `recon + beta
* KL(q(z|x) || N(0, I))`, averaged over the batch.

The frozen encoder Q used by POT-GAN is the posterior MEAN (`encode_mean`):
deterministic, so the regulariser has no sampling noise. `save_encoder` /
`load_encoder` store only the encoder's parameters as a `.npz` with a
`.sha256` sidecar; `vae_config` / `vae_from_config` put the architecture into
the file's metadata so the module can be rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Sequence

from absl import logging
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from otgan_jax import hashed_npz
from otgan_jax import metric_writers
from otgan_jax.models import transposed

Array = jax.Array
Params = Any

_META_KEY = '__meta__'
_ENCODER = 'encoder'


class EncoderFileError(hashed_npz.HashedNpzError):
  """An encoder file is missing, unverifiable, altered or malformed."""


class _ConvEncoder(nn.Module):
  """[n, H, W, C] -> ([n, latent], [n, latent]) posterior mean and log-var."""
  latent_dim: int
  widths: Sequence[int]
  hidden: int

  @nn.compact
  def __call__(self, x: Array) -> tuple[Array, Array]:
    h = x
    for i, width in enumerate(self.widths):
      h = nn.Conv(int(width), (4, 4), strides=(2, 2), name=f'conv_{i}')(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)
    h = nn.leaky_relu(nn.Dense(self.hidden, name='dense')(h), 0.2)
    return (nn.Dense(self.latent_dim, name='mean')(h),
            nn.Dense(self.latent_dim, name='logvar')(h))


class _ConvDecoder(nn.Module):
  """[n, latent] -> [n, H, W, C] likelihood mean."""
  image_shape: Sequence[int]
  widths: Sequence[int]
  hidden: int

  @nn.compact
  def __call__(self, z: Array) -> Array:
    height, width, channels = self.image_shape
    factor = 2**len(self.widths)
    base = (height // factor, width // factor, int(self.widths[-1]))
    h = nn.relu(nn.Dense(self.hidden, name='dense')(z))
    h = nn.relu(nn.Dense(int(np.prod(base)), name='dense_map')(h))
    h = h.reshape((z.shape[0],) + base)
    for i, w in enumerate(tuple(self.widths[:-1])[::-1]):
      h = nn.relu(transposed.ConvTranspose(int(w), (4, 4), strides=(2, 2),
                                   name=f'deconv_{i}')(h))
    h = nn.relu(transposed.ConvTranspose(int(self.widths[0]), (4, 4), strides=(2, 2),
                                 name='deconv_out')(h))
    return nn.Conv(channels, (3, 3), name='conv_out')(h)


class _MLP(nn.Module):
  """ReLU MLP with `heads` linear outputs of size `out_dim`."""
  hidden: Sequence[int]
  out_dim: int
  heads: int

  @nn.compact
  def __call__(self, x: Array) -> Any:
    h = x
    for i, width in enumerate(self.hidden):
      h = nn.relu(nn.Dense(int(width), name=f'dense_{i}')(h))
    outs = tuple(nn.Dense(self.out_dim, name=f'out_{k}')(h)
                 for k in range(self.heads))
    return outs if self.heads > 1 else outs[0]


class _VAEMethods:
  """encode / decode / __call__ shared by both VAEs (mixin)."""

  def encode(self, x: Array) -> tuple[Array, Array]:
    """[n, *data_shape] -> (mean [n, latent_dim], logvar [n, latent_dim])."""
    return self.encoder(x)

  def decode(self, z: Array) -> Array:
    """[n, latent_dim] -> [n, *data_shape] mean of p(x | z)."""
    return self.decoder(z)

  def __call__(self, x: Array, rng: Array) -> tuple[Array, Array, Array]:
    """Reconstructs x through one posterior sample.

    Args:
      x: [n, *data_shape] data, normalised.
      rng: PRNG key for z ~ q(z | x).

    Returns:
      (reconstruction mean [n, *data_shape], mean, logvar [n, latent_dim]).
    """
    mean, logvar = self.encode(x)
    eps = jax.random.normal(rng, mean.shape, mean.dtype)
    return self.decode(mean + jnp.exp(0.5 * logvar) * eps), mean, logvar


class ConvVAE(_VAEMethods, nn.Module):
  """Convolutional VAE for [n, H, W, C] images (see module docstring).

  Attributes:
    image_shape: (H, W, C); H and W divisible by 2**len(widths).
    latent_dim: dimension of the Gaussian latent.
    widths: channels of the stride-2 convolutions (decoder mirrors them).
    hidden: width of the dense layer next to the latent.
  """
  image_shape: Sequence[int] = (32, 32, 3)
  latent_dim: int = 128
  widths: Sequence[int] = (64, 128)
  hidden: int = 512

  def setup(self):
    height, width, _ = self.image_shape
    factor = 2**len(self.widths)
    if height % factor or width % factor:
      raise ValueError(f'ConvVAE with {len(self.widths)} stride-2 layers '
                       f'needs H, W divisible by {factor}; got '
                       f'{tuple(self.image_shape)}.')
    self.encoder = _ConvEncoder(self.latent_dim, tuple(self.widths),
                                self.hidden)
    self.decoder = _ConvDecoder(tuple(self.image_shape), tuple(self.widths),
                                self.hidden)


class MLPVAE(_VAEMethods, nn.Module):
  """MLP VAE for [n, data_dim] vectors (see module docstring).

  Attributes:
    data_dim: dimension of the data vectors.
    latent_dim: dimension of the Gaussian latent.
    hidden: widths of the hidden ReLU layers (decoder uses them reversed).
  """
  data_dim: int = 2
  latent_dim: int = 128
  hidden: Sequence[int] = (128, 128)

  def setup(self):
    self.encoder = _MLP(tuple(self.hidden), self.latent_dim, heads=2)
    self.decoder = _MLP(tuple(self.hidden)[::-1], self.data_dim, heads=1)


def vae_loss(params: Params, x: Array, rng: Array, *, model: nn.Module,
             beta: float = 1.0, obs_std: float = 0.1
             ) -> tuple[Array, dict[str, Array]]:
  """Negative ELBO with a fixed-variance Gaussian likelihood, batch mean.

  Args:
    params: the VAE's variables.
    x: [n, *data_shape] data normalised to [-1, 1].
    rng: PRNG key for the reparameterised posterior sample.
    model: a ConvVAE or MLPVAE.
    beta: weight of the KL term (1 = the ELBO).
    obs_std: the likelihood's fixed standard deviation (data units).

  Returns:
    (loss, aux): scalar `recon + beta * kl` per example averaged over the
    batch; aux with `recon`, `kl` (per example, batch means) and `mse` (per
    entry).
  """
  recon_x, mean, logvar = model.apply(params, x, rng)
  sq = jnp.square(recon_x - x).reshape(x.shape[0], -1)
  recon = jnp.sum(sq, axis=1) / (2.0 * obs_std**2)
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar,
                     axis=1)
  loss = jnp.mean(recon + beta * kl)
  return loss, {'recon': jnp.mean(recon), 'kl': jnp.mean(kl),
                'mse': jnp.mean(sq)}


def encode_mean(params: Params, x: Array, *, model: nn.Module) -> Array:
  """POT-GAN's frozen encoder Q: the posterior mean, [n, ...] -> [n, latent].

  Works with full VAE variables or with `load_encoder`'s encoder-only ones.
  """
  return model.apply(params, x, method=lambda m, v: m.encode(v)[0])


def train_vae(data: np.ndarray | Array, *, model: nn.Module, steps: int,
              batch_size: int, learning_rate: float, seed: int,
              beta: float = 1.0, obs_std: float = 0.1,
              log_every: int = 500) -> Params:
  """Trains a VAE with Adam on uniformly drawn minibatches.

  The data set lives on one device; each jitted step draws its batch indices
  from `fold_in(key(seed), step)`, so a run is reproducible.

  Args:
    data: [N, *data_shape] float data normalised to [-1, 1].
    model: a ConvVAE or MLPVAE matching the data shape.
    steps: number of Adam steps.
    batch_size: examples per step (drawn with replacement).
    learning_rate: Adam's learning rate.
    seed: seed of initialisation, batches and posterior samples.
    beta: KL weight (see `vae_loss`).
    obs_std: likelihood std (see `vae_loss`).
    log_every: log the loss terms every this many steps (and the last).

  Returns:
    The trained VAE variables.
  """
  # One of this process's devices: on several hosts only process 0 trains.
  device = jax.local_devices()[0]
  data = jax.device_put(jnp.asarray(data, jnp.float32), device)
  rng = jax.random.key(seed)
  params = jax.jit(model.init)(rng, data[:batch_size], rng)
  tx = optax.adam(learning_rate)
  # Committed to the data's device, like the step's outputs: the first step
  # would otherwise see uncommitted arguments and compile a second program.
  params, opt_state = jax.device_put((params, tx.init(params)), device)

  # The data set is an argument, not a closed-over constant baked into the
  # compiled program.
  @jax.jit
  def step_fn(params, opt_state, data, step):
    idx_rng, z_rng = jax.random.split(jax.random.fold_in(rng, step))
    idx = jax.random.randint(idx_rng, (batch_size,), 0, data.shape[0])
    (_, aux), grads = jax.value_and_grad(vae_loss, has_aux=True)(
        params, data[idx], z_rng, model=model, beta=beta, obs_std=obs_std)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, aux

  progress = metric_writers.Progress(steps, 0)
  for step in range(steps):
    params, opt_state, aux = step_fn(params, opt_state, data, step)
    if (step + 1) % log_every == 0 or step + 1 == steps:
      aux = jax.device_get(aux)
      if not all(np.isfinite(v) for v in aux.values()):
        raise FloatingPointError(f'VAE loss not finite at step {step}: {aux}')
      rate, eta = progress.update(step + 1)
      logging.info('vae step %d/%d | %.1f steps/s | ETA %s | recon %.4f kl '
                   '%.4f mse %.5f', step + 1, steps, rate,
                   metric_writers.format_duration(eta), aux['recon'],
                   aux['kl'], aux['mse'])
  return params


def vae_config(model: nn.Module) -> dict[str, Any]:
  """JSON-able description of a ConvVAE / MLPVAE (for encoder metadata)."""
  fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)
            if f.name not in ('parent', 'name')}
  fields = {k: list(v) if isinstance(v, (tuple, list)) else v
            for k, v in fields.items()}
  return {'class': type(model).__name__, **fields}


def vae_from_config(config: dict[str, Any]) -> nn.Module:
  """Inverse of `vae_config`."""
  config = dict(config)
  classes = {'ConvVAE': ConvVAE, 'MLPVAE': MLPVAE}
  name = config.pop('class', None)
  if name not in classes:
    raise ValueError(f'Unknown VAE class {name!r}; expected {list(classes)}.')
  return classes[name](**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in config.items()})


def save_encoder(path: str | pathlib.Path, params: Params,
                 meta: dict[str, Any]) -> str:
  """Writes the encoder's parameters to `path` (.npz) and `<path>.sha256`.

  Written by `hashed_npz.save`: byte-reproducible, and both files are moved
  into place only once complete.

  Args:
    path: output file.
    params: full VAE variables (only the encoder subtree is kept) or
      encoder-only variables.
    meta: JSON-serialisable metadata (e.g. `{'vae': vae_config(model),
      'data': ..., 'steps': ...}`), stored in the file.

  Returns:
    The file's sha256 hex digest (also written to the sidecar).
  """
  params = jax.device_get(params)
  if _ENCODER in params.get('params', {}):
    params = {'params': {_ENCODER: params['params'][_ENCODER]}}
  flat = traverse_util.flatten_dict(params, sep='/')
  arrays = {k: np.asarray(v, np.float32) for k, v in flat.items()}
  arrays[_META_KEY] = np.array(json.dumps(meta, sort_keys=True))
  return hashed_npz.save(path, arrays)


def load_encoder(path: str | pathlib.Path, *, sha256: str | None = None
                 ) -> tuple[Params, dict[str, Any]]:
  """Reads `save_encoder`'s file after checking its sha256.

  Args:
    path: the .npz file.
    sha256: expected hex digest; None reads it from `<path>.sha256`.

  Returns:
    (encoder variables `{'params': {'encoder': ...}}`, metadata dict). Use
    with `encode_mean(params, x, model=vae_from_config(meta['vae']))`.

  Raises:
    EncoderFileError: the file is missing, no digest is given or found, the
      digest differs, or the file is not a readable encoder archive.
  """
  flat = hashed_npz.load(path, sha256, error=EncoderFileError,
                         what='Encoder file', hint='Retrain or restore it.')
  if _META_KEY not in flat:
    raise EncoderFileError(f'{path} has no {_META_KEY} entry.')
  meta = json.loads(str(flat.pop(_META_KEY)))
  params = traverse_util.unflatten_dict(
      {k: jnp.asarray(v) for k, v in flat.items()}, sep='/')
  return params, meta

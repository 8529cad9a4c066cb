"""POT-GAN (Avraham et al., CVPR 2019): WGAN-GP plus an OT regulariser.

WGAN-GP (`methods.adversarial`) whose generator also minimises
`lambda_POT * sum_i ||z_r,sigma(i) - F(z_g,i)||^2` in the latent space of a
frozen, pretrained VAE encoder Q, with the latent transformation forest F and
the assignment sigma refitted by Algorithm 1 before each generator update
(`losses.potgan.fit_forest`). F's parameters are trained state
(`state.extra["forest"]`, checkpointed); the encoder is a constant (see
`methods.base`): pretrained once into `<workdir>/vae_encoder.npz` (with its
sha256 sidecar) by process 0, or given by `potgan.encoder_path`, and loaded
hash-checked at every start.
"""

from __future__ import annotations

import os
import tempfile

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from otgan_jax import config_checks
from otgan_jax import data as data_lib
from otgan_jax import methods
from otgan_jax.losses import potgan as potgan_losses
from otgan_jax.methods import adversarial
from otgan_jax.models import forest as forest_lib
from otgan_jax.models import vae as vae_lib


@methods.register
class POTGAN(adversarial.WGANGP):
  """WGAN-GP + the POT term in a frozen VAE latent space (Algorithm 2)."""

  name = "potgan"

  @classmethod
  def config_sections(cls):
    c = ml_collections.ConfigDict()
    c.encoder_path = ""    # frozen VAE encoder .npz (+ .sha256); "" = pretrain one into workdir/vae_encoder.npz
    c.latent_dim = 128     # the VAE's latent dimension (the paper: 128)
    c.vae_steps = 5000     # VAE pretraining (when no encoder_path)
    c.vae_batch_size = 128
    c.vae_learning_rate = 1e-3
    c.vae_examples = 60_000  # training examples the VAE sees (capped at the data set)
    c.weight = 0.01        # lambda_POT, multiplying the SUM over the batch and latent dims
    c.forest_trees = 16    # latent transformation forest F (sizes unstated in the paper)
    c.forest_depth = 4
    c.forest_steps = 10    # Algorithm 1 iterations (assignment, Adam step on F) per generator update
    c.forest_learning_rate = 0.01
    c.assignment = "covering"  # covering (each real latent to its nearest F(z_g): the paper's
                               # Algorithm 1) | nearest (each F(z_g) to its nearest real) | hungarian
    return dict(super().config_sections(), potgan=c)

  def check_config(self):
    super().check_config()
    c = self.config.potgan
    if c.assignment not in potgan_losses.ASSIGNMENTS:
      raise ValueError(f"config.potgan.assignment must be one of "
                       f"{potgan_losses.ASSIGNMENTS}, got {c.assignment!r}.")
    # Sizes below 1 crash in the networks or make the forest's output 0/0;
    # step counts of 0 are ablations (an untrained encoder or forest).
    for key, low in (("latent_dim", 1), ("forest_trees", 1),
                     ("forest_depth", 1), ("vae_batch_size", 1),
                     ("vae_examples", 1), ("vae_steps", 0),
                     ("forest_steps", 0)):
      config_checks.at_least(self.config, f"potgan.{key}", low)
    for key in ("weight", "vae_learning_rate", "forest_learning_rate"):
      config_checks.finite_at_least_zero(self.config, f"potgan.{key}")

  def build_networks(self):
    c = self.config.potgan
    if self.info.is_image:
      self.encoder = vae_lib.ConvVAE(image_shape=tuple(self.info.shape),
                                     latent_dim=c.latent_dim)
    else:
      self.encoder = vae_lib.MLPVAE(data_dim=int(self.info.shape[0]),
                                    latent_dim=c.latent_dim)
    self.forest = forest_lib.LatentTransformationForest(
        num_trees=c.forest_trees, depth=c.forest_depth, out_dim=c.latent_dim,
        seed=self.config.seed)
    return super().build_networks()

  # -- The frozen encoder ----------------------------------------------------

  def _encoder_shapes(self):
    def init(rng):
      x = jnp.zeros((1,) + tuple(self.info.shape))
      params = self.encoder.init(rng, x, rng)
      return {"params": {"encoder": params["params"]["encoder"]}}
    return jax.eval_shape(init, jax.random.key(0))

  def load_encoder(self, path: str):
    """The frozen encoder's parameters, hash-checked and shape-checked."""
    params, _ = vae_lib.load_encoder(path)
    want = self._encoder_shapes()
    got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                       params)
    if jax.tree.structure(want) != jax.tree.structure(got) or any(
        a.shape != b.shape for a, b in zip(jax.tree.leaves(want),
                                           jax.tree.leaves(got))):
      raise ValueError(
          f"The encoder in {path} does not match this config's VAE "
          f"(config.potgan.latent_dim={self.config.potgan.latent_dim}, data "
          f"{self.info.shape}); pass a matching --config.potgan.encoder_path "
          "or leave it empty to train one.")
    return params

  def train_encoder(self, source, path: str) -> None:
    """Pretrains the VAE on the training data; writes its encoder to `path`."""
    c = self.config.potgan
    num = getattr(source, "num_examples", None) or c.vae_examples
    x = data_lib.normalize(source.sample(0, min(num, c.vae_examples))["x"],
                           self.info)
    logging.info("POT-GAN: training the VAE (%d steps on %d examples) ...",
                 c.vae_steps, len(x))
    params = vae_lib.train_vae(
        np.asarray(x, np.float32), model=self.encoder, steps=c.vae_steps,
        batch_size=c.vae_batch_size, learning_rate=c.vae_learning_rate,
        seed=self.config.seed)
    # Written beside, then moved into place (the .npz last): an interrupted
    # save never leaves a file that looks complete.
    tmp_dir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)))
    tmp = os.path.join(tmp_dir, os.path.basename(path))
    vae_lib.save_encoder(tmp, params, {
        "vae": vae_lib.vae_config(self.encoder), "data": self.info.name,
        "steps": c.vae_steps})
    os.replace(tmp + ".sha256", path + ".sha256")
    os.replace(tmp, path)
    os.rmdir(tmp_dir)
    logging.info("POT-GAN: encoder saved to %s", path)

  def prepare(self, source, workdir, *, fresh):
    """The encoder: given, or pretrained here by process 0 on a fresh run."""
    given = self.config.potgan.encoder_path
    path = given or os.path.join(workdir, "vae_encoder.npz")
    if not given:
      if jax.process_index() == 0 and not os.path.exists(path):
        if not fresh:
          raise ValueError(
              f"This run's VAE encoder {path} (and its .sha256) is missing; "
              "it was trained when the run began and its checkpoints depend "
              "on it. Put it back, or pass --config.potgan.encoder_path, or "
              "start a new --workdir.")
        self.train_encoder(source, path)
      # The other processes wait until process 0 has written it.
      self.barrier("potgan_encoder_written")
    return {"encoder": self.load_encoder(path)}

  # -- State and step --------------------------------------------------------

  def init_state(self, rng, real, labels):
    state = super().init_state(rng, real, labels)
    latent = jnp.zeros((1, self.config.potgan.latent_dim))
    forest = self.forest.init(jax.random.fold_in(rng, 7), latent)
    return state.replace(extra={"forest": forest})

  def generator_term(self, state, real, fake, constants):
    """Refits F and sigma (Algorithm 1); the weighted POT term on `fake`.

    Returns:
      The new `extra` (F updated), `(value, d value / d fake)` of
      `weight * regulariser` with F, sigma and the real latents held
      constant, and metrics.
    """
    c = self.config.potgan
    encoder_params = constants["encoder"]

    def encode(x):
      return vae_lib.encode_mean(encoder_params, x, model=self.encoder)

    z_r = jax.lax.stop_gradient(encode(real))
    # The encoder also runs once on the generated batch: F is fitted on its
    # (stopped) output, and the regulariser's gradient is pulled back
    # through it.
    z_g, encoder_pullback = jax.vjp(encode, fake)
    forest_params, sigma, aux = potgan_losses.fit_forest(
        state.extra["forest"], z_r, jax.lax.stop_gradient(z_g),
        forest=self.forest, steps=c.forest_steps,
        learning_rate=c.forest_learning_rate, assignment=c.assignment)

    def regulariser(z_g):
      f_zg = self.forest.apply(forest_params, z_g)
      pairs = potgan_losses.assigned_pairs(z_r, f_zg, sigma,
                                           assignment=c.assignment)
      return c.weight * potgan_losses.pot_regulariser(*pairs)

    value, d_z_g = jax.value_and_grad(regulariser)(z_g)
    d_fake, = encoder_pullback(d_z_g)
    metrics = {"pot/matching_cost": aux["cost_final"],
               "pot/unique_fraction": aux["unique_fraction"]}
    return dict(state.extra, forest=forest_params), (value, d_fake), metrics

  def nonfinite_advice(self):
    return ("Consider lower learning rates (--config.optim.critic."
            "learning_rate, --config.optim.generator.learning_rate), a "
            "smaller --config.potgan.weight or --config.potgan."
            "forest_learning_rate.")

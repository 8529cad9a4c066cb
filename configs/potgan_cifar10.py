r"""POT-GAN and its WGAN-GP baseline on CIFAR-10 (POT-GAN's CIFAR-10 row).

  python -m launch.train --config=configs/potgan_cifar10.py \
      --config.data.data_dir=/path/to/cifar-10-batches-bin
  python -m launch.train --config=configs/potgan_cifar10.py:wgangp ...

The paper's WGAN-GP settings: batch 64, Adam 2e-4, betas (0.5, 0.9), 5
critic updates per generator update, lambda 10. The networks are this
library's conv family (weight-normalised GLU generator, CReLU critic with a
scalar head), not the paper's (unstated beyond "He init"). POT-GAN adds
`0.01 * sum_i ||z_r,sigma(i) - F(z_g,i)||^2` in the latent space of a 128-d
conv VAE pretrained on the training images (20,000 steps, saved to
<workdir>/vae_encoder.npz), with a 16-tree, depth-4 forest and 10 steps of
Algorithm 1 per generator update. Published: IS 6.87 / FID 32.5 (POT-GAN),
6.58 / 34.4 (WGAN-GP). The Inception Score needs pytorch-fid's weights file:
add --config.evals.inception_weights=/path/pt_inception-2015-12-05-6726825d.pth
(without it, set --config.evals.metrics=fid; the run says so at the start).
Days on one GPU; not yet run. `,smoke` (alone: `:smoke`): the same code path
in well under a minute on a CPU (tiny networks, a 5-step VAE on batches
of 16, exact W1).
"""

from configs import common


def get_config(arg=None):
  parts = [p for p in (arg or "").split(",") if p]
  smoke = "smoke" in parts
  parts = [p for p in parts if p != "smoke"] or ["potgan"]
  method = parts[0]
  if len(parts) > 1 or method not in ("potgan", "wgangp"):
    raise ValueError(f"Unknown variant {arg!r}: potgan | wgangp, optionally "
                     "',smoke'; or smoke.")
  c = common.get_config()
  c.name = f"{method}_cifar10"
  common.set_baseline(c, "wgangp", learning_rate=2e-4)
  c.method = method
  c.data.name = "cifar10"
  c.data.source = "files"
  c.total_steps = 100_000
  c.batch_size = 64
  c.log_every_steps = 100
  c.sample_every_steps = 2000
  c.num_samples = 100
  c.model.generator.widths = (512, 256, 128, 64)
  c.model.critic.widths = (64, 128, 256, 512)
  c.potgan.latent_dim = 128
  c.potgan.vae_steps = 20_000
  c.potgan.vae_examples = 50_000
  c.evals.metrics = "is,fid"
  c.evals.every_steps = 20_000
  c.ckpt.every_steps = 2000
  if smoke:  # The same code path on a CPU in well under a minute.
    common.cifar10_smoke(c)
    c.potgan.vae_steps = 5
    c.potgan.vae_examples = 500
    c.potgan.vae_batch_size = 16  # 5 steps at 128 took 33 s of the test's 72
  return c

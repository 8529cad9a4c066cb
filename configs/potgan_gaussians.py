r"""POT-GAN on the 8-Gaussian ring (POT-GAN's toy table, beside WGAN-GP).

  python -m launch.train --config=configs/potgan_gaussians.py

WGAN-GP exactly as configs/baselines_gaussians.py:wgangp (same networks,
Adam 1e-3, betas (0.5, 0.9), 5 critic updates, lambda 10), plus POT-GAN's
generator regulariser `0.01 * sum_i ||z_r,sigma(i) - F(z_g,i)||^2` in the
latent space of a VAE pretrained on the ring first (an MLP VAE with an
8-d latent, 2,000 steps, saved to <workdir>/vae_encoder.npz and reused on
resume; the paper's VAE is 128-d and unspecified for the toy data), with a
16-tree, depth-4 latent transformation forest refitted by 10 steps of
Algorithm 1 before every generator update, "covering" assignment (each real
latent to its nearest transformed generated one). Evaluated every 1000 steps
(modes, reverse KL, exact W1). A few minutes on 2 CPU cores.
"""

from configs import baselines_gaussians


def get_config(arg=None):
  assignment = arg or "covering"
  c = baselines_gaussians.get_config("wgangp")
  c.name = "potgan_gaussians"
  c.method = "potgan"
  if assignment not in ("covering", "nearest", "hungarian"):
    raise ValueError(f"Unknown variant {arg!r}: covering | nearest | "
                     "hungarian (the assignment of Algorithm 1).")
  if assignment != "covering":
    c.name = f"potgan_gaussians_{assignment}"
  c.potgan.assignment = assignment
  c.potgan.latent_dim = 8
  c.potgan.vae_steps = 2000
  c.potgan.vae_examples = 10_000
  return c

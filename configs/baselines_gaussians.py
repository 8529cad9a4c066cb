r"""The adversarial baselines on the 8-Gaussian ring (POT-GAN's toy table).

  python -m launch.train --config=configs/baselines_gaussians.py:wgangp
  python -m launch.train --config=configs/baselines_gaussians.py:gan
  python -m launch.train --config=configs/baselines_gaussians.py:wgan

Ring of radius 2, std 0.2 (as configs/otgan_gaussians.py; POT-GAN does not
state its ring), 2-D uniform latents. Networks: ReLU MLPs (generator
256-256-256-2, critic 256-256-256-1). Measured on 2 CPU cores (40-70
steps/s; 4000 steps take a few minutes; bench/RESULTS.md):
  wgangp  WGAN-GP as in Gulrajani et al.'s toy code and POT-GAN (betas
          (0.5, 0.9), 5 critic updates, lambda 10) but Adam 1e-3 instead
          of 1e-4 (with 1e-4, 10k steps covered only 4 modes): 8 modes at
          step 2000, W1 0.15, reverse KL 0.42; then it oscillates (W1
          0.34-0.39 at 4000-6000). At this rate the game is chaotic: seed
          0 on another CPU (2026-12-05) never settled in 2500 steps (W1
          0.78 at best), seeds 1-3 there did by step 1100 (0.22-0.44).
  gan     the non-saturating DCGAN loss, one update each, Adam 2e-4, betas
          (0.5, 0.999): 8 modes, W1 0.31 at step 4000.
  wgan    weight clipping at 0.01, 5 critic updates, RMSProp 5e-5 as
          the paper (PyTorch's defaults: decay 0.99, no momentum). The
          8 modes / W1 0.31 at step 4000 in bench/RESULTS.md were
          measured with Adam 5e-5 (beta1 0.5), before the switch.
The run evaluates every 1000 steps: modes covered, the high-quality share,
the Parzen reverse KL (bandwidth 0.1) and exact W1 on 2,500 samples, in
<workdir>/eval; `python -m launch.tables --select=best` puts the best of
them beside POT-GAN's numbers.
"""

from configs import common


def get_config(arg=None):
  method = arg or "wgangp"
  if method not in ("gan", "wgan", "wgangp"):
    raise ValueError(f"Unknown variant {method!r}: gan | wgan | wgangp.")
  c = common.get_config()
  c.name = f"{method}_gaussians"
  c.total_steps = 4000
  c.batch_size = 256
  c.log_every_steps = 500
  c.sample_every_steps = 2500
  c.num_samples = 2500
  c.data.name = "gaussians"
  c.data.source = "embedded"
  c.model.name = "toy_mlp"
  c.model.z_dim = 2
  c.model.generator.hidden = (256, 256, 256)
  c.model.critic.hidden = (256, 256, 256)
  c.optim.ema_decay = 0.0
  common.set_baseline(c, method,
                      learning_rate=1e-3 if method == "wgangp" else None)
  c.evals.metrics = "modes,reverse_kl,w1"
  c.evals.every_steps = 1000
  c.evals.num_samples = 2500
  c.evals.num_reference = 2500
  c.ckpt.every_steps = 1000
  return c

r"""OT-GAN on the 8-Gaussian ring, the consistency test of section 5.1.

  python -m launch.train --config=configs/otgan_gaussians.py
  python -m launch.sample --workdir=runs/otgan_gaussians --num=2500 \
      --out=runs/otgan_gaussians/samples.npz

The critic is frozen at 15k of 40k iterations; the generator must keep all 8
modes afterwards (the scatter plots in runs/otgan_gaussians/samples/). Settings
from the paper and METHODS.md: 8 modes on a circle of radius 2, std 0.2;
generator MLP 256-128-128-128-2, critic feature MLP 2-32-32-32-16; cost = half
the mean squared Euclidean distance in critic space, epsilon 0.02 (lambda 50),
10 Sinkhorn iterations; batches of 256 (X, X', Y, Y': 512 real + 512 generated);
Adam critic 2e-5, generator 1e-4, beta1 0.5; one critic and one generator
update per step.
"""

from configs import common


def get_config(arg=None):
  del arg
  c = common.get_config()
  c.name = "otgan_gaussians"
  c.total_steps = 40_000
  c.batch_size = 256
  c.log_every_steps = 500
  c.sample_every_steps = 2500
  c.num_samples = 2500
  c.data.name = "gaussians"
  c.data.source = "embedded"
  c.model.name = "toy_mlp"
  c.model.z_dim = 2
  c.model.init_batch_size = 256
  c.otgan.n_gen = 1
  c.optim.ema_decay = 0.0   # the paper shows the raw generator
  c.otgan.freeze_critic_at_step = 15_000
  c.optim.critic.learning_rate = 2e-5
  c.optim.generator.learning_rate = 1e-4
  c.ot.cost = "sqeuclidean"
  c.ot.epsilon = 0.02
  c.ot.num_iterations = 10
  c.ckpt.every_steps = 5000
  return c

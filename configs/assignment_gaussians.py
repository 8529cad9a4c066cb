r"""The assignment method (paper 004) on the 8-Gaussian ring: a CPU demo.

  python -m launch.train --config=configs/assignment_gaussians.py

500 real points from the ring (radius 2, std 0.2). Every step: 10 assigner
updates, each assigning 5,000 fresh generated points (10x the reals) exactly
to all reals under the squared Euclidean cost plus psi and moving psi towards
equal shares; then 10 generator updates of 48 (z, assigned real) pairs. Adam
with betas (0.5, 0.9) for both networks, as the official code (assigner lr
1e-3, generator 1e-4). With one assigner update and a full pass of 100
generator updates per step (the official schedule at this scale) the generator
collapsed onto a few reals before psi could balance them. Measured on 2 CPU
cores (about 1 minute): at step 600, 8/8 modes, high-quality share 0.95,
exact W1 0.082, assignment variance 5.1 (random-assignment level 2.5).
"""

from configs import common


def get_config(arg=None):
  del arg
  c = common.get_config()
  c.name = "assignment_gaussians"
  c.method = "assignment"
  c.total_steps = 600
  c.batch_size = 48
  c.log_every_steps = 25
  c.sample_every_steps = 100
  c.num_samples = 2500
  c.data.name = "gaussians"
  c.data.source = "embedded"
  c.data.gaussians.num_examples = 500
  c.model.name = "toy_mlp"
  c.model.z_dim = 2
  c.model.generator.hidden = (256, 256, 256)
  c.model.init_batch_size = 256
  c.optim.ema_decay = 0.0
  for net in ("generator", "critic"):
    c.optim[net].b1 = 0.5
    c.optim[net].b2 = 0.9
  c.optim.critic.learning_rate = 1e-3
  c.optim.generator.learning_rate = 1e-4
  c.assignment.num_reals = 500
  c.assignment.count_samples = 5000
  c.assignment.assigner_steps = 10
  c.assignment.generator_steps = 10
  c.assignment.chunk_size = 500
  c.assignment.assigner_hidden = (128, 128)
  c.evals.metrics = "modes,reverse_kl,w1,assignment_variance"
  c.evals.every_steps = 200
  c.evals.num_samples = 5000
  c.evals.num_reference = 500
  c.ckpt.every_steps = 100
  return c

r"""OT-GAN on the 1,797 8x8 digits that scikit-learn ships: the default run.

  python -m launch.train                      # = --config=configs/otgan_digits.py

Needs no download. About 6 minutes on 2 CPU cores (2.7-3.1 steps/s measured
2026-12-03 with jax 0.10.2; 5.7 steps/s on 2026-11-23, the same code);
the sample grids in runs/otgan_digits/samples/ show recognisable digits. A
scaled-down version of the paper's CIFAR-10 networks (same layers, fewer
channels, 8x8 output). Cosine cost and epsilon 0.002 (absolute) as in the
paper, but 200 Sinkhorn iterations instead of 500 and batches of 64, for
speed on a CPU.

  python -m launch.train --config=configs/otgan_digits.py:conditional

is conditional OT-GAN (Algorithm 2): both networks see the digit's label, the
loss matches (image, label) pairs, and column j of the sample grid is digit j.
"""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.name = "otgan_digits"
  c.total_steps = 1000
  c.batch_size = 64
  c.log_every_steps = 25
  c.sample_every_steps = 200
  c.num_samples = 100
  c.data.name = "digits"
  c.data.source = "embedded"
  c.model.z_dim = 32
  c.model.init_batch_size = 256
  c.model.generator.base_size = 2
  c.model.generator.widths = (32, 16, 8)
  c.model.critic.widths = (16, 16, 32)
  c.model.critic.strides = (1, 2, 2)
  c.otgan.n_gen = 3
  c.optim.ema_decay = 0.99
  c.ot.num_iterations = 200
  c.ckpt.every_steps = 250
  if arg == "conditional":
    c.name = "otgan_digits_conditional"
    c.model.num_classes = 10
  elif arg is not None:
    raise ValueError(f"Unknown variant {arg!r}: conditional.")
  return c

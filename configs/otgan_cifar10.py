r"""OT-GAN on CIFAR-10 with the paper's settings.

  python -m launch.train --config=configs/otgan_cifar10.py \
      --config.data.data_dir=/path/to/cifar-10-batches-bin

Paper (Salimans et al. 2018) and the official code: X and X' of 4000 real
images, Y and Y' of 4000 generated (batch 8000 on 8 GPUs); 3 generator updates
per critic update; Adam 3e-4, beta1 0.5, beta2 0.999; generator EMA 0.999;
random horizontal flips; cosine cost on 32768-d critic features, Sinkhorn in
the log domain, 500 iterations, epsilon 0.002. Reported inception score 8.47
(still rising) after several days on 8 GPUs. Variants:
  :batch200 / :batch800 / :batch3200  the batch-size study of Figure 3
  :random                             random matching instead of OT (IS 4.64)
"""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.name = "otgan_cifar10"
  c.data.name = "cifar10"
  c.data.source = "files"
  c.data.random_flip = True
  c.total_steps = 100_000
  c.batch_size = 4000
  c.log_every_steps = 10
  c.sample_every_steps = 500
  c.num_samples = 100
  c.ckpt.every_steps = 500
  if arg in ("batch200", "batch800", "batch3200"):
    total = int(arg[len("batch"):])
    c.name = f"otgan_cifar10_{arg}"
    c.batch_size = total // 2
  elif arg == "random":
    c.name = "otgan_cifar10_random"
    c.ot.matching = "random"
  elif arg is not None:
    raise ValueError(f"Unknown variant {arg!r}: batch200 | batch800 | "
                     "batch3200 | random.")
  return c

r"""The adversarial baselines on MNIST / Fashion-MNIST (the assignment paper's
W1 table).

  python -m launch.train --config=configs/baselines_mnist.py:wgangp \
      --config.data.data_dir=/path/to/mnist
  python -m launch.train --config=configs/baselines_mnist.py:gan,fashion \
      --config.data.data_dir=/path/to/fashion_mnist

Variants: `gan | wgan | wgangp`, optionally `,fashion`, or `smoke` (a
minutes-long CPU check). The paper's CIFAR-10 network family at 28x28x1 (as
configs/otgan_mnist.py), the critic ending in one weight-normalised scalar.
WGAN-GP: Adam 1e-4, betas (0.5, 0.9), 5 critic updates, lambda 10; GAN: the
non-saturating DCGAN loss, Adam 2e-4, betas (0.5, 0.999); WGAN: clipping at
0.01, RMSProp 5e-5 (as the paper). Batch 64. Evaluation at the end: exact W1 between 10,000
samples and 5,000 real images (flattened, Euclidean, in the data's [0, 255]
range: divide by 127.5 to compare with the paper's [-1, 1] units) and the
classifier score / Frechet distance of the pinned MNIST classifiers.
"""

from configs import common


def get_config(arg=None):
  parts = (arg or "wgangp").split(",")
  method = parts[0]
  smoke = method == "smoke"
  if smoke:
    method = "wgangp"
  fashion = "fashion" in parts[1:]
  if method not in ("gan", "wgan", "wgangp") or set(parts[1:]) - {"fashion"}:
    raise ValueError(f"Unknown variant {arg!r}: gan | wgan | wgangp, "
                     "optionally ',fashion'; or smoke.")
  data = "fashion_mnist" if fashion else "mnist"
  c = common.get_config()
  c.name = f"{method}_{data}"
  c.data.name = data
  c.data.source = "files"
  c.total_steps = 50_000
  c.batch_size = 64
  c.log_every_steps = 100
  c.sample_every_steps = 1000
  c.num_samples = 100
  c.model.generator.base_size = 7
  c.model.generator.widths = (512, 256, 128)
  c.model.critic.widths = (64, 128, 256)
  c.model.critic.strides = (2, 2, 1)
  common.set_baseline(c, method)
  c.evals.metrics = "w1,classifier_score,classifier_fd"
  c.evals.every_steps = 10_000
  c.evals.num_samples = 10_000
  c.evals.num_reference = 5_000
  c.ckpt.every_steps = 2000
  if smoke:
    c.name = f"{method}_{data}_smoke"
    c.total_steps = 20
    c.log_every_steps = 5
    c.sample_every_steps = 10
    c.model.init_batch_size = 64
    c.model.generator.widths = (64, 32, 16)
    c.model.critic.widths = (16, 32, 64)
    c.evals.every_steps = 20
    c.evals.num_samples = 500
    c.evals.num_reference = 500
    c.ckpt.every_steps = 10
  return c

r"""The adversarial baselines of the assignment paper's W1 table (paper 004).

  python -m launch.train --config=configs/baselines_mnist.py:wgangp \
      --config.data.data_dir=/path/to/mnist
  python -m launch.train --config=configs/baselines_mnist.py:gan,fashion \
      --config.data.data_dir=/path/to/fashion_mnist

Variants: `gan | wgan | wgangp`, optionally `,fashion` and/or `,smoke` (the
same code path on 500 images in well under a minute on a CPU; `smoke` alone
is `wgangp,smoke`). Paper's Table 1 / 2 (W1, MNIST / Fashion-MNIST): GAN
15.80 / 11.03, WGAN 12.59 / 11.19, WGAN-GP 10.69 / 9.15 (assignment square
9.68 / 3.40: configs/assignment_mnist.py).

The same data and metric as configs/assignment_mnist.py, so the five rows
compare:
- Data: the first 5,000 training images in the official files' order
  (`data.num_examples`), resized 28 -> 32 bilinearly and rounded to uint8
  (`data.resize`), in [-1, 1].
- `w1/exact`: exact W1 (POT's network simplex, Euclidean cost on the
  flattened images, uniform weights) between 50,000 generated images (10x)
  and the 5,000 reals, not subsampled. The evaluator sees [0, 255] images:
  divide by 127.5 for the paper's [-1, 1] units (`launch.tables` does).
- `assignment/variance`: eq. 16 with the squared Euclidean closest real, as
  for the assignment configs (the paper used Euclidean for GAN too).
- Optimisers, from each baseline's own paper (paper 004 names only WGAN's
  template, RMSProp 5e-5, m = 64, n_critic = 5): GAN (DCGAN) Adam 2e-4,
  betas (0.5, 0.999), one critic update per generator update; WGAN RMSProp
  5e-5 (PyTorch's: decay 0.99, eps 1e-8), clipping at 0.01, 5 critic
  updates; WGAN-GP Adam 1e-4, betas (0.5, 0.9), lambda 10, 5 critic
  updates. Batch 64.

Unstated in paper 004, our choices: (1) the networks: the DCGAN family at
32x32 (this library's GLU generator: a dense layer to 4x4x512, upsampling
convs to 256@8, 128@16 and 64@32, a conv to 1 channel, tanh; a conv critic 64-128-256 with strides 2, one scalar),
with a 100-d uniform latent; (2) the length: 50,000 generator updates;
(3) the generator's weight EMA (0.999) is what is evaluated. No public code
of these baselines exists for the paper.
"""

from configs import common

IMAGE_SIZE = 32
NUM_REALS = 5000


def get_config(arg=None):
  parts = (arg or "wgangp").split(",")
  if parts[0] == "smoke":
    parts = ["wgangp"] + parts
  method, extra = parts[0], set(parts[1:])
  if method not in ("gan", "wgan", "wgangp") or extra - {"fashion", "smoke"}:
    raise ValueError(f"Unknown variant {arg!r}: gan | wgan | wgangp, "
                     "optionally ',fashion' and/or ',smoke'.")
  data = "fashion_mnist" if "fashion" in extra else "mnist"
  c = common.get_config()
  c.name = f"{method}_{data}"
  c.data.name = data
  c.data.source = "files"
  c.data.num_examples = NUM_REALS
  c.data.resize = IMAGE_SIZE
  c.total_steps = 50_000
  c.batch_size = 64
  c.log_every_steps = 100
  c.sample_every_steps = 1000
  c.num_samples = 100
  c.model.generator.base_size = 4
  c.model.generator.widths = (512, 256, 128, 64)
  c.model.critic.widths = (64, 128, 256)
  c.model.critic.strides = (2, 2, 2)
  common.set_baseline(c, method)
  c.evals.metrics = "w1,assignment_variance"
  c.evals.every_steps = 10_000
  c.evals.num_samples = 10 * NUM_REALS
  c.evals.num_reference = NUM_REALS
  c.evals.w1_max_points = 10 * NUM_REALS  # the full 50,000 x 5,000
  c.ckpt.every_steps = 2000
  if "smoke" in extra:  # The same code path, well under a minute on a CPU.
    c.name += "_smoke"
    c.data.num_examples = 500
    c.total_steps = 6
    c.log_every_steps = 2
    c.sample_every_steps = 6
    c.num_samples = 16
    c.model.init_batch_size = 64
    c.model.generator.widths = (32, 16, 8, 4)
    c.model.critic.widths = (8, 16, 32)
    c.evals.every_steps = 6
    c.evals.num_samples = 2000   # still 10x the reals
    c.evals.num_reference = 200
    c.evals.w1_max_points = 2000
    c.ckpt.every_steps = 3
  return c

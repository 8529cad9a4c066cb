r"""The assignment method (paper 004) on MNIST / Fashion-MNIST.

  python -m launch.train --config=configs/assignment_mnist.py \
      --config.data.data_dir=/path/to/mnist
  python -m launch.train --config=configs/assignment_mnist.py:ssim,fashion \
      --config.data.data_dir=/path/to/fashion_mnist

Variants: `sqeuclidean` (default) or `ssim` (the generator minimises 5 - 5
SSIM while the assigner uses the cheaper PSNR cost, as the paper suggests),
optionally `,fashion`; `smoke` is a minutes-long CPU check. As the official
code: 5,000 real images (here a fixed random subset of the training set, at
28x28 rather than resized to 32x32), 10x as many generated points assigned
per assigner update, Adam with betas (0.5, 0.9), an MLP assigner (1024-1024-
512-512, leaky ReLU) and generator mini-batches of 48. The generator is the
OT-GAN conv family at 28x28 (the paper's is a 3-layer transposed-conv net)
with uniform latents (the paper's mixture of 50,000 narrow Gaussians is not
implemented). Evaluated at the end with exact W1 (10,000 samples vs the
5,000 reals, flattened, in [0, 255]: divide by 127.5 for the paper's [-1, 1]
units), the assignment variance and the pinned classifier's score.
"""

from configs import common


def get_config(arg=None):
  parts = (arg or "sqeuclidean").split(",")
  variant, extra = parts[0], set(parts[1:])
  if variant not in ("sqeuclidean", "ssim", "smoke") or extra - {"fashion"}:
    raise ValueError(f"Unknown variant {arg!r}: sqeuclidean | ssim, "
                     "optionally ',fashion'; or smoke.")
  data = "fashion_mnist" if "fashion" in extra else "mnist"
  c = common.get_config()
  c.method = "assignment"
  c.name = f"assignment_{'ssim' if variant == 'ssim' else 'sqeuclidean'}_{data}"
  c.data.name = data
  c.data.source = "files"
  c.total_steps = 5000
  c.batch_size = 48
  c.log_every_steps = 50
  c.sample_every_steps = 500
  c.num_samples = 100
  c.model.generator.base_size = 7
  c.model.generator.widths = (256, 128, 64)
  c.optim.ema_decay = 0.99
  for net in ("generator", "critic"):
    c.optim[net].b1 = 0.5
    c.optim[net].b2 = 0.9
  c.optim.critic.learning_rate = 1e-4
  c.optim.generator.learning_rate = 1e-4
  c.assignment.num_reals = 5000
  c.assignment.count_samples = 50_000
  c.assignment.assigner_steps = 1
  c.assignment.generator_steps = 100
  if variant == "ssim":
    c.assignment.assigner_cost = "psnr"
    c.assignment.generator_cost = "ssim"
  c.evals.metrics = "w1,assignment_variance,classifier_score"
  c.evals.every_steps = 1000
  c.evals.num_samples = 10_000
  c.evals.num_reference = 5000
  c.ckpt.every_steps = 500
  if variant == "smoke":
    c.name = f"assignment_{data}_smoke"
    c.total_steps = 10
    c.log_every_steps = 5
    c.sample_every_steps = 5
    c.model.init_batch_size = 64
    c.model.generator.widths = (32, 16, 8)
    c.assignment.num_reals = 500
    c.assignment.count_samples = 5000
    c.assignment.generator_steps = 5
    c.assignment.assigner_hidden = (64, 64)
    c.evals.every_steps = 10
    c.evals.num_samples = 1000
    c.evals.num_reference = 500
    c.ckpt.every_steps = 5
  return c

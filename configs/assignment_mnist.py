r"""The assignment method (paper 004) on MNIST / Fashion-MNIST, as published.

  python -m launch.train --config=configs/assignment_mnist.py \
      --config.data.data_dir=/path/to/mnist
  python -m launch.train --config=configs/assignment_mnist.py:ssim,fashion \
      --config.data.data_dir=/path/to/fashion_mnist

Variants: `square` (default; `sqeuclidean` is the same) or `ssim`,
optionally `,fashion`; `,smoke` (e.g. `square,smoke`) runs the same code
path on 500 images in well under a minute on a CPU. Expect an hour or
more per run on one accelerator (not measured; 500 steps assign 170M
generated points against the 5,000 reals and take 680k generator updates
of 50), plus the exact W1 at the end (a 50,000 x 5,000 network simplex on the host: minutes,
2 GB). Paper's Table 1 / 2 (W1, MNIST / Fashion-MNIST): square 9.68 / 3.40,
SSIM 9.67 / 7.17; assignment variance 0.14 / 0.21 (MNIST) - see below for
why ours is not comparable.

The protocol of the authors' paper-era code (artnoage/Optimal-Transport-GAN
at 09a4c89, September 2019: Mnist_Square.py, Mnist_Ssim.py,
Fashion_Square.py) and of the paper:
- Data: the first 5,000 training images in the official files' order
  (`data.num_examples`), resized 28 -> 32 bilinearly and rounded to uint8
  as `scipy.misc.imresize` did (`data.resize`), in [-1, 1]. All 5,000 are
  the assigner's reals.
- Generator (`model.name=assignment_deconv`): dense to 4x4x256, layer norm,
  ReLU, two 5x5 stride-2 transposed convs to 128 and 64 channels each with
  layer norm and ReLU, a 5x5 stride-2 transposed conv to 1 channel, tanh.
  Glorot-uniform init, Keras layer norm (epsilon 1e-3). No weight EMA
  (`optim.ema_decay=0`: samples come from the trained weights).
- Latent (`model.latent=mixture`): 50,000 fixed centres c_k ~ N(0, I_250),
  z = c_k + 0.02 N(0, I), no centre twice within a latent batch.
- Assigner: 4 dense layers of 512 units, leaky ReLU (0.2), one output.
- Adam, betas (0.5, 0.9), epsilon 1e-8 outside the square root (TF's):
  generator 1e-4, assigner 5e-5.
- 500 steps (the code's main loops), each: 5 assigner updates, each
  assigning `int(25 * (5000 / b) * step / 500) + 15` latent batches of
  b = 400 (square) / 200 (ssim) generated points (the growing schedule:
  6,000 -> 130,400 points for square, 3,000 -> 127,600 for ssim); then one
  pass of generator updates over the last update's (z, assigned real)
  pairs, in the order generated, in mini-batches of 50.
- Costs: square: the assigner's cost 0.1 ||x - y||^2 (= 102.4 x the mean
  squared difference at 32x32) and the generator's squared error; ssim:
  the assigner's 1 - PSNR (4.343 x log MSE up to a constant) and the
  generator's 5 - 5 SSIM with a 4-pixel window (images shifted to [0, 2]).

Evaluation (at the end, on the final weights):
- `w1/exact`: exact W1 (POT's network simplex, Euclidean ground cost on the
  flattened images, uniform weights 1/50,000 and 1/5,000) between 50,000
  generated images (10x) and the 5,000 reals, NOT subsampled
  (`evals.w1_max_points=50000`). Units: the evaluator sees images in the
  data's range [0, 255]; divide by 127.5 for the paper's [-1, 1] units.
- `assignment/variance`: eq. 16, (1/5000) sum_j |n_j - 10| with n_j the
  number of the 50,000 generated images whose closest real (squared
  Euclidean, i.e. psi is NOT used) is real j; `assignment/random_baseline`
  (about 2.5) is its value if every sample fell on a uniformly random real.

Departures that remain: (1) the assignment variance uses the squared
Euclidean closest real for the ssim model too, where the paper uses the
model's cost (SSIM); and the paper's values (0.14-0.46) lie below the
random baseline, so its procedure must differ in a way it does not state:
compare our values with each other only. (2) The assigner's layers use
Flax's default init (LeCun normal), not TF1's Glorot uniform. (3) The
code's generator loss sums the squared error over the mini-batch and
divides by the pixels (square) or averages 1 - SSIM (ssim); ours averages
the squared error / 5 - 5 SSIM over the batch: a constant factor, which
Adam removes up to its epsilon. (4) The code used 100,000 generated
points for its own plots; the paper's W1 protocol (10x) is used here.
(5) On more than 2 devices the generator's mini-batch of 50 must become a
multiple of the device count (e.g. `--config.batch_size=48`).
"""

import math

from configs import common

IMAGE_SIZE = 32
NUM_REALS = 5000


def get_config(arg=None):
  parts = (arg or "square").split(",")
  variant, extra = parts[0], set(parts[1:])
  variant = {"sqeuclidean": "square"}.get(variant, variant)
  if variant not in ("square", "ssim") or extra - {"fashion", "smoke"}:
    raise ValueError(f"Unknown variant {arg!r}: square | ssim, optionally "
                     "',fashion' and/or ',smoke'.")
  data = "fashion_mnist" if "fashion" in extra else "mnist"
  c = common.get_config()
  c.method = "assignment"
  c.name = f"assignment_{variant}_{data}"
  c.data.name = data
  c.data.source = "files"
  c.data.num_examples = NUM_REALS
  c.data.resize = IMAGE_SIZE
  c.total_steps = 500
  c.batch_size = 50           # the code's generator mini-batch ("offset")
  c.log_every_steps = 10
  c.sample_every_steps = 50
  c.num_samples = 100

  c.model.name = "assignment_deconv"
  c.model.z_dim = 250
  c.model.latent = "mixture"
  c.model.latent_components = 50_000
  c.model.latent_sigma = 0.02
  c.model.generator.base_size = 4
  c.model.generator.widths = (256, 128, 64)
  c.optim.ema_decay = 0.0     # the code keeps no weight average
  for net, lr in (("generator", 1e-4), ("critic", 5e-5)):
    c.optim[net].learning_rate = lr
    c.optim[net].b1 = 0.5
    c.optim[net].b2 = 0.9
    c.optim[net].eps = 1e-8   # TF's Adam: epsilon outside the square root
    c.optim[net].eps_root = 0.0

  a = c.assignment
  a.num_reals = NUM_REALS
  a.assigner_steps = 5
  a.count_schedule = "linear"
  a.count_start = 15
  a.count_growth = 25.0
  a.latent_batch = 400 if variant == "square" else 200
  a.generator_steps = 0       # one pass over the last assignment
  a.shuffle_pairs = False
  a.chunk_size = NUM_REALS    # all reals in one block (the code's real batch)
  a.assigner_hidden = (512, 512, 512, 512)
  pixels = IMAGE_SIZE * IMAGE_SIZE
  if variant == "square":
    a.assigner_cost = "sqeuclidean"
    a.assigner_cost_scale = 0.1 * pixels    # 0.1 ||x - y||^2
    a.generator_cost = "sqeuclidean"
  else:
    a.assigner_cost = "psnr"
    a.assigner_cost_scale = 10 / math.log(10)  # 1 - PSNR, up to a constant
    a.generator_cost = "ssim"
    a.ssim_filter_size = 4

  c.evals.metrics = "w1,assignment_variance"
  c.evals.every_steps = c.total_steps   # once, at the end
  c.evals.num_samples = 10 * NUM_REALS
  c.evals.num_reference = NUM_REALS
  c.evals.w1_max_points = 10 * NUM_REALS  # no subsampling: the full 50,000 x 5,000
  c.ckpt.every_steps = 50

  if "smoke" in extra:  # The same code path, seconds per step on a CPU.
    c.name += "_smoke"
    c.data.num_examples = 500
    c.total_steps = 3
    c.log_every_steps = 1
    c.sample_every_steps = 3
    c.num_samples = 16
    c.batch_size = 40
    c.model.z_dim = 32
    c.model.latent_components = 2000
    c.model.generator.widths = (32, 16, 8)
    c.model.init_batch_size = 16
    a.num_reals = 500
    a.assigner_steps = 2
    a.count_start = 2
    a.count_growth = 1.0
    a.latent_batch = 80
    a.chunk_size = 500
    a.assigner_hidden = (32, 32, 32, 32)
    c.evals.every_steps = 3
    c.evals.num_samples = 5000
    c.evals.num_reference = 500
    c.evals.w1_max_points = 5000
    c.ckpt.every_steps = 3
  return c

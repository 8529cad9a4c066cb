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
  :one_gpu                            the paper's batch on ONE GPU: networks run
                                      500 examples at a time (otgan.chunk_size)
  ,smoke (alone: :smoke)              the same code path in well under a minute
                                      on a CPU (tiny networks, exact W1)

Evaluation every 5,000 steps: the Inception Score by the OpenAI protocol (10
splits of 50,000 samples; the paper's) and FID against the 50,000 training
images. The Inception Score needs pytorch-fid's weights file:
--config.evals.inception_weights=/path/pt_inception-2015-12-05-6726825d.pth
(without it, --config.evals.metrics=fid; the run says so at the start).

On GPUs and TPUs the cost matrices' products run in float32
(config.ot.precision=highest, as the official TensorFlow 1 code computed
them); --config.ot.precision=tensorfloat32 (GPU) or bfloat16_3x (TPU) is
faster and errs by up to 0.3 and 0.006 epsilon on concentrated features
(bench/ot_precision.py).

Memory of the full train step at the paper's batch (X, X', Y, Y' of 4000 each),
from XLA's compiled memory analysis on one device (bench/scaling.py
--compile_only; XLA:CPU's estimate, see bench/RESULTS.md): about 99 GiB
unchunked, about 19 GiB with chunk_size 250 or 500, so :one_gpu fits an
80 GB GPU; on 8 GPUs each holds 1/8 of the activations and the n x n plans.
"""

from configs import common


def get_config(arg=None):
  parts = [p for p in (arg or "").split(",") if p]
  smoke = "smoke" in parts
  parts = [p for p in parts if p != "smoke"]
  variant = parts[0] if len(parts) == 1 else None
  if len(parts) > 1 or variant not in (None, "batch200", "batch800",
                                       "batch3200", "random", "one_gpu"):
    raise ValueError(f"Unknown variant {arg!r}: batch200 | batch800 | "
                     "batch3200 | random | one_gpu, optionally ',smoke'; or "
                     "smoke.")
  c = common.get_config()
  c.name = "otgan_cifar10"
  c.data.name = "cifar10"
  c.data.source = "files"
  c.otgan.random_flip = True
  c.total_steps = 100_000
  c.batch_size = 4000
  c.log_every_steps = 10
  c.sample_every_steps = 500
  c.num_samples = 100
  c.ckpt.every_steps = 500
  # The paper's Inception Score (OpenAI protocol, 50,000 samples) and FID.
  c.evals.metrics = "is,fid"
  c.evals.every_steps = 5000
  if variant in ("batch200", "batch800", "batch3200"):
    total = int(variant[len("batch"):])
    c.name = f"otgan_cifar10_{variant}"
    c.batch_size = total // 2
  elif variant == "random":
    c.name = "otgan_cifar10_random"
    c.ot.matching = "random"
  elif variant == "one_gpu":
    c.name = "otgan_cifar10_one_gpu"
    c.otgan.chunk_size = 500
  if smoke:
    _smoke(c)
  return c


def _smoke(c):
  """common.cifar10_smoke, plus 20 Sinkhorn iterations and chunks of 8 where
  the variant chunks."""
  common.cifar10_smoke(c)
  c.ot.num_iterations = 20
  if c.otgan.chunk_size:
    c.otgan.chunk_size = 8

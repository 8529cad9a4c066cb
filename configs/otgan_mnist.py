r"""OT-GAN on MNIST (or Fashion-MNIST) from the official IDX files.

  python -m launch.train --config=configs/otgan_mnist.py \
      --config.data.data_dir=/path/to/mnist          # train-images-idx3-ubyte.gz ...
  python -m launch.train --config=configs/otgan_mnist.py:fashion \
      --config.data.data_dir=/path/to/fashion_mnist
  python -m launch.train --config=configs/otgan_mnist.py \
      --config.data.source=tfds                     # needs network once

The paper's CIFAR-10 networks resized to 28x28x1 (generator 7 -> 14 -> 28
with widths 512/256/128; critic strides 1/2/2/2, 4*4*2048-d features). Batch
and steps are our choice (the paper reports no MNIST run); a few hours on one
GPU. ":smoke" is a minutes-long CPU check of the same pipeline.
"""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  variant = arg or "mnist"
  if variant not in ("mnist", "fashion", "smoke"):
    raise ValueError(f"Unknown variant {variant!r}: mnist | fashion | smoke.")
  c.name = "otgan_fashion_mnist" if variant == "fashion" else "otgan_mnist"
  c.data.name = "fashion_mnist" if variant == "fashion" else "mnist"
  c.data.source = "files"
  c.total_steps = 20_000
  c.batch_size = 1000
  c.log_every_steps = 100
  c.sample_every_steps = 1000
  c.num_samples = 100
  c.model.generator.base_size = 7
  c.model.generator.widths = (512, 256, 128)
  c.model.critic.widths = (128, 256, 512, 1024)
  c.model.critic.strides = (1, 2, 2, 2)
  if variant == "smoke":
    c.name = "otgan_mnist_smoke"
    c.total_steps = 20
    c.batch_size = 64
    c.log_every_steps = 5
    c.sample_every_steps = 10
    c.model.init_batch_size = 64
    c.model.generator.widths = (64, 32, 16)
    c.model.critic.widths = (16, 32, 64, 128)
    c.ot.num_iterations = 100
    c.ckpt.every_steps = 10
  return c

r"""Trains a model from an ml-collections config.

With no flags, trains the default (OT-GAN on the 1,797 embedded 8x8 digits,
about 3 minutes on 2 CPU cores) into ./runs/otgan_digits:

  python -m launch.train
  python -m launch.train --config=configs/otgan_cifar10.py \
      --config.data.data_dir=/data/cifar10 --workdir=runs/cifar
  python -m launch.train --config=configs/otgan_mnist.py:smoke ...

Any config value can be overridden with --config.<key>=<value>; a key that
does not exist is an error. Rerunning with the same --workdir resumes from the
latest checkpoint there.
"""

import logging as py_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs", "otgan_digits.py")

_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "Experiment config file (path[:variant]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder; default ./runs/<config.name>.")


class _QuietLibraries(py_logging.Filter):
  """Drops Orbax's and TensorStore's per-save INFO lines from the log."""

  def filter(self, record):
    noisy = ("/orbax/" in record.pathname or "/tensorstore/" in record.pathname)
    return record.levelno >= py_logging.WARNING or not noisy


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # TensorFlow (used only by TFDS) must not take accelerator memory.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  from otgan_jax import train  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  workdir = _WORKDIR.value or os.path.join("runs", config.name)
  logging.info("Config:\n%s", config)
  try:
    train.train_and_evaluate(config, workdir)
  except train.USER_ERRORS as e:
    # Bad input: say what is wrong and what to do, without a traceback.
    sys.exit(f"error ({type(e).__name__}): {e}")


if __name__ == "__main__":
  app.run(main)

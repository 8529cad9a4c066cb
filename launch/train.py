r"""Trains a model from an ml-collections config.

With no flags, trains the default config (configs/otgan_digits.py: the 1,797
embedded 8x8 digits, about 3 minutes on 2 CPU cores) into ./runs/otgan_digits;
the config's `method` picks the training method:

  python -m launch.train
  python -m launch.train --config=configs/otgan_cifar10.py \
      --config.data.data_dir=/data/cifar10 --workdir=runs/cifar
  python -m launch.train --config=configs/otgan_mnist.py:smoke ...

Any config value can be overridden with --config.<key>=<value>; a key that
does not exist is an error. Rerunning with the same --workdir resumes from the
latest checkpoint there.

Several hosts: start the same command on every host with --distributed (the
cluster is detected on SLURM, TPU pods and other environments JAX knows), or
give --coordinator_address, --num_processes and --process_id explicitly; see
launch/slurm_gpu.sbatch and launch/tpu_pod.sh.
"""

import os

from absl import app
from absl import flags
from absl import logging

from launch import shared

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs", "otgan_digits.py")

_CONFIG = shared.define_config_file(
    "config", _DEFAULT_CONFIG, "Experiment config file (path[:variant]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder; default ./runs/<config.name>.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False,
    "Call jax.distributed.initialize() before anything touches the devices, "
    "detecting the cluster (SLURM, TPU pod, ...). Implied by the three flags "
    "below.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0's coordinator (multi-host without auto-detection).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes (multi-host).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, num_processes).")


def initialize_distributed() -> None:
  """Joins the processes of a multi-host run; a no-op without the flags."""
  explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if not _DISTRIBUTED.value and all(v is None for v in explicit):
    return
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise app.UsageError("--coordinator_address, --num_processes and "
                         "--process_id go together: give all three, or none "
                         "with --distributed for cluster auto-detection.")
  import jax  # pylint: disable=g-import-not-at-top
  # Cross-process collectives between CPU devices (tests, CPU clusters);
  # accelerators use their own (NCCL, ICI).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=_NUM_PROCESSES.value,
                             process_id=_PROCESS_ID.value)
  logging.info("Process %d of %d; %d local and %d global devices.",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # TensorFlow (used only by TFDS) must not take accelerator memory.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  shared.quiet_libraries()
  initialize_distributed()
  from otgan_jax import train  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  workdir = _WORKDIR.value or os.path.join("runs", config.name)
  # Bad input ends in one line (shared.run), without a traceback.
  train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
  shared.run(main, interrupted="stopped before the first step, nothing to "
             "save")

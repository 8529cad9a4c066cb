"""Test setup: fake CPU devices before JAX starts, so sharded code runs everywhere."""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# TensorFlow (used only by TFDS) must not grab accelerators or spam the log.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
  """The real data folder ($OTGAN_SHARED_DATA or ../shared/data); else skip."""
  default = _REPO_ROOT.parent / "shared" / "data"
  folder = pathlib.Path(os.environ.get("OTGAN_SHARED_DATA", default))
  if not folder.is_dir():
    pytest.skip(f"shared data folder {folder} not present")
  return folder


def _loop_batch(exp, step, transform=None):
  """The training loop's batch of `step` (one process; None for a method that
  reads none), from the pipeline's own functions; `transform` (optional) maps
  the raw `x` array first."""
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top
  from otgan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  spec = exp.batch_spec
  if spec is None:  # The method reads no batches.
    return None
  local = pipeline.host_batch(
      exp.source, step, num_updates=spec.num_updates,
      batch_size=exp.config.batch_size, shard_index=0, num_shards=1,
      with_labels=spec.labels, draws=spec.draws)
  if transform is not None:
    local = dict(local, x=transform(local["x"]))
  return pipeline.global_batch(local, exp.batch_sharding(),
                               experiment.BATCH_AXIS)


@pytest.fixture
def loop_batch():
  """`loop_batch(exp, step)`: the batch the training loop feeds at `step`."""
  return _loop_batch

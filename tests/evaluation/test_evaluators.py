"""The Evaluator's own plumbing (its metrics are tested with the runs)."""

import os

import pytest

from configs import test as test_config
from otgan_jax.data import base as data_base
from otgan_jax.evaluation import evaluators

_INFO = data_base.DatasetInfo("digits", (8, 8, 1), 0.0, 16.0, 1797, 10)


def test_inception_weights_are_read_once_per_file_until_it_changes(
    tmp_path, monkeypatch):
  reads = []

  def fake_read(path):
    with open(path, "rb") as f:
      reads.append(f.read())
    return {"params": len(reads)}, f"hash{len(reads)}"

  monkeypatch.setattr(evaluators, "_read_weights", fake_read)
  evaluators._read_weights_once.cache_clear()  # pylint: disable=protected-access
  weights = tmp_path / "weights.npz"
  weights.write_bytes(b"first")
  config = test_config.get_config().evals
  config.metrics = "fid"
  config.inception_weights = str(weights)

  def load():
    return evaluators.Evaluator(config, info=_INFO)._load_weights()  # pylint: disable=protected-access

  # Two evaluators in one process (a suite's runs): one read and check.
  assert load() == load() == ({"params": 1}, "hash1")
  assert reads == [b"first"]
  # A file replaced under the same name is read (and checked) again.
  replacement = tmp_path / "new.npz"
  replacement.write_bytes(b"second")
  os.replace(replacement, weights)
  assert load() == ({"params": 2}, "hash2")
  assert reads == [b"first", b"second"]
  evaluators._read_weights_once.cache_clear()  # pylint: disable=protected-access


@pytest.mark.parametrize("key", ["num_samples", "num_reference", "batch_size"])
def test_a_count_below_one_is_a_clear_error_at_the_start(key):
  # Found when the evaluator is built (the start of a run), not at the
  # first evaluation (before: numpy's "need at least one array to
  # concatenate" from launch.evaluate --num_samples=-5).
  config = test_config.get_config().evals
  config.metrics = "w1"
  evaluators.Evaluator(config, info=_INFO)
  config[key] = -5
  with pytest.raises(ValueError, match=f"config.evals.{key} must be "
                                       f"positive, got -5.*--{key}"):
    evaluators.Evaluator(config, info=_INFO)

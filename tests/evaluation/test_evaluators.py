"""The Evaluator's own plumbing (its metrics are tested with the runs)."""

import os

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

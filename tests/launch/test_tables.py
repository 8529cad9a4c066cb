"""launch.tables and evaluation.published: published numbers only where the
protocols match, W1 in the paper's units, figure readings labelled.

No training: the workdirs are fabricated as training and launch.evaluate
write them (config.json, dataset_info.json, eval/step_N.json).
"""

import csv
import dataclasses
import json
import os
import re

import numpy as np
import pytest

from launch import tables
from otgan_jax.evaluation import comparability
from otgan_jax.evaluation import published
from otgan_jax.evaluation import transport

_MNIST_28 = {"name": "mnist", "shape": [28, 28, 1], "low": 0.0,
             "high": 255.0, "num_examples": 60000, "num_classes": 10}
_MNIST_32 = dict(_MNIST_28, shape=[32, 32, 1])
_CIFAR = {"name": "cifar10", "shape": [32, 32, 3], "low": 0.0, "high": 255.0,
          "num_examples": 50000, "num_classes": 10}


def _evals(**overrides):
  evals = {"metrics": "w1", "num_samples": 50_000, "num_reference": 50_000,
           "is_variant": "openai", "is_splits": 10, "fid_resize": "half_pixel",
           "reference_stats": "", "parzen_bandwidth": 0.1,
           "w1_max_points": 5000}
  evals.update(overrides)
  return evals


def _config(name, method, data, *, evals, seed=0, **extra):
  config = {"name": name, "seed": seed, "method": method, "batch_size": 64,
            "data": {"name": data, "split": "train",
                     "gaussians": {"num_modes": 8, "radius": 2.0,
                                   "std": 0.2}},
            "model": {"num_classes": 0},
            "ot": {"matching": "sinkhorn"},
            "otgan": {"freeze_critic_at_step": -1},
            "assignment": {"generator_cost": "sqeuclidean"},
            "evals": evals}
  for dotted, value in extra.items():
    *path, last = dotted.split("__")
    node = config
    for p in path:
      node = node.setdefault(p, {})
    node[last] = value
  return config


def _workdir(root, folder, config, info, evaluations):
  """Writes a run folder; `evaluations` is [(step, metrics, evals)]."""
  workdir = os.path.join(root, folder)
  os.makedirs(os.path.join(workdir, "eval"))
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config, f)
  if info is not None:
    with open(os.path.join(workdir, "dataset_info.json"), "w") as f:
      json.dump(info, f)
  for step, metrics, evals in evaluations:
    record = {"step": step, "time": 0.0, "name": config["name"],
              "seed": config["seed"], "data": config["data"]["name"],
              "metrics": metrics, "protocol": evals or config["evals"]}
    with open(os.path.join(workdir, "eval", f"step_{step:07d}.json"),
              "w") as f:
      json.dump(record, f)
  return workdir


def _rows(root, select="last"):
  return tables.rows(tables.read_runs([os.path.join(root, "*")], select))


def _find(rows, experiment, source_part):
  found = [r for r in rows if r["experiment"] == experiment
           and source_part in (r["source"] or "")]
  assert len(found) == 1, [(r["experiment"], r["source"]) for r in rows]
  return found[0]


# W1 units --------------------------------------------------------------------


def test_convert_w1_between_ranges():
  assert comparability.convert_w1(255.0, (0, 255), (-1, 1)) == pytest.approx(
      2.0)
  assert comparability.convert_w1(10.0, (0, 255), (0, 1)) == pytest.approx(
      10 / 255)
  assert comparability.convert_w1(3.0, (0, 1), (-1, 1)) == pytest.approx(6.0)
  back = comparability.convert_w1(
      comparability.convert_w1(7.5, (0, 255), (-1, 1)), (-1, 1), (0, 255))
  assert back == pytest.approx(7.5)
  for bad in ((1, 1), (2, 0), "unstated", None):
    with pytest.raises(ValueError, match="high > low"):
      comparability.convert_w1(1.0, bad, (-1, 1))


def test_convert_w1_equals_exact_w1_of_rescaled_images():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (30, 4, 4, 1)).astype(np.float64)
  y = rng.integers(0, 256, (20, 4, 4, 1)).astype(np.float64)
  raw = transport.exact_w1(x, y)
  rescaled = transport.exact_w1(x / 127.5 - 1, y / 127.5 - 1)
  assert comparability.convert_w1(raw, (0, 255), (-1, 1)) == pytest.approx(
      rescaled, rel=1e-9)


# Protocols and the matcher ---------------------------------------------------


def _w1_entry(data="mnist", label="square assignment"):
  [entry] = [e for e in published.PUBLISHED if e.metric == "w1/exact"
             and e.protocol.data == data and e.label.startswith(label)]
  return entry


def test_run_protocol_from_config():
  config = _config("a", "assignment", "mnist",
                   evals=_evals(num_samples=10_000, num_reference=5000))
  p = comparability.run_protocol(config, "w1/exact", dataset_info=_MNIST_28,
                             selection="last")
  assert p.data == "mnist" and p.resolution == (28, 28)
  assert p.value_range == (0.0, 255.0)  # The evaluators' raw data range.
  assert (p.num_generated, p.num_real) == (5000, 5000)  # w1_max_points.
  # Without dataset_info.json: the data set's known shape and range.
  assert comparability.run_protocol(config, "w1/exact") == dataclasses.replace(
      p, selection=comparability.UNSTATED)
  is_p = comparability.run_protocol(config, "is/openai", dataset_info=_MNIST_28)
  assert is_p.value_range is None and is_p.num_real is None
  assert is_p.params == {"is_splits": 10} and is_p.num_generated == 10_000


def test_comparable_matches_and_names_what_differs():
  entry = _w1_entry()
  ours = comparability.Protocol(
      metric="w1/exact", data="mnist", resolution=(32, 32),
      value_range=(-1.0, 1.0), num_generated=50_000, num_real=5000,
      params={"ground_cost": "euclidean"}, split="train", selection="last")
  ok, reason = comparability.comparable(ours, entry)
  assert ok and "same protocol" in reason and "units" in reason

  wrong_res = dataclasses.replace(ours, resolution=(28, 28))
  ok, reason = comparability.comparable(wrong_res, entry)
  assert not ok and "resolution: ours 28x28, paper 32x32" in reason

  raw_units = dataclasses.replace(ours, value_range=(0.0, 255.0))
  ok, reason = comparability.comparable(raw_units, entry)
  assert not ok and "units: ours [0, 255], paper [-1, 1]" in reason
  value, converted = comparability.to_published_units(2550.0, raw_units, entry)
  assert value == pytest.approx(20.0)
  assert comparability.comparable(converted, entry)[0]

  unstated = dataclasses.replace(entry.protocol,
                                 value_range=comparability.UNSTATED)
  ok, reason = comparability.comparable(ours, unstated)
  assert not ok and "unstated in the paper: units" in reason

  fewer = dataclasses.replace(ours, num_generated=5000, selection="best")
  ok, reason = comparability.comparable(fewer, entry)
  assert "generated samples: ours 5,000, paper 50,000" in reason
  assert "selection: ours best, paper last" in reason


def test_unstated_implementation_is_not_comparable():
  [fid] = [e for e in published.PUBLISHED if e.metric == "fid"
           and e.label == "POT-GAN"]
  ours = comparability.run_protocol(
      _config("p", "potgan", "cifar10", evals=_evals()),
      "fid/pool3_half_pixel", dataset_info=_CIFAR)
  ok, reason = comparability.comparable(ours, fid)
  assert not ok and "which fid implementation" in reason


def test_entries_for_follow_the_config():
  def labels(config):
    return [e.label for e in published.entries_for(config)]
  evals = _evals()
  assert labels(_config("x", "assignment", "fashion_mnist", evals=evals,
                        assignment__generator_cost="ssim")) == [
                            "SSIM assignment, fashion_mnist"]
  assert labels(_config("x", "otgan", "cifar10", evals=evals,
                        batch_size=100)) == ["batch 200"]
  assert labels(_config("x", "otgan", "cifar10", evals=evals, batch_size=4000,
                        ot__matching="random")) == ["random matching"]
  # The ring without the frozen critic is not section 5.1's experiment.
  assert labels(_config("x", "otgan", "gaussians", evals=evals)) == []
  assert published.entries_for(
      _config("x", "wgangp", "cifar10", evals=evals), "fid/pool3_tf1")[0
      ].metric == "fid"


def test_published_data_is_labelled():
  kinds = {(e.paper, e.where, e.label): e.kind for e in published.PUBLISHED}
  for batch in (200, 800, 3200):
    assert kinds[("Salimans et al. 2018", "Fig. 3", f"batch {batch}")] == (
        "figure")
  assert kinds[("Salimans et al. 2018", "Table 1", "batch 8000")] == "table"
  assert {e.kind for e in published.PUBLISHED} <= set(comparability.KINDS)
  w1 = [e for e in published.PUBLISHED if e.metric == "w1/exact"]
  assert len(w1) == 10 and all(e.protocol.value_range == (-1.0, 1.0)
                               and "units" in e.protocol.inferred for e in w1)
  assert all(e.read_off_figure == (e.kind == "figure")
             for e in published.PUBLISHED)


# launch.tables ---------------------------------------------------------------


def test_matching_protocol_puts_the_number_beside_ours(tmp_path):
  # 32x32 MNIST, 50,000 generated vs 5,000 reals: the paper's protocol.
  evals = _evals(num_samples=50_000, num_reference=5000,
                 w1_max_points=50_000)
  config = _config("sq32", "assignment", "mnist", evals=evals)
  _workdir(tmp_path, "sq32", config, _MNIST_32,
           [(10, {"w1/exact": 1300.0}, None), (20, {"w1/exact": 1234.0},
                                               None)])
  cifar = _config("big", "otgan", "cifar10", batch_size=4000,
                  evals=_evals(metrics="is"))
  _workdir(tmp_path, "big", cifar, _CIFAR,
           [(5, {"is/openai": 8.1, "is/openai_std": 0.1}, None)])
  rows = _rows(tmp_path)
  row = _find(rows, "sq32", "square assignment, mnist")
  assert row["comparable"] and row["published"] == 9.68
  assert row["published_other_protocol"] is None
  assert row["ours_mean"] == pytest.approx(1234.0 * 2 / 255)  # Paper units.
  assert row["units"] == "[-1, 1]"
  assert "rescaled from [0, 255]" in row["protocol_note"]
  is_row = _find(rows, "big", "Table 1 (batch 8000)")
  assert is_row["comparable"] and is_row["published"] == 8.47
  assert is_row["published_std"] == 0.12 and is_row["ours_mean"] == 8.1

  text = tables.markdown(rows)
  line = [l for l in text.splitlines() if l.startswith("| sq32 |")][0]
  cells = [c.strip() for c in line.split("|")]
  assert cells[3] == "9.68" and cells[4] == "9.678" and cells[8] == "-"


def test_mismatched_protocol_shows_the_note_not_the_number(tmp_path):
  # Today's configs: 28x28, W1 on 5,000 vs 5,000 (w1_max_points).
  evals = _evals(num_samples=10_000, num_reference=5000)
  config = _config("sq28", "assignment", "mnist", evals=evals)
  _workdir(tmp_path, "sq28", config, _MNIST_28,
           [(30, {"w1/exact": 1234.0}, None)])
  rows = _rows(tmp_path)
  row = _find(rows, "sq28", "square assignment, mnist")
  assert not row["comparable"] and row["published"] is None
  assert row["published_other_protocol"] == 9.68
  assert "resolution: ours 28x28, paper 32x32" in row["protocol_note"]
  assert "generated samples: ours 5,000, paper 50,000" in row["protocol_note"]
  assert row["units"] == "[-1, 1]"  # Still shown in the paper's units.
  line = [l for l in tables.markdown(rows).splitlines()
          if l.startswith("| sq28 |")][0]
  cells = [c.strip() for c in line.split("|")]
  assert cells[3] == "-" and cells[8] == "9.68"
  assert "28x28" in cells[9]

  # A launch.evaluate with other settings is its own protocol: not averaged
  # with the run's own evaluations.
  other = _config("sq28", "assignment", "mnist", evals=evals, seed=1)
  _workdir(tmp_path, "sq28_s1", other, _MNIST_28,
           [(30, {"w1/exact": 1000.0}, _evals(num_samples=200,
                                               num_reference=5000))])
  rows = [r for r in _rows(tmp_path) if r["experiment"] == "sq28"
          and "square assignment, mnist" in r["source"]]
  assert sorted(r["seeds"] for r in rows) == [1, 1]


def test_figure_values_are_labelled(tmp_path):
  config = _config("b200", "otgan", "cifar10", batch_size=100,
                   evals=_evals(metrics="is"))
  _workdir(tmp_path, "b200", config, _CIFAR,
           [(1, {"is/openai": 6.0}, None), (2, {"is/openai": 5.5}, None)])
  # The paper's value is a peak over training: the last evaluation is not
  # comparable, the best one is.
  row = _find(_rows(tmp_path, "last"), "b200", "batch 200")
  assert not row["comparable"] and row["read_off_figure"]
  assert "selection: ours last, paper best" in row["protocol_note"]
  rows = _rows(tmp_path, "best")
  row = _find(rows, "b200", "batch 200")
  assert row["comparable"] and row["ours_mean"] == 6.0
  assert row["source"].endswith("read off the figure")
  text = tables.markdown(rows)
  line = [l for l in text.splitlines() if l.startswith("| b200 |")][0]
  assert "7.22 [read off figure]" in line
  table_1 = [l for l in text.splitlines() if "(batch 8000)" in l][0]
  assert "read off" not in table_1


def test_cli_writes_markdown_and_csv(tmp_path, cli):
  for seed in (0, 1):  # Unmatched runs: "Other results", seeds together.
    config = _config("test_gaussians", "otgan", "gaussians", seed=seed,
                     evals=_evals(num_samples=400, num_reference=300))
    _workdir(tmp_path / "runs", f"s{seed}", config,
             {"name": "gaussians", "shape": [2], "low": None, "high": None,
              "num_examples": None, "num_classes": 8},
             [(3, {"w1/exact": 0.5 + seed, "modes/covered": 8.0}, None)])
  _workdir(tmp_path / "runs", "sq28", _config(
      "sq28", "assignment", "mnist", evals=_evals()), _MNIST_28,
           [(3, {"w1/exact": 1234.0}, None)])
  prefix = tmp_path / "out" / "tables"
  cli("launch.tables", f"--runs={tmp_path}/runs/*", f"--out={prefix}")
  text = open(f"{prefix}.md").read()
  row = [l for l in text.splitlines()
         if l.startswith("| test_gaussians | w1/exact |")][0]
  assert row.split("|")[6].strip() == "2"  # Two seeds.
  assert "Salimans et al. 2018, Fig. 3" in text
  with open(f"{prefix}.csv", newline="") as f:
    records = list(csv.DictReader(f))
  assert list(records[0]) == list(tables.COLUMNS)
  [sq] = [r for r in records if r["experiment"] == "sq28"
          and "square assignment" in r["source"]]
  assert sq["published"] == "" and sq["published_other_protocol"] == "9.68"
  assert sq["comparable"] == "False" and "28x28" in sq["protocol_note"]
  figure = [r for r in records if "Fig. 3" in r["source"]]
  assert figure and all(r["read_off_figure"] == "True" for r in figure)


def test_no_method_names_in_launch_tables():
  source = open(tables.__file__).read()
  source = source.replace("otgan_jax", "")
  names = {e.setting["method"] for e in published.PUBLISHED}
  assert names >= {"otgan", "gan", "wgan", "wgangp", "potgan", "assignment"}
  for name in names | {"ot-gan", "pot-gan", "cifar10", "mnist", "gaussians"}:
    assert not re.search(rf"\b{re.escape(name)}\b", source, re.IGNORECASE), (
        name)

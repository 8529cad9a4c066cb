r"""Gathers finished runs into the papers' tables, beside the published numbers.

  python -m launch.tables                       # runs/*, markdown to stdout
  python -m launch.tables --runs='runs/*,/scratch/runs/*' --select=best \
      --out=results/tables

Every run's evaluations (`<workdir>/eval/step_*.json`, written by
`launch.evaluate` or by training with `config.evals.every_steps`) are reduced
to one value per metric (the last evaluation, or the best one with
--select=best, as the OT-GAN paper reports peak scores), then grouped by
experiment name (`config.name`) into mean, std and the number of seeds.
Writes <out>.md and <out>.csv. The papers' rows appear even before a run
exists, so the table shows what is left to reproduce.
"""

import collections
import csv
import glob
import json
import math
import os

from absl import app
from absl import flags

_RUNS = flags.DEFINE_list("runs", ["runs/*"], "Workdir globs.")
_SELECT = flags.DEFINE_enum("select", "last", ["last", "best"],
                            "Which evaluation of a run counts.")
_OUT = flags.DEFINE_string("out", None,
                           "Write <out>.md and <out>.csv (default: stdout).")

# (table, experiment name, metric, published value, source).
PUBLISHED = [
    ("OT-GAN, CIFAR-10 Inception Score by batch size", "otgan_cifar10_batch200",
     "is/openai", 7.22, "Salimans et al. 2018, Fig. 3 (batch 200)"),
    ("OT-GAN, CIFAR-10 Inception Score by batch size", "otgan_cifar10_batch800",
     "is/openai", 7.84, "Salimans et al. 2018, Fig. 3 (batch 800)"),
    ("OT-GAN, CIFAR-10 Inception Score by batch size",
     "otgan_cifar10_batch3200", "is/openai", 8.15,
     "Salimans et al. 2018, Fig. 3 (batch 3200)"),
    ("OT-GAN, CIFAR-10 Inception Score by batch size", "otgan_cifar10",
     "is/openai", 8.47, "Salimans et al. 2018, Fig. 3 (batch 8000)"),
    ("OT-GAN, CIFAR-10 Inception Score by batch size", "otgan_cifar10_one_gpu",
     "is/openai", 8.47, "Salimans et al. 2018 (batch 8000, on 8 GPUs)"),
    ("OT-GAN, CIFAR-10 Inception Score by batch size", "otgan_cifar10_random",
     "is/openai", 4.64, "Salimans et al. 2018 (random matching)"),
    ("OT-GAN, 8 Gaussians with a frozen critic (section 5.1)",
     "otgan_gaussians", "modes/covered", 8.0,
     "Salimans et al. 2018, Fig. 2 (all 8 modes kept)"),
    ("POT-GAN, reverse KL on the 8-Gaussian ring", "gan_gaussians",
     "reverse_kl", 0.2417, "Avraham et al. 2019 (GAN)"),
    ("POT-GAN, reverse KL on the 8-Gaussian ring", "wgangp_gaussians",
     "reverse_kl", 0.0046, "Avraham et al. 2019 (WGAN-GP)"),
    ("POT-GAN, reverse KL on the 8-Gaussian ring", "potgan_gaussians",
     "reverse_kl", 0.0020, "Avraham et al. 2019 (POT-GAN)"),
    ("POT-GAN, CIFAR-10", "wgangp_cifar10", "is/openai", 6.58,
     "Avraham et al. 2019 (WGAN-GP)"),
    ("POT-GAN, CIFAR-10", "potgan_cifar10", "is/openai", 6.87,
     "Avraham et al. 2019 (POT-GAN)"),
    ("POT-GAN, CIFAR-10", "wgangp_cifar10", "fid", 34.4,
     "Avraham et al. 2019 (WGAN-GP)"),
    ("POT-GAN, CIFAR-10", "potgan_cifar10", "fid", 32.5,
     "Avraham et al. 2019 (POT-GAN)"),
] + [
    ("Assignment method, exact W1", f"{model}_{data}", "w1/exact", value,
     f"Laschos et al. ({label}, {data})")
    for model, label, values in (
        ("gan", "GAN", (15.80, 11.03)), ("wgan", "WGAN", (12.59, 11.19)),
        ("wgangp", "WGAN-GP", (10.69, 9.15)),
        ("assignment_sqeuclidean", "square assignment", (9.68, 3.40)),
        ("assignment_ssim", "SSIM assignment", (9.67, 7.17)))
    for data, value in zip(("mnist", "fashion_mnist"), values)
]
# Metrics where larger is better (for --select=best).
_HIGHER = ("is/", "precision/", "recall/", "modes/", "classifier_score")


def higher_is_better(metric: str) -> bool:
  return metric.startswith(_HIGHER)


def _metric_family(metric: str) -> str:
  """`fid/pool3_half_pixel` -> `fid`, `reverse_kl/parzen_0.1` -> `reverse_kl`.

  Published FID/KL numbers name no protocol; ours carry it in the suffix.
  """
  if metric.startswith(("fid/", "reverse_kl/")):
    return metric.split("/")[0]
  return metric


def read_runs(patterns: list[str], select: str) -> dict[str, dict]:
  """{workdir: {"name", "seed", "step", "metrics": {metric: value}}}."""
  runs = {}
  for pattern in patterns:
    for workdir in sorted(glob.glob(pattern)):
      files = sorted(glob.glob(os.path.join(workdir, "eval", "step_*.json")))
      records = []
      for path in files:
        try:
          with open(path) as f:
            records.append(json.load(f))
        except (OSError, ValueError) as e:
          print(f"skipping unreadable {path}: {e}")
      if not records:
        continue
      chosen: dict[str, float] = {}
      for metric in {m for r in records for m in r["metrics"]}:
        values = [(r["step"], r["metrics"][metric]) for r in records
                  if metric in r["metrics"]]
        if select == "last" or metric.endswith("_std"):
          chosen[metric] = max(values)[1]
        else:
          pick = max if higher_is_better(metric) else min
          chosen[metric] = pick(v for _, v in values)
      last = max(records, key=lambda r: r["step"])
      runs[workdir] = {"name": last["name"], "seed": last["seed"],
                       "step": last["step"], "metrics": chosen}
  return runs


def aggregate(runs: dict[str, dict]) -> dict[tuple[str, str], dict]:
  """{(name, metric family): {"mean", "std", "seeds", "metric"}}."""
  groups = collections.defaultdict(list)
  for run in runs.values():
    for metric, value in run["metrics"].items():
      if metric.endswith("_std") or metric == "num_samples":
        continue
      groups[(run["name"], metric)].append(value)
  out = {}
  for (name, metric), values in groups.items():
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else float("nan"))
    out[(name, _metric_family(metric))] = {
        "mean": mean, "std": std, "seeds": len(values), "metric": metric}
  return out


def rows(runs: dict[str, dict]) -> list[dict[str, object]]:
  """The papers' rows (published vs ours), then our other results."""
  ours = aggregate(runs)
  table_rows, seen = [], set()
  for table, name, metric, value, source in PUBLISHED:
    got = ours.get((name, metric))
    seen.add((name, metric))
    table_rows.append({"table": table, "experiment": name,
                       "metric": got["metric"] if got else metric,
                       "published": value, "source": source, **_ours(got)})
  for (name, family), got in sorted(ours.items()):
    if (name, family) not in seen:
      table_rows.append({"table": "Other results", "experiment": name,
                         "metric": got["metric"], "published": None,
                         "source": "", **_ours(got)})
  return table_rows


def _ours(got):
  if got is None:
    return {"mean": None, "std": None, "seeds": 0}
  return {"mean": got["mean"], "std": got["std"], "seeds": got["seeds"]}


def _fmt(v) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "-"
  return f"{v:.4g}"


def markdown(table_rows: list[dict[str, object]]) -> str:
  lines = []
  for table in dict.fromkeys(r["table"] for r in table_rows):
    lines += [f"### {table}", "",
              "| experiment | metric | published | ours (mean) | std | seeds "
              "| source |", "|---|---|---:|---:|---:|---:|---|"]
    for r in table_rows:
      if r["table"] == table:
        lines.append(
            f"| {r['experiment']} | {r['metric']} | {_fmt(r['published'])} | "
            f"{_fmt(r['mean'])} | {_fmt(r['std'])} | {r['seeds']} | "
            f"{r['source']} |")
    lines.append("")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  runs = read_runs(_RUNS.value, _SELECT.value)
  table_rows = rows(runs)
  text = (f"Runs: {len(runs)} with evaluations ({_SELECT.value} evaluation "
          "per run; mean and sample std over seeds).\n\n" + markdown(table_rows))
  if _OUT.value is None:
    print(text)
    return
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value + ".md", "w") as f:
    f.write(text)
  with open(_OUT.value + ".csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(table_rows[0]))
    writer.writeheader()
    writer.writerows(table_rows)
  print(f"Wrote {_OUT.value}.md and {_OUT.value}.csv ({len(runs)} runs).")


if __name__ == "__main__":
  app.run(main)

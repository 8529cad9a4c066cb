r"""Gathers finished runs into the papers' tables, beside the published numbers.

  python -m launch.tables                       # runs/*, markdown to stdout
  python -m launch.tables --runs='runs/*,/scratch/runs/*' --select=best \
      --out=results/tables

Every run's evaluations (`<workdir>/eval/step_*.json`, written by
`launch.evaluate` or by training with `config.evals.every_steps`) are reduced
to one value per metric (the last evaluation, or the best one with
--select=best, for papers that report peak scores), then grouped by
experiment name (`config.name`) and evaluation protocol into mean, std and the
number of seeds.

Which paper's number a run reproduces comes from its `config.json` (method,
data and the settings that define the experiment) through
`otgan_jax.evaluation.published`, which also holds each number's protocol. A
published number stands in the "published" column only when its protocol
matches ours (metric implementation, data, resolution, units, sample counts,
settings); otherwise it is shown under "published (other protocol)" with what
differs. Numbers read off a figure are marked. W1 is shown in the paper's
units where they are known (ours is computed in the data's raw range).
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

from launch import shared
from otgan_jax.evaluation import comparability
from otgan_jax.evaluation import published

_RUNS = flags.DEFINE_list("runs", ["runs/*"], "Workdir globs.")
_SELECT = flags.DEFINE_enum("select", "last", ["last", "best"],
                            "Which evaluation of a run counts.")
_OUT = flags.DEFINE_string("out", None,
                           "Write <out>.md and <out>.csv (default: stdout).")

# Metrics where larger is better (for --select=best).
_HIGHER = ("is/", "precision/", "recall/", "modes/", "classifier_score")
_FIGURE_MARK = "[read off figure]"
COLUMNS = ("table", "experiment", "metric", "published", "published_std",
           "ours_mean", "ours_std", "seeds", "units",
           "published_other_protocol", "published_other_protocol_std",
           "read_off_figure", "comparable", "protocol_note", "source")


def higher_is_better(metric: str) -> bool:
  return metric.startswith(_HIGHER)


_RECORD_KEYS = ("step", "name", "seed", "metrics")


def _load_json(path: str, required: tuple[str, ...] = ()):
  """The JSON object in `path`; None if there is no such file.

  Raises:
    ValueError: the file is unreadable, not JSON, or lacks `required` keys
      (a table silently missing a run would be wrong).
  """
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    raise ValueError(f"{path} is unreadable ({type(e).__name__}: {e}). Fix "
                     "or move it aside, or leave its run out of --runs.") from e
  missing = [k for k in required if not isinstance(record, dict)
             or k not in record]
  if missing:
    raise ValueError(f"{path} lacks {', '.join(missing)}: it is not an "
                     "evaluation written by launch.evaluate. Fix or move it "
                     "aside, or leave its run out of --runs.")
  return record


def _workdirs(pattern: str) -> list[str]:
  """The folders `pattern` names; a plain path must exist."""
  if not glob.has_magic(pattern) and not os.path.exists(pattern):
    raise FileNotFoundError(
        f"--runs: {pattern} does not exist (give workdirs or globs such as "
        "'runs/*').")
  return sorted(glob.glob(pattern))


def read_runs(patterns: list[str], select: str) -> dict[str, dict]:
  """{workdir: {"name", "seed", "step", "config", "metrics"}}.

  `metrics` maps each metric to `{"value", "protocol"}`: the selected value
  and the `comparability.Protocol` it was measured under (from config.json,
  dataset_info.json and that evaluation's recorded `config.evals`).
  """
  runs = {}
  for pattern in patterns:
    for workdir in _workdirs(pattern):
      files = sorted(glob.glob(os.path.join(workdir, "eval", "step_*.json")))
      records = [r for r in (_load_json(f, _RECORD_KEYS) for f in files)
                 if r is not None]
      if not records:
        continue
      last = max(records, key=lambda r: r["step"])
      config = _load_json(os.path.join(workdir, "config.json")) or {
          "name": last["name"], "seed": last["seed"],
          "data": {"name": last.get("data", comparability.UNSTATED)}}
      info = _load_json(os.path.join(workdir, "dataset_info.json"))
      chosen = {}
      for metric in {m for r in records for m in r["metrics"]}:
        if metric.endswith("_std") or metric == "num_samples":
          continue
        values = [(r["step"], r["metrics"][metric], i)
                  for i, r in enumerate(records) if metric in r["metrics"]]
        if select == "last":
          _, value, i = max(values)
        else:
          pick = max if higher_is_better(metric) else min
          _, value, i = pick(values, key=lambda v: (v[1], v[0]))
        protocol = comparability.run_protocol(
            config, metric, dataset_info=info,
            evals=records[i].get("protocol"), selection=select)
        chosen[metric] = {"value": value, "protocol": protocol}
      runs[workdir] = {"name": last["name"], "seed": last["seed"],
                       "step": last["step"], "config": config,
                       "metrics": chosen}
  return runs


def aggregate(runs: dict[str, dict]) -> dict[tuple[str, str, str], dict]:
  """Seeds of one experiment, metric and protocol -> mean, std, count.

  Keyed by (name, metric, protocol signature): seeds evaluated under other
  protocols are never averaged together.
  """
  groups = collections.defaultdict(list)
  for run in runs.values():
    for metric, got in run["metrics"].items():
      key = (run["name"], metric, got["protocol"].signature())
      groups[key].append((got["value"], got["protocol"], run["config"]))
  out = {}
  for (name, metric, sig), items in groups.items():
    values = [v for v, _, _ in items]
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else float("nan"))
    out[(name, metric, sig)] = {
        "name": name, "metric": metric, "mean": mean, "std": std,
        "seeds": len(values), "protocol": items[0][1], "config": items[0][2]}
  return out


def _units(protocol: comparability.Protocol) -> str:
  r = protocol.value_range
  return "" if r in (None, comparability.UNSTATED) else f"[{r[0]:g}, {r[1]:g}]"


def _row(entry, group) -> dict[str, object]:
  """One published number beside one group of our runs (or none)."""
  row = dict.fromkeys(COLUMNS)
  row.update(table=entry.table, metric=entry.metric, source=entry.source,
             read_off_figure=entry.read_off_figure)
  if group is None:
    row.update(experiment="(no run yet)", seeds=0, published=entry.value,
               published_std=entry.std,
               protocol_note="paper: " + comparability.describe(entry.protocol))
    return row
  mean, ours = comparability.to_published_units(
      group["mean"], group["protocol"], entry)
  std, _ = comparability.to_published_units(
      group["std"], group["protocol"], entry)
  ok, reason = comparability.comparable(ours, entry)
  if ours.value_range != group["protocol"].value_range:
    reason += f"; ours rescaled from {_units(group['protocol'])}"
  row.update(experiment=group["name"], metric=group["metric"],
             ours_mean=mean, ours_std=std, seeds=group["seeds"],
             units=_units(ours), comparable=ok, protocol_note=reason)
  value_key = "published" if ok else "published_other_protocol"
  row[value_key], row[value_key + "_std"] = entry.value, entry.std
  return row


def rows(runs: dict[str, dict]) -> list[dict[str, object]]:
  """The papers' rows (published vs ours), then our other results."""
  groups = aggregate(runs)
  table_rows, used = [], set()
  for entry in published.PUBLISHED:
    matched = [key for key, g in sorted(groups.items())
               if comparability.same_quantity(entry.metric, g["metric"])
               and comparability.matches_setting(entry, g["config"])]
    used.update(matched)
    table_rows += ([_row(entry, groups[k]) for k in matched] if matched
                   else [_row(entry, None)])
  for key, g in sorted(groups.items()):
    if key not in used:
      row = dict.fromkeys(COLUMNS)
      row.update(table="Other results", experiment=g["name"],
                 metric=g["metric"], ours_mean=g["mean"], ours_std=g["std"],
                 seeds=g["seeds"], units=_units(g["protocol"]),
                 protocol_note=comparability.describe(g["protocol"]), source="")
      table_rows.append(row)
  return table_rows


def _fmt(v) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "-"
  return f"{v:.4g}"


def _fmt_published(value, std, figure: bool) -> str:
  if value is None:
    return "-"
  # As printed (up to 6 digits), not rounded like our numbers.
  text = f"{value:.6g}" + (f" ± {std:.6g}" if std is not None else "")
  return f"{text} {_FIGURE_MARK}" if figure else text


def markdown(table_rows: list[dict[str, object]]) -> str:
  lines = []
  for table in dict.fromkeys(r["table"] for r in table_rows):
    lines += [f"### {table}", "",
              "| experiment | metric | published | ours (mean) | std | seeds "
              "| units | published (other protocol) | protocol | source |",
              "|---|---|---:|---:|---:|---:|---|---:|---|---|"]
    for r in table_rows:
      if r["table"] != table:
        continue
      figure = bool(r["read_off_figure"])
      cells = [
          r["experiment"], r["metric"],
          _fmt_published(r["published"], r["published_std"], figure),
          _fmt(r["ours_mean"]), _fmt(r["ours_std"]), r["seeds"],
          r["units"] or "",
          _fmt_published(r["published_other_protocol"],
                         r["published_other_protocol_std"], figure),
          r["protocol_note"] or "", r["source"] or ""]
      lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells)
                   + " |")
    lines.append("")
  return "\n".join(lines)


def write_csv(path: str, table_rows: list[dict[str, object]]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(
        {k: ("" if v is None else v) for k, v in r.items()}
        for r in table_rows)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  runs = read_runs(_RUNS.value, _SELECT.value)
  table_rows = rows(runs)
  text = (f"Runs: {len(runs)} with evaluations ({_SELECT.value} evaluation "
          "per run; mean and sample std over seeds). A published number is "
          "in the 'published' column only where its protocol matches ours; "
          "otherwise it is under 'published (other protocol)' with what "
          f"differs. {_FIGURE_MARK}: not printed in the paper, read off a "
          "plot. W1 is in the paper's units where known.\n\n"
          + markdown(table_rows))
  if _OUT.value is None:
    print(text)
    return
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value + ".md", "w") as f:
    f.write(text)
  write_csv(_OUT.value + ".csv", table_rows)
  print(f"Wrote {_OUT.value}.md and {_OUT.value}.csv ({len(runs)} runs).")


if __name__ == "__main__":
  shared.run(main)

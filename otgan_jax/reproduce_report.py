"""The reproduction suite's verdicts and report (see `otgan_jax.reproduce`).

`verdict()` applies a claim's `Check` to the scores over seeds; `report()`
writes `report.md` (per claim: the paper's statement, our protocol, mean +-
std over seeds, published numbers beside ours only where
`evaluation.comparability.comparable` says the protocols match, the verdicts),
`results.csv` and one PNG per claim.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Sequence

import numpy as np

from otgan_jax.reproduce import Check, Claim, Config, Run, Suite
from otgan_jax.reproduce import fmt_time, read_results, write_json


# -- Verdicts ---------------------------------------------------------------


def summary(values: Sequence[float]) -> tuple[float, float, int]:
  """(mean, sample std (0 for one value), count) of finite values."""
  v = np.asarray([x for x in values if x is not None and math.isfinite(x)],
                 np.float64)
  if not len(v):
    return float("nan"), float("nan"), 0
  return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def _better(a, b, higher):
  return a > b if higher else a < b


def _beyond(a: tuple, b: tuple, higher: bool) -> bool:
  """a's mean beats b's even after moving each one std towards the other."""
  (ma, sa, _), (mb, sb, _) = a, b
  return _better(ma - sa if higher else ma + sa,
                 mb + sb if higher else mb - sb, higher)


def verdict(check: Check, scores: dict[str, list[float]]) -> tuple[str, str]:
  """(`reproduced` | `not reproduced` | `inconclusive`, explanation)."""
  higher = check.higher_is_better
  word = "higher" if higher else "lower"
  if check.kind in ("beats", "trend"):
    runs = (check.a, check.b) if check.kind == "beats" else check.runs
    stats = {r: summary(scores.get(r, [])) for r in runs}
    if min(s[2] for s in stats.values()) == 0:
      return "inconclusive", "no finished runs"
    shown = ", ".join(f"{r} {m:.4g} ± {s:.2g}" for r, (m, s, _) in
                      stats.items())
    best, worst = (stats[runs[0]], stats[runs[-1]])
    if check.kind == "trend":
      best, worst = stats[runs[-1]], stats[runs[0]]
      means = [stats[r][0] for r in runs]
      monotone = all(_better(b, a, higher) or b == a
                     for a, b in zip(means, means[1:]))
      shown += "; means " + ("monotone" if monotone else "not monotone")
    else:
      monotone = True
    if min(s[2] for s in stats.values()) < 2:
      return "inconclusive", f"{shown} (one seed: no spread to judge by)"
    if _beyond(best, worst, higher) and monotone:
      return "reproduced", f"{shown} ({word} is better)"
    if _beyond(worst, best, higher):
      return "not reproduced", f"{shown} ({word} is better)"
    return "inconclusive", f"{shown} (within the spread over seeds)"
  values = [x for x in scores.get(check.a, []) if math.isfinite(x)]
  if not values:
    return "inconclusive", "no finished runs"
  ok = (lambda x: x >= check.value) if check.kind == "at_least" else (
      lambda x: x <= check.value)
  op = ">=" if check.kind == "at_least" else "<="
  shown = (f"{check.a}: {', '.join(f'{x:.4g}' for x in values)} (need "
           f"{op} {check.value:g} in every seed)")
  if len(values) < 2:
    return "inconclusive", f"{shown}; one seed"
  if all(ok(x) for x in values):
    return "reproduced", shown
  if not ok(float(np.mean(values))):
    return "not reproduced", shown
  return "inconclusive", shown


# -- Report -----------------------------------------------------------------


def collect(suite: Suite, workdir: str, seeds: Sequence[int]
            ) -> dict[str, dict[str, list[float]]]:
  """metric -> run label -> values over the finished seeds."""
  out: dict[str, dict[str, list[float]]] = {}
  for r in suite.runs:
    for s in seeds:
      res = read_results(workdir, r.label, s)
      if not res:
        continue
      for m, v in res["metrics"].items():
        out.setdefault(m, {}).setdefault(r.label, []).append(float(v))
  return out


def _published_cells(r: Run, config: Config, metric: str,
                     results: dict) -> tuple[str, str]:
  """(comparable published numbers, other-protocol ones with what differs)."""
  # pylint: disable-next=g-import-not-at-top
  from otgan_jax.evaluation import comparability
  # pylint: disable-next=g-import-not-at-top
  from otgan_jax.evaluation import published
  plain = config.to_dict()
  plain["data"].update(dict(r.eval_data))
  evals = dict(plain["evals"], num_samples=r.num_samples,
               num_reference=results.get("num_reference", r.num_reference),
               w1_max_points=max(r.num_samples, r.num_reference))
  ours = comparability.run_protocol(plain, metric, evals=evals,
                                    selection="last")
  same, other = [], []
  for entry in published.entries_for(plain, metric):
    ok, reason = comparability.comparable(ours, entry)
    value = f"{entry.value:g}" + (f" ± {entry.std:g}" if entry.std else "")
    cite = f"{value} ({entry.source})"
    (same if ok else other).append(cite if ok else f"{cite}: {reason}")
  return "; ".join(same) or "—", "; ".join(other) or "—"


def report(suite: Suite, workdir: str, seeds: Sequence[int], *,
           wall_seconds: float | None = None) -> str:
  """Writes report.md, results.csv and the figures; returns report.md."""
  scores = collect(suite, workdir, seeds)
  figures = os.path.join(workdir, "figures")
  os.makedirs(figures, exist_ok=True)
  lines = [f"# Reproduction suite {suite.name!r}", "",
           f"Seeds: {', '.join(map(str, seeds))}. Mean ± sample std over "
           "the finished seeds (n). Verdict rules are fixed in advance: "
           "'reproduced' only where the ordering holds beyond the spread "
           "over seeds.", ""]
  timing = os.path.join(workdir, "wall_time.json")
  if wall_seconds is not None:
    lines += [f"Wall time of this invocation: {fmt_time(wall_seconds)}.",
              ""]
    write_json(timing, {"seconds": wall_seconds, "seeds": list(seeds)})
  elif os.path.exists(timing):  # --report_only: the last training call's.
    with open(timing, encoding="utf-8") as f:
      last = json.load(f)
    lines += [f"Wall time of the last invocation that trained (seeds "
              f"{', '.join(map(str, last['seeds']))}): "
              f"{fmt_time(last['seconds'])}.", ""]
  rows = []
  for claim in suite.claims:
    lines += [f"## {claim.title}", "", f"**Paper.** {claim.paper}", "",
              f"**Our protocol.** {claim.protocol}", ""]
    metrics = sorted({c.metric for c in claim.checks} | set(claim.shown))
    lines += ["| run | metric | ours: mean ± std (n) | published, same "
              "protocol | published, other protocol |",
              "|---|---|---|---|---|"]
    for label in claim.runs:
      r = suite.run(label)
      first = next((read_results(workdir, label, s) for s in seeds
                    if read_results(workdir, label, s)), None)
      for m in metrics:
        mean, std, n = summary(scores.get(m, {}).get(label, []))
        if not n and m in claim.shown:
          continue  # A shown metric this run does not have (no modes).
        same, other = ("—", "—")
        if first is not None:
          config = r.make_config(seeds[0])
          same, other = _published_cells(r, config, m, first)
        lines.append(f"| {label} | {m} | {mean:.4g} ± {std:.2g} ({n}) | "
                     f"{same} | {other} |")
    lines.append("")
    for check in claim.checks:
      word, why = verdict(check, scores.get(check.metric, {}))
      lines.append(f"- **Verdict: {word}** ({check.metric}): {why}")
    lines += ["", f"![{claim.key}](figures/{claim.key}.png)", ""]
    _plot(claim, suite, scores, metrics, os.path.join(
        figures, f"{claim.key}.png"))
  for r in suite.runs:
    for s in seeds:
      res = read_results(workdir, r.label, s)
      if res:
        for m, v in sorted(res["metrics"].items()):
          rows.append({"run": r.label, "seed": s, "metric": m, "value": v,
                       "step": res["step"], "seconds": res["seconds"]})
  with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, ["run", "seed", "metric", "value", "step",
                                "seconds"])
    writer.writeheader()
    writer.writerows(rows)
  text = "\n".join(lines) + "\n"
  tmp = os.path.join(workdir, "report.md.tmp")
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, os.path.join(workdir, "report.md"))
  return text


def _plot(claim: Claim, suite: Suite, scores, metrics, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4),
                           squeeze=False)
  for ax, m in zip(axes[0], metrics):
    stats = [summary(scores.get(m, {}).get(label, [])) for label in
             claim.runs]
    means = [s[0] for s in stats]
    stds = [s[1] for s in stats]
    if claim.plot_x:
      xs = [suite.run(label).x for label in claim.runs]
      ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3)
      ax.set_xscale("log", base=2)
      ax.set_xlabel(claim.plot_x)
    else:
      ax.bar(range(len(means)), means, yerr=stds, capsize=3)
      ax.set_xticks(range(len(means)), claim.runs, rotation=30, ha="right",
                    fontsize=8)
    ax.set_title(m, fontsize=9)
  fig.suptitle(claim.title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)

"""The papers' claims in miniature: a suite of runs, their scores, verdicts.

A suite (defined in `configs/reproduce.py`, the only place that names
methods) is a list of `Claim`s over named `Run`s. Each run is trained for
every seed into `<workdir>/runs/<label>/seed_<k>` with the ordinary loop
(`train.train_and_evaluate`: it resumes from its own checkpoints), then its
latest checkpoint's EMA generator is scored once (`Run.metrics`, against
held-out data where `Run.eval_data` says so) into `results.json` in that
folder. A run with `results.json` is finished and never rerun, so the suite
resumes where it stopped. Progress lines give the elapsed time and an ETA
from the runs measured so far. With `jobs` above 1 the runs go to separate
processes, each pinned to its own CPUs (`run_suite`), and every run's log is
`log.txt` in its folder.

`otgan_jax.reproduce_report` then judges the claims and writes `report.md`
(per claim: what the paper says, the protocol of our numbers, mean +- std
over seeds, the published number beside ours only when
`evaluation.comparability.comparable` says the protocols match and otherwise in
its own column with what differs, and a verdict), `results.csv` (one row per
run, seed and metric) and one PNG per claim.

Verdicts are decided by rules fixed before any run (`Check`): "reproduced"
only where the ordering holds beyond the spread over seeds (mean - std of the
better side beyond mean + std of the other), "not reproduced" where the
opposite ordering holds beyond the spread, otherwise "inconclusive at this
scale"; with one seed there is no spread and every verdict is inconclusive.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import queue
import subprocess
import threading
import time
from typing import Any, Callable, Sequence

from absl import logging
import jax
import ml_collections
import numpy as np

Config = ml_collections.ConfigDict


@dataclasses.dataclass(frozen=True)
class Run:
  """One configuration trained for every seed and scored once at its end.

  Attributes:
    label: Folder name and row label (unique in the suite).
    make_config: `seed -> ConfigDict` (the seed already set).
    metrics: `config.evals.metrics` names to score (see `evaluators`), plus
      "requested_class" for conditional generators (the share of samples
      the data set's pinned classifier puts in the class they were
      generated for).
    num_samples: Generated samples scored.
    eval_data: Overrides of `config.data` for the real data the metrics
      compare with (e.g. `{"split": "test"}` for held-out images); empty =
      the training data.
    num_reference: Real examples for the metrics (capped at the data set).
    x: The value this run takes on its claim's x-axis (e.g. its batch
      size), or None.
  """
  label: str
  make_config: Callable[[int], Config]
  metrics: tuple[str, ...]
  num_samples: int = 2500
  eval_data: tuple[tuple[str, Any], ...] = ()
  num_reference: int = 2500
  x: float | None = None


@dataclasses.dataclass(frozen=True)
class Check:
  """A rule that turns the seeds' scores into a verdict.

  kind "beats": run `a` has a better `metric` than run `b`.
  kind "at_least" / "at_most": run `a`'s metric is >= / <= `value` in every
    seed (reproduced), or its mean is on the wrong side (not reproduced).
  kind "trend": along `runs` (in x order) the metric gets better: the
    last beats the first beyond the spread and the means are monotone.
  """
  kind: str
  metric: str
  a: str = ""
  b: str = ""
  value: float = 0.0
  runs: tuple[str, ...] = ()
  higher_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class Claim:
  """A claim of a paper and the runs and rules that test it."""
  key: str
  title: str
  paper: str        # where the claim is made, and what it says
  protocol: str     # what our runs do, including what differs from the paper
  runs: tuple[str, ...]
  checks: tuple[Check, ...]
  plot_x: str = ""  # x-axis label of a line plot over Run.x; "" = bars
  shown: tuple[str, ...] = ()  # metrics reported beside the checked ones, not judged


@dataclasses.dataclass(frozen=True)
class Suite:
  name: str
  runs: tuple[Run, ...]
  claims: tuple[Claim, ...]

  def run(self, label: str) -> Run:
    for r in self.runs:
      if r.label == label:
        return r
    raise KeyError(label)


# -- Running ----------------------------------------------------------------


def run_dir(workdir: str, label: str, seed: int) -> str:
  return os.path.join(workdir, "runs", label, f"seed_{seed}")


def results_file(workdir: str, label: str, seed: int) -> str:
  return os.path.join(run_dir(workdir, label, seed), "results.json")


def read_results(workdir: str, label: str, seed: int) -> dict | None:
  """A finished run's scores, or None if it has not finished.

  Raises:
    ValueError: the file is unreadable, with what to do.
  """
  path = results_file(workdir, label, seed)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
    if not isinstance(record, dict) or "metrics" not in record:
      raise ValueError("no 'metrics'")
    return record
  except (OSError, ValueError) as e:
    raise ValueError(
        f"{path} is unreadable ({type(e).__name__}: {e}): delete it to score "
        "that run again (its checkpoints are kept), then rerun.") from e


def write_json(path: str, value: Any) -> None:
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def fmt_time(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
  if seconds >= 60:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds}s"


def check_suite(suite: Suite) -> None:
  """Raises ValueError if the suite refers to runs it does not define."""
  labels = [r.label for r in suite.runs]
  if len(set(labels)) != len(labels):
    raise ValueError(f"Suite {suite.name!r} has repeated run labels.")
  for claim in suite.claims:
    for label in claim.runs + tuple(
        x for c in claim.checks for x in (c.a, c.b) + c.runs if x):
      if label not in labels:
        raise ValueError(f"Claim {claim.key!r} names an unknown run "
                         f"{label!r}.")


def run_one(suite: Suite, workdir: str, label: str, seed: int, *,
            train_fn: Callable[[Config, str], Any] | None = None) -> dict:
  """Trains one (run, seed) (resuming its checkpoints), scores it, saves it.

  Returns:
    The record written to its `results.json` ("seconds" included).
  """
  if train_fn is None:
    from otgan_jax import train  # pylint: disable=g-import-not-at-top
    # A signal stops the suite at the run it is in: that run is saved,
    # not scored (its results.json would mark it finished).
    train_fn = functools.partial(train.train_and_evaluate,
                                 raise_on_signal=True)
  r = suite.run(label)
  folder = run_dir(workdir, label, seed)
  t0 = time.time()
  config = r.make_config(seed)
  config.seed = seed
  state = train_fn(config, folder)
  reached = getattr(state, "step", None)
  if reached is not None and int(reached) < config.total_steps:
    raise RuntimeError(
        f"run {label} seed {seed} ended at step {int(reached)} of "
        f"{config.total_steps}: not scored; rerun the same command to resume "
        "it.")
  results = evaluate_run(r, config, folder)
  results["seconds"] = time.time() - t0
  write_json(results_file(workdir, label, seed), results)
  return results


def cpu_groups(jobs: int) -> list[list[int]]:
  """This process's CPUs split into `jobs` disjoint groups (at most one per CPU)."""
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(
      os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
  jobs = max(1, min(jobs, len(cpus)))
  return [cpus[i::jobs] for i in range(jobs)]


def run_suite(suite: Suite, workdir: str, seeds: Sequence[int], *,
              train_fn: Callable[[Config, str], Any] | None = None,
              printer: Callable[[str], None] = print, jobs: int = 1,
              spawn: Callable[[str, int, list[int], str], Any] | None = None
              ) -> dict[str, float]:
  """Trains and scores every (run, seed) not finished yet.

  Seeds go in the outer loop, so an interrupted suite has whole seeds of
  every claim done first.

  Args:
    suite: The suite.
    workdir: Its folder.
    seeds: The seeds.
    train_fn: `(config, run_dir) -> state`; default
      `train.train_and_evaluate`. Used when `jobs` is 1.
    printer: Where progress lines go.
    jobs: Runs at once. Above 1, each run is a separate process made by
      `spawn`, pinned to its own share of this process's CPUs
      (`cpu_groups`): small networks use two cores poorly, so two
      one-core runs finish sooner than the same two runs one after the
      other on both cores.
    spawn: `(label, seed, cpus, log_path) -> subprocess.Popen` that runs
      `run_one` for that (run, seed) on those CPUs; required when `jobs`
      is above 1.

  Returns:
    Seconds taken per `label/seed` for the runs done by this call.

  Raises:
    RuntimeError: a spawned run failed (the others are stopped; every
      finished run is kept), naming its log.
  """
  check_suite(suite)
  todo = [(r, s) for s in seeds for r in suite.runs]
  done = {(r.label, s): read_results(workdir, r.label, s) for r, s in todo}
  measured = {k: v["seconds"] for k, v in done.items() if v}
  pending = [(r, s) for r, s in todo if not done[(r.label, s)]]
  groups = cpu_groups(jobs) if jobs > 1 else [[]]
  if len(groups) > 1 and spawn is None:
    raise ValueError("run_suite(jobs > 1) needs `spawn`.")
  printer(f"Suite {suite.name!r}: {len(todo)} runs ({len(suite.runs)} "
          f"configs x {len(seeds)} seeds), {len(todo) - len(pending)} "
          f"already finished, {len(pending)} to go, in {workdir}"
          + (f"; {len(groups)} at a time, on CPUs {groups}"
             if len(groups) > 1 else ""))
  start = time.time()
  timings = {}
  finished = []

  def report_progress(label, seed, seconds):
    measured[(label, seed)] = timings[f"{label}/{seed}"] = seconds
    finished.append((label, seed))
    left = [q.label for q, s in pending if (q.label, s) not in finished]
    eta = sum(_estimate(measured, l) for l in left) / len(groups)
    printer(f"[{len(todo) - len(pending) + len(finished)}/{len(todo)}] "
            f"{label} seed {seed}: {fmt_time(seconds)}; elapsed "
            f"{fmt_time(time.time() - start)}, ETA {fmt_time(eta)}")

  if len(groups) == 1:
    for r, seed in pending:
      results = run_one(suite, workdir, r.label, seed, train_fn=train_fn)
      report_progress(r.label, seed, results["seconds"])
  else:
    _run_parallel(suite, workdir, pending, groups, spawn, report_progress)
  return timings


CPUS_ENV = "OTGAN_JAX_CPUS"


def subprocess_spawner(command: Sequence[str], cwd: str | None = None
                       ) -> Callable[[str, int, list[int], str], Any]:
  """A `run_suite` spawn: `command + ["--run=LABEL:SEED"]` on given CPUs.

  Args:
    command: The launcher that runs one (run, seed) given `--run`, e.g.
      `python -m launch.reproduce --suite=cpu --workdir=DIR`. It must call
      `pin_to_cpus()` before JAX starts its backend.
    cwd: Its working folder.
  """
  def spawn(label, seed, cpus, log_path):
    env = dict(os.environ)
    if cpus:
      env[CPUS_ENV] = ",".join(map(str, cpus))
    with open(log_path, "ab") as log:
      return subprocess.Popen(
          list(command) + [f"--run={label}:{seed}"], cwd=cwd, env=env,
          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
  return spawn


def pin_to_cpus() -> None:
  """Pins this process to the CPUs `subprocess_spawner` chose, if any.

  Call before JAX's first computation: XLA sizes its CPU thread pool from
  the CPUs this process may use.
  """
  cpus = os.environ.get(CPUS_ENV)
  if cpus and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def _run_parallel(suite, workdir, pending, groups, spawn, report_progress):
  """`pending` in subprocesses, one per CPU group at a time."""
  del suite
  free = queue.Queue()
  for g in groups:
    free.put(g)
  lock = threading.Lock()
  procs, failures, threads = [], [], []

  def work(label, seed, cpus):
    try:
      log_path = os.path.join(run_dir(workdir, label, seed), "log.txt")
      os.makedirs(os.path.dirname(log_path), exist_ok=True)
      with lock:
        if failures:
          return
        proc = spawn(label, seed, cpus, log_path)
        procs.append(proc)
      code = proc.wait()
      record = None if code else read_results(workdir, label, seed)
      with lock:
        if record is None:
          failures.append(f"run {label} seed {seed} failed (exit {code}); "
                          f"its log: {log_path}")
        else:
          report_progress(label, seed, record["seconds"])
    except Exception as e:  # pylint: disable=broad-except
      with lock:  # E.g. an unreadable results.json: stop, say which.
        failures.append(f"run {label} seed {seed}: {e}")
    finally:
      free.put(cpus)

  try:
    for r, seed in pending:
      cpus = free.get()
      with lock:
        if failures:
          free.put(cpus)
          break
      t = threading.Thread(target=work, args=(r.label, seed, cpus),
                           daemon=True)
      t.start()
      threads.append(t)
    for t in threads:
      t.join()
  except BaseException:  # Ctrl-C / SIGTERM: stop the runs; they checkpoint.
    with lock:
      failures.append("interrupted")
      for p in procs:
        if p.poll() is None:
          p.terminate()
    for p in procs:
      p.wait()
    raise
  if failures:
    raise RuntimeError(failures[0] + " (finished runs are kept; rerun the "
                       "same command to resume)")


def _estimate(measured: dict[tuple[str, int], float], label: str) -> float:
  """Seconds one more run of `label` should take, from those measured."""
  same = [v for (l, _), v in measured.items() if l == label]
  pool = same or list(measured.values())
  return float(np.mean(pool)) if pool else 0.0


def evaluate_run(r: Run, config: Config, folder: str) -> dict:
  """Scores the latest checkpoint of one run (its EMA generator)."""
  # pylint: disable=g-import-not-at-top
  from otgan_jax import data as data_lib
  from otgan_jax import sampling
  from otgan_jax.evaluation import classifier
  from otgan_jax.evaluation import evaluators
  # pylint: enable=g-import-not-at-top
  exp, state, step = sampling.restore_run(folder, config=config,
                                          with_data=True)
  samples = exp.sample(state.ema_params, r.num_samples, jax.random.key(
      config.seed + 10_000))
  data_config = config.data.copy_and_resolve_references()
  with data_config.unlocked():
    for key, value in r.eval_data:
      data_config[key] = value
  source = data_lib.build_source(data_config, seed=config.seed)
  evals = config.evals.copy_and_resolve_references()
  names = [m for m in r.metrics if m != "requested_class"]
  evals.metrics = ",".join(names)
  evals.num_reference = r.num_reference
  evals.w1_max_points = max(r.num_samples, r.num_reference)
  out: dict[str, Any] = {"step": int(step), "metrics": {}}
  if names:
    evaluator = evaluators.Evaluator(evals, info=source.info,
                                     data_config=data_config, source=source)
    out["metrics"].update(evaluator(samples))
  if "requested_class" in r.metrics:
    model, params = classifier.load_pretrained(exp.info.name)
    images = evaluators.to_uint8(samples, exp.info)
    probs, _ = classifier.predict(
        model, params, images,
        shape=classifier.PRETRAINED[exp.info.name]["shape"])
    out["metrics"]["requested_class"] = classifier.requested_class_accuracy(
        probs, config.model.num_classes)
  out["num_reference"] = int(min(r.num_reference, getattr(
      source, "info").num_examples or r.num_reference))
  out["eval_data"] = dict(r.eval_data)
  logging.info("%s: %s", folder, out["metrics"])
  return out

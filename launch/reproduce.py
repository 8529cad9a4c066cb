r"""Reproduces the papers' claims in miniature and writes a report.

  python -m launch.reproduce --suite=cpu --workdir=runs/reproduce
  python -m launch.reproduce --suite=cpu --workdir=/tmp/quick --seeds=1
  python -m launch.reproduce --suite=cpu --workdir=runs/reproduce --report_only

Trains every run of the suite (`configs/reproduce.py:get_suite`) for seeds
0..K-1, scores each once, and writes `<workdir>/report.md` (the claims, our
numbers with their protocol, the published ones where comparable, a verdict
per claim), `results.csv` and `figures/*.png`. Rerunning the same command
resumes: finished runs are kept, an interrupted one resumes from its
checkpoint. Progress lines show the elapsed time and an ETA.

On the CPU, `--jobs` (default: one per core) runs that many runs at once, each
a process pinned to its own cores with its log in `runs/<label>/seed_<k>/
log.txt`; the small networks here use two cores poorly, so this finishes the
suite sooner. Runs of one configuration share an XLA compilation cache in
`<workdir>/.jax_cache` (or $JAX_COMPILATION_CACHE_DIR).
"""

import importlib
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging

from launch import shared

_SUITE = flags.DEFINE_string(
    "suite", "cpu", "Suite name passed to configs/reproduce.py:get_suite "
    "(cpu | test).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder (required).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per run: 0..K-1.")
_JOBS = flags.DEFINE_integer(
    "jobs", 0, "Runs at once, each a process pinned to its share of the "
    "CPUs. 0: one per CPU core (at most 8) when JAX runs on the CPU, else 1.")
_RUN = flags.DEFINE_string(
    "run", None, "Internal (what --jobs starts): train and score the one run "
    "LABEL:SEED, write its results.json, and stop.")
_REPORT_ONLY = flags.DEFINE_bool(
    "report_only", False, "Write the report from the finished runs; train "
    "nothing.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required.")
  if _SEEDS.value < 1:
    raise app.UsageError(f"--seeds must be at least 1, got {_SEEDS.value}.")
  if _JOBS.value < 0:
    raise app.UsageError(f"--jobs must be at least 0 (0: one per CPU core), "
                         f"got {_JOBS.value}.")
  shared.quiet_libraries()
  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from otgan_jax import reproduce
  from otgan_jax import reproduce_report
  # pylint: enable=g-import-not-at-top
  reproduce.pin_to_cpus()  # A --jobs run: before JAX starts its backend.
  # Runs of one configuration (other seeds, a resumed run) compile once.
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
      os.path.abspath(_WORKDIR.value), ".jax_cache"))
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_compilation_cache_dir",
                    os.environ["JAX_COMPILATION_CACHE_DIR"])
  start = time.time()

  def say(line):
    print(line, flush=True)
    logging.info("%s", line)

  # Bad input ends in one line (shared.run), without a traceback.
  suite = importlib.import_module("configs.reproduce").get_suite(
      _SUITE.value)
  seeds = list(range(_SEEDS.value))
  if os.path.exists(_WORKDIR.value) and not os.path.isdir(_WORKDIR.value):
    raise ValueError(f"--workdir={_WORKDIR.value} is a file, not a folder: "
                     "give a new or existing folder.")
  if _RUN.value:
    label, _, seed = _RUN.value.rpartition(":")
    reproduce.run_one(suite, _WORKDIR.value, label, int(seed))
    return
  if not _REPORT_ONLY.value:
    os.makedirs(_WORKDIR.value, exist_ok=True)
    jobs = _JOBS.value or (min(8, len(reproduce.cpu_groups(1 << 10)))
                           if jax.default_backend() == "cpu" else 1)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spawn = reproduce.subprocess_spawner(
        [sys.executable, "-m", "launch.reproduce", f"--suite={_SUITE.value}",
         f"--workdir={os.path.abspath(_WORKDIR.value)}"], cwd=root)
    reproduce.run_suite(suite, _WORKDIR.value, seeds, printer=say, jobs=jobs,
                        spawn=spawn)
  elif not os.path.isdir(_WORKDIR.value):
    raise FileNotFoundError(f"--workdir={_WORKDIR.value} does not exist: "
                            "--report_only reads a suite's finished runs.")
  reproduce_report.report(suite, _WORKDIR.value, seeds,
                          wall_seconds=None if _REPORT_ONLY.value else
                          time.time() - start)
  say(f"Wrote {os.path.join(_WORKDIR.value, 'report.md')} in "
      f"{time.time() - start:.0f} s")


if __name__ == "__main__":
  shared.run(main, interrupted="interrupted: finished runs are kept; rerun "
             "the same command to resume")

"""The reproduction suite: runs, scores, resumes, verdicts and the report."""

import csv
import functools
import os
import signal
import types

import pytest

from configs import common
from configs import reproduce as suites
from otgan_jax import checkpointing
from otgan_jax import methods
from otgan_jax import reproduce
from otgan_jax import reproduce_report
from otgan_jax import train
from otgan_jax.reproduce import Check
from otgan_jax.reproduce import Claim
from otgan_jax.reproduce import Run
from otgan_jax.reproduce import Suite
import child_processes  # tests/child_processes.py


def _keys(c, prefix=""):
  out = set()
  for k, v in c.items():
    out |= _keys(v, f"{prefix}{k}.") if hasattr(v, "items") else {prefix + k}
  return out


@pytest.mark.parametrize("name", ["cpu", "test"])
def test_every_suite_run_is_a_valid_config(name):
  suite = suites.get_suite(name)
  reproduce.check_suite(suite)
  for r in suite.runs:
    c = r.make_config(0)
    assert _keys(c) == _keys(common.get_config()), r.label
    methods.check_sections(c)
  # The tiny suite is the same suite: same runs and claims, fewer steps.
  cpu, test = suites.get_suite("cpu"), suites.get_suite("test")
  assert [c.key for c in cpu.claims] == [c.key for c in test.claims]
  assert len(cpu.runs) - len(test.runs) == 2  # 4 batch sizes instead of 2


def _tiny_suite():
  ring = functools.partial(suites.ring_otgan_frozen, steps=4, freeze=2)
  gan = functools.partial(suites.ring_gan_frozen, steps=4, freeze=2)
  runs = (Run("otgan", ring, ("modes", "reverse_kl"), num_samples=500,
              num_reference=500),
          Run("gan", gan, ("modes", "reverse_kl"), num_samples=500,
              num_reference=500))
  claim = Claim("frozen", "Frozen critic", "the paper says", "we do",
                ("otgan", "gan"),
                (Check("beats", "modes/covered", a="otgan", b="gan"),))
  return Suite("tiny", runs, (claim,))


def test_the_suite_trains_scores_reports_and_resumes(tmp_path):
  suite, workdir = _tiny_suite(), str(tmp_path)
  trained = []

  def train_fn(config, folder):
    trained.append(folder)
    return train.train_and_evaluate(config, folder)

  lines = []
  reproduce.run_suite(suite, workdir, [0], train_fn=train_fn,
                      printer=lines.append)
  assert len(trained) == 2 and "ETA" in lines[-1]
  for label in ("otgan", "gan"):
    result = reproduce.read_results(workdir, label, 0)
    assert result["step"] == 4
    assert set(result["metrics"]) >= {"modes/covered",
                                      "reverse_kl/parzen_0.1"}
  text = reproduce_report.report(suite, workdir, [0])
  assert "Verdict: inconclusive" in text and "one seed" in text
  assert os.path.exists(tmp_path / "figures" / "frozen.png")
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert {r["run"] for r in rows} == {"otgan", "gan"}
  # A second call trains nothing; an interrupted run (no results.json yet)
  # is trained again, resuming from its own checkpoints.
  os.remove(reproduce.results_file(workdir, "gan", 0))
  trained.clear()
  reproduce.run_suite(suite, workdir, [0], train_fn=train_fn,
                      printer=lines.append)
  assert trained == [reproduce.run_dir(workdir, "gan", 0)]
  assert "1 already finished, 1 to go" in lines[-2]


def test_a_run_stopped_by_a_signal_is_saved_not_scored(tmp_path,
                                                         monkeypatch):
  # Before: train_and_evaluate saved the step a signal (or a preemption)
  # stopped at and returned, and run_one scored that unfinished run and
  # wrote its results.json, so the suite kept it as finished. Now the suite
  # stops there, and the same command resumes the run from its checkpoint.
  suite, workdir = _tiny_suite(), str(tmp_path)
  monkeypatch.setattr(checkpointing.Checkpointer, "reached_preemption",
                      lambda self, step: step == 2)
  with pytest.raises(train.StoppedBySignal, match="stopped at step 2") as e:
    reproduce.run_suite(suite, workdir, [0], printer=lambda line: None)
  assert e.value.signum == signal.SIGTERM
  assert reproduce.read_results(workdir, "otgan", 0) is None
  monkeypatch.undo()
  reproduce.run_suite(suite, workdir, [0], printer=lambda line: None)
  assert reproduce.read_results(workdir, "otgan", 0)["step"] == 4
  # A train_fn that returns an unfinished state is not scored either.
  with pytest.raises(RuntimeError, match="ended at step 1 of 4: not scored"):
    reproduce.run_one(suite, str(tmp_path / "other"), "gan", 0,
                      train_fn=lambda c, f: types.SimpleNamespace(step=1))


def test_verdicts_need_the_ordering_beyond_the_spread():
  beats = Check("beats", "m", a="a", b="b", higher_is_better=False)
  assert reproduce_report.verdict(beats, {"a": [1.0, 1.1, 0.9],
                                   "b": [2.0, 2.1, 1.9]})[0] == "reproduced"
  assert reproduce_report.verdict(beats, {"a": [2.0, 2.1, 1.9],
                                   "b": [1.0, 1.1, 0.9]})[0] == (
                                       "not reproduced")
  assert reproduce_report.verdict(beats, {"a": [1.0, 2.0, 1.5],
                                   "b": [1.6, 1.4, 1.7]})[0] == "inconclusive"
  assert reproduce_report.verdict(beats, {"a": [1.0], "b": [2.0]})[0] == (
      "inconclusive")
  trend = Check("trend", "m", runs=("x", "y", "z"))
  up = {"x": [1.0, 1.1], "y": [2.0, 2.1], "z": [3.0, 3.1]}
  assert reproduce_report.verdict(trend, up)[0] == "reproduced"
  up["y"] = [5.0, 5.1]  # Not monotone: not "reproduced".
  assert reproduce_report.verdict(trend, up)[0] == "inconclusive"
  floor = Check("at_least", "m", a="a", value=8)
  assert reproduce_report.verdict(floor, {"a": [8, 8, 8]})[0] == "reproduced"
  assert reproduce_report.verdict(floor, {"a": [8, 5, 4]})[0] == (
      "not reproduced")
  # Not in every seed, mean on the wrong side: not reproduced.
  assert reproduce_report.verdict(floor, {"a": [8, 8, 7]})[0] == (
      "not reproduced")
  share = Check("at_least", "m", a="a", value=0.5)
  assert reproduce_report.verdict(share, {"a": [0.6, 0.6, 0.45]})[0] == (
      "inconclusive")  # Mean above, one seed below.


def _launcher(workdir):
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return reproduce.subprocess_spawner(
      [sys.executable, "-m", "launch.reproduce", "--suite=test",
       f"--workdir={workdir}"], cwd=root)


def test_parallel_runs_are_pinned_processes_and_failures_name_their_log(
    tmp_path):
  # Two runs of the test suite at once through the launcher's --run mode,
  # each pinned to its own CPU group: both finish with their own log.
  if len(reproduce.cpu_groups(2)) < 2:
    pytest.skip("one CPU: runs go one at a time")
  full = suites.get_suite("test")
  labels = ("ring_gan_frozen", "ring_wgangp")
  suite = Suite("test", tuple(full.run(l) for l in labels), ())
  workdir = str(tmp_path / "suite")
  lines = []
  reproduce.run_suite(suite, workdir, [0], printer=lines.append, jobs=2,
                      spawn=_launcher(workdir))
  for label in labels:
    assert reproduce.read_results(workdir, label, 0)["step"] == 4
    log = os.path.join(reproduce.run_dir(workdir, label, 0), "log.txt")
    assert os.path.getsize(log) > 0
  assert "at a time" in lines[0] and "ETA" in lines[-1]
  # A run whose process fails stops the suite with one line naming its log;
  # the finished runs stay finished.
  import sys  # pylint: disable=g-import-not-at-top
  failing = reproduce.subprocess_spawner(
      [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
  os.remove(reproduce.results_file(workdir, "ring_wgangp", 0))
  with pytest.raises(RuntimeError, match=r"ring_wgangp seed 0 failed "
                     r"\(exit 3\); its log: .*log.txt"):
    reproduce.run_suite(suite, workdir, [0], printer=lines.append, jobs=2,
                        spawn=failing)
  assert reproduce.read_results(workdir, "ring_gan_frozen", 0)


def test_a_spawned_run_pins_itself_to_its_cpus():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  if not hasattr(os, "sched_getaffinity"):
    pytest.skip("no CPU affinity on this platform")
  cpu = min(os.sched_getaffinity(0))
  out = subprocess.run(
      [sys.executable, "-c", "import os; from otgan_jax import reproduce; "
       "reproduce.pin_to_cpus(); print(sorted(os.sched_getaffinity(0)))"],
      env=child_processes.child_env(**{reproduce.CPUS_ENV: str(cpu)}),
      capture_output=True, text=True, check=True, timeout=120,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.stdout.strip().splitlines()[-1] == f"[{cpu}]"
  assert reproduce.cpu_groups(1) == [sorted(os.sched_getaffinity(0))]

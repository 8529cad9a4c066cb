"""Every launcher, given bad input: one line on stderr, no traceback, exit 1.

Each program runs as a user runs it (`python -m launch.<name>`, a subprocess
with a timeout) against: a bad flag, a missing workdir, a workdir that is a
file, and an unreadable file where the program reads one. None may write
into a workdir it was given (sampling and evaluation only read).
"""

import json
import os
import shutil

import pytest

from configs import test as test_config
from otgan_jax import train
import child_processes  # tests/child_processes.py


def _one_line_error(proc, *needles):
  """Exit 1, exactly one non-log line on stderr, saying `needles`."""
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
  for bad in ("Traceback", "Exception ignored", "Event loop is closed"):
    assert bad not in proc.stderr, proc.stderr[-3000:]
  lines = child_processes.messages(proc.stderr)
  assert len(lines) == 1, proc.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


def _snapshot(folder):
  """{relative path: (size, mtime)} of every file and folder under it."""
  out = {}
  for root, dirs, files in os.walk(folder):
    for name in dirs + files:
      path = os.path.join(root, name)
      st = os.stat(path)
      out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
  return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """A finished 2-step run of configs/test.py:gaussians (read-only use)."""
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  c = test_config.get_config("gaussians")
  c.total_steps = 2
  train.train_and_evaluate(c, workdir)
  return workdir


LAUNCHERS = ("launch.train", "launch.sample", "launch.evaluate",
             "launch.tables", "launch.reproduce")


@pytest.mark.parametrize("module", LAUNCHERS)
def test_a_bad_flag_is_one_line(module, cli):
  proc = cli(module, "--no_such_flag=1", check=False)
  _one_line_error(proc, "no_such_flag", "--helpshort")


def test_a_misspelt_config_key_is_one_line_with_the_suggestion(tmp_path, cli):
  proc = cli("launch.train", "--config=configs/test.py",
             "--config.otgan.n_genn=2", f"--workdir={tmp_path}/run",
             check=False)
  _one_line_error(proc, "n_genn", 'Did you mean "n_gen"')
  assert not os.path.exists(tmp_path / "run")


def test_a_config_file_that_does_not_load_is_one_line(tmp_path, cli):
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(:\n")
  for path in (str(broken), str(tmp_path / "missing.py")):
    proc = cli("launch.train", f"--config={path}",
               f"--workdir={tmp_path}/run", check=False)
    _one_line_error(proc, "--config")
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("module", ["launch.sample", "launch.evaluate",
                                    "launch.reproduce"])
def test_a_missing_workdir_is_one_line_and_is_not_created(module, tmp_path,
                                                         cli):
  missing = tmp_path / "missing"
  args = [f"--workdir={missing}"]
  if module == "launch.evaluate":
    args.append("--metrics=w1")
  if module == "launch.reproduce":
    args.append("--report_only")
  proc = cli(module, *args, check=False)
  _one_line_error(proc, str(missing))
  assert not os.path.exists(missing)


def test_tables_with_a_missing_run_folder_is_one_line(tmp_path, cli):
  proc = cli("launch.tables", f"--runs={tmp_path}/missing",
             check=False)
  _one_line_error(proc, "missing", "does not exist")


@pytest.mark.parametrize("module", ["launch.train", "launch.sample",
                                    "launch.evaluate", "launch.reproduce"])
def test_a_workdir_that_is_a_file_is_one_line(module, tmp_path, cli):
  afile = tmp_path / "afile"
  afile.write_text("not a folder")
  args = [f"--workdir={afile}"]
  if module == "launch.train":
    args.append("--config=configs/test.py:gaussians")
  if module == "launch.evaluate":
    args.append("--metrics=w1")
  proc = cli(module, *args, check=False)
  _one_line_error(proc, str(afile))
  assert afile.read_text() == "not a folder"


def test_sample_and_evaluate_of_a_run_without_checkpoints_change_nothing(
    finished_run, tmp_path, cli):
  workdir = str(tmp_path / "run")
  shutil.copytree(finished_run, workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints"))
  before = _snapshot(workdir)
  _one_line_error(cli("launch.sample", f"--workdir={workdir}",
                      check=False), "checkpoint")
  _one_line_error(cli("launch.evaluate", f"--workdir={workdir}",
                      "--metrics=w1", check=False), "checkpoint")
  assert _snapshot(workdir) == before  # No empty checkpoints/ either.


@pytest.mark.parametrize("name", ["config.json", "dataset_info.json"])
def test_an_unreadable_run_file_is_one_line(finished_run, tmp_path, name,
                                           cli):
  workdir = str(tmp_path / "run")
  shutil.copytree(finished_run, workdir)
  with open(os.path.join(workdir, name), "w") as f:
    f.write("{not json")
  before = _snapshot(workdir)
  # launch.evaluate rebuilds the data, so it reads no dataset_info.json.
  for module in ("launch.sample", "launch.evaluate")[:2 if name ==
                                                     "config.json" else 1]:
    args = [f"--workdir={workdir}", f"--out={tmp_path}/out.npz"]
    if module == "launch.evaluate":
      args = [f"--workdir={workdir}", "--metrics=w1",
              f"--out={tmp_path}/out.json"]
    _one_line_error(cli(module, *args, check=False), name)
  assert _snapshot(workdir) == before


def test_tables_with_an_unreadable_evaluation_is_one_line(tmp_path, cli):
  run = tmp_path / "run" / "eval"
  run.mkdir(parents=True)
  (run / "step_5.json").write_text("{truncated")
  proc = cli("launch.tables", f"--runs={tmp_path}/run",
             f"--out={tmp_path}/tables", check=False)
  _one_line_error(proc, "step_5.json", "unreadable")
  (run / "step_5.json").write_text(json.dumps({"not": "an evaluation"}))
  proc = cli("launch.tables", f"--runs={tmp_path}/run",
             f"--out={tmp_path}/tables", check=False)
  _one_line_error(proc, "step_5.json", "lacks")


def test_reproduce_with_an_unreadable_result_is_one_line(tmp_path, cli):
  from otgan_jax import reproduce  # pylint: disable=g-import-not-at-top
  path = reproduce.results_file(str(tmp_path), "ring_otgan_frozen", 0)
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    f.write("{truncated")
  proc = cli("launch.reproduce", "--suite=test",
             f"--workdir={tmp_path}", "--seeds=1", "--report_only",
             check=False)
  _one_line_error(proc, "results.json")
  with open(path) as f:
    assert f.read() == "{truncated"


def test_a_background_thread_s_failed_write_is_one_log_line():
  # tensorboardX's event writer thread on a full disk, and a bug in a thread.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  program = (
      "import errno, threading\n"
      "from launch import shared\n"
      "def fail(e):\n"
      "  def run():\n"
      "    raise e\n"
      "  t = threading.Thread(target=run, name='Writer'); t.start(); t.join()\n"
      "def main(argv):\n"
      "  fail(OSError(errno.ENOSPC, 'No space left on device'))\n"
      "  fail(RuntimeError('a bug'))\n"
      "shared.run(main)\n")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  proc = subprocess.run([sys.executable, "-c", program], cwd=root,
                        env=child_processes.child_env(), capture_output=True,
                        text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  warning = [line for line in proc.stderr.splitlines()
             if "A background write failed" in line]
  assert len(warning) == 1 and "Writer: [Errno 28] No space left" in (
      warning[0]), proc.stderr
  # Only the bug has a traceback.
  assert proc.stderr.count("Traceback") == 1, proc.stderr
  assert "RuntimeError: a bug" in proc.stderr
  assert "OSError" not in proc.stderr.split("Traceback")[1], proc.stderr

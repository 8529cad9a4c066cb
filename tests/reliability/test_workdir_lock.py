"""One run per workdir: a second run is refused; a killed run's lock is taken
over. Real processes, since flock is per process (open file)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from otgan_jax import workdir_lock
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

_HOLD = textwrap.dedent("""
    import sys, time
    from otgan_jax import workdir_lock
    with workdir_lock.WorkdirLock(sys.argv[1]):
      print("locked", flush=True)
      time.sleep(float(sys.argv[2]))
    print("released", flush=True)
""")


def _python(code, *args, **popen):
  env = child_processes.child_env(
      PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **popen)


def _done(proc, timeout=60):
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.communicate()
    pytest.fail(f"timed out after {timeout} s")
  return proc.returncode, out, err


def test_second_process_is_refused_and_a_killed_holders_lock_is_taken_over(
    tmp_path):
  workdir = str(tmp_path / "run")
  first = _python(_HOLD, workdir, 600)
  try:
    assert first.stdout.readline().strip() == "locked"
    holder = workdir_lock.read_holder(workdir)
    assert holder["pid"] == first.pid
    assert holder["hostname"] and holder["started"]
    assert "time" not in holder["command"] and "-c" in holder["command"]

    # A second process is refused at once, with who holds it and what to do.
    code, out, err = _done(_python(_HOLD, workdir, 0))
    assert code != 0 and "locked" not in out
    assert "WorkdirLockedError" in err
    assert f"pid {first.pid}" in err
    assert "Wait for that run to finish" in err and "--workdir" in err

    # So is this process (flock is per open file, not per process).
    with pytest.raises(workdir_lock.WorkdirLockedError) as info:
      workdir_lock.WorkdirLock(workdir).acquire()
    assert isinstance(info.value, RuntimeError)
    assert info.value.holder["pid"] == first.pid
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)

  # The killed holder left its file behind, but not the lock.
  assert workdir_lock.read_holder(workdir)["pid"] == first.pid
  third = _python(_HOLD, workdir, 0)
  code, out, err = _done(third)
  assert code == 0, err[-3000:]
  assert out.split() == ["locked", "released"]
  assert "Took over the lock" in err and f"pid {first.pid}" in err
  assert "no longer running" in err

  # A clean release leaves an empty file: the next run takes it silently.
  assert workdir_lock.read_holder(workdir) is None
  code, out, err = _done(_python(_HOLD, workdir, 0))
  assert code == 0 and "Took over" not in err


def test_in_process_use(tmp_path, caplog):
  workdir = str(tmp_path / "new" / "dir")  # Created if missing.
  lock = workdir_lock.WorkdirLock(workdir, command="train --workdir=x")
  with lock:
    assert lock.held
    with open(lock.path) as f:
      info = json.load(f)
    assert info["pid"] == os.getpid() and info["command"] == "train --workdir=x"
    with pytest.raises(workdir_lock.WorkdirLockedError, match="train --workdir=x"):
      workdir_lock.WorkdirLock(workdir).acquire()
  assert not lock.held
  lock.release()  # Twice is fine.
  # A garbled file from a dead holder is taken over too.
  with open(lock.path, "w") as f:
    f.write("garbage")
  with workdir_lock.WorkdirLock(workdir) as again:
    assert again.previous_holder == {"unparsed": "garbage"}
  assert os.path.exists(lock.path)  # Never deleted.

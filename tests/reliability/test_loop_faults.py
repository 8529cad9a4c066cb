"""The training loop: nothing-to-do resumes end at once, one run per workdir."""

import gc
import os
import signal

import pytest

from configs import test as test_config
from otgan_jax import train
from otgan_jax import workdir_lock


def test_resume_past_total_steps_ends_at_once_and_bad_totals_are_refused(
    tmp_path):
  c = test_config.get_config("gaussians")
  c.total_steps = 3
  train.train_and_evaluate(c, str(tmp_path / "run"))
  c.total_steps = 2  # Already past it: returns, no hang.
  state = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert int(state.step) == 3
  c.total_steps = -1
  with pytest.raises(ValueError, match="total_steps must be positive"):
    train.train_and_evaluate(c, str(tmp_path / "fresh"))
  assert not (tmp_path / "fresh").exists()


def test_a_second_run_on_a_locked_workdir_is_refused(tmp_path):
  c = test_config.get_config("gaussians")
  with workdir_lock.WorkdirLock(str(tmp_path)):
    with pytest.raises(workdir_lock.WorkdirLockedError):
      train.train_and_evaluate(c, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_a_signal_inside_a_callback_that_cannot_raise_still_stops_the_run(
    tmp_path, capsys):
  # A signal handler runs wherever the main thread is, e.g. inside a
  # garbage-collector callback (JAX has one), where Python reports an
  # exception as "unraisable" and carries on. The run still stops before its
  # first step, and the report is one log line, not a traceback.
  fired = []

  def callback(phase, info):
    del info
    handler = signal.getsignal(signal.SIGTERM)
    if (phase == "start" and not fired
        and getattr(handler, "__self__", None) is not None):
      fired.append(True)
      handler(signal.SIGTERM, None)  # Raises inside the callback.

  gc.callbacks.append(callback)
  try:
    with pytest.raises(train.StoppedBeforeFirstStep) as e:
      # Start-up allocates enough for many collections.
      train.train_and_evaluate(test_config.get_config("gaussians"),
                               str(tmp_path / "run"))
  finally:
    gc.callbacks.remove(callback)
  assert fired and e.value.signum == signal.SIGTERM
  assert "Traceback" not in capsys.readouterr().err
  assert not os.listdir(tmp_path / "run" / "checkpoints")


def test_an_ignored_sigint_stays_ignored_by_the_loop():
  # A job a script put in the background inherits SIGINT as ignored, so that
  # Ctrl-C in its terminal stops the script, not the job; the loop's
  # handlers leave it so (SIGTERM is still handled).
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    before_term = signal.getsignal(signal.SIGTERM)
    with train._SignalFlag():  # pylint: disable=protected-access
      assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
      assert signal.getsignal(signal.SIGTERM) is not before_term
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is before_term
  finally:
    signal.signal(signal.SIGINT, previous)

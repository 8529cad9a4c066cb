"""The training loop: nothing-to-do resumes end at once, one run per workdir."""

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

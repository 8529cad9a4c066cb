"""Set-up shared by the launch programs: logging, a finished run's config."""

import logging as py_logging

from absl import logging


class _QuietLibraries(py_logging.Filter):
  """Drops Orbax's and TensorStore's per-save INFO lines from the log."""

  def filter(self, record):
    noisy = ("/orbax/" in record.pathname or "/tensorstore/" in record.pathname)
    return record.levelno >= py_logging.WARNING or not noisy


def quiet_libraries() -> None:
  """Keeps library INFO chatter out of the absl log."""
  logging.get_absl_handler().addFilter(_QuietLibraries())


def run_config(workdir: str):
  """A run's saved config, completed with today's defaults for newer keys."""
  from otgan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  return workdir_lib.load_config(workdir)

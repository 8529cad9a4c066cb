"""Logging set-up shared by the launch programs."""

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

"""Orbax's errors and log noise, one line each (otgan_jax/checkpointing.py).

- `CheckpointError`: what `Checkpointer` raises, with what to do.
- `short_reason`: the first line of an Orbax/TensorStore error and of its
  cause, without TensorStore's spec dumps; `disk_full`: whether an error is
  a full disk (or quota, or file size limit).
- `install_log_filter`: Orbax's error logs without tracebacks, and the
  leftovers of a failed async save (closed event loop, unretrieved write
  tasks) as one line each; `collect_abandoned_reads`: the same for the reads
  a failed restore abandons. Process-wide hooks, installed once.
"""

from __future__ import annotations

import errno
import gc
import logging as py_logging
import os
import sys

from absl import logging

from otgan_jax.errors import exception_chain as _chain


class CheckpointError(RuntimeError):
  """A checkpoint cannot be written, or cannot be restored into the state."""


def _first_line(text: str, limit: int = 240) -> str:
  text = text.strip()
  line = text.splitlines()[0] if text else ""
  for cut in (" See full TensorStore details", " [source locations="):
    if cut in line:
      line = line[:line.index(cut)]
  line = line.strip()
  return line if len(line) <= limit else line[:limit - 3] + "..."


def short_reason(e: BaseException) -> str:
  """A one-line summary of an Orbax/TensorStore error (no spec dumps).

  The first line of the error, and that of the error that caused it when it
  adds something (TensorStore's reason is often in the cause).
  """
  parts = []
  for err in _chain(e):
    line = _first_line(str(err))
    if line and not any(line in p for p in parts):
      parts.append(line if parts else f"{type(err).__name__}: {line}")
    if len(parts) == 2:
      break
  return parts[0] + (f" (caused by: {parts[1]})" if len(parts) > 1 else "") \
      if parts else type(e).__name__


_DISK_FULL_ERRNOS = {errno.ENOSPC: "no space left on device",
                     errno.EDQUOT: "disk quota exceeded",
                     errno.EFBIG: "file too large for the file system or "
                                  "the file size limit"}


def disk_full(e: BaseException) -> str | None:
  """'no space left on device' (or similar) if `e` is a full disk, else None."""
  for err in _chain(e):
    if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
      return _DISK_FULL_ERRNOS[err.errno]
    text = str(err)
    for code, what in _DISK_FULL_ERRNOS.items():
      if f"os_error_code='{code}'" in text or os.strerror(code) in text:
        return what
    if "RESOURCE_EXHAUSTED" in text:
      return "no space left on device"
  return None


class _OrbaxTracebacks(py_logging.Filter):
  """Shortens Orbax's own error logs to one line each (no tracebacks).

  A failing async save makes Orbax log the same error with its traceback from
  several threads before it is raised; `Checkpointer` turns the raised one
  into a `CheckpointError` with what to do, which keeps the original as its
  `__cause__`.
  """

  def filter(self, record: py_logging.LogRecord) -> bool:
    if (record.exc_info and record.levelno >= py_logging.ERROR
        and f"{os.sep}orbax{os.sep}" in (record.pathname or "")):
      exc = record.exc_info[1]
      record.msg = f"{record.getMessage()} [{short_reason(exc)}]" if exc \
          else record.getMessage()
      record.args = None
      record.exc_info = None
      record.exc_text = None
    return True


_ORBAX_FILTER = _OrbaxTracebacks()


def install_log_filter() -> None:
  absl_logger = py_logging.getLogger("absl")
  if _ORBAX_FILTER not in absl_logger.filters:
    absl_logger.addFilter(_ORBAX_FILTER)
  _quiet_closed_loop_reports()


def _quiet_closed_loop_reports() -> None:
  """Keeps the reports of a failed async save's leftovers to one line each.

  When an async save fails (a full disk), Orbax closes its event loop while
  TensorStore still has writes in flight: each of them reports `RuntimeError:
  Event loop is closed` as an unraisable error (a bare traceback), and each
  of Orbax's write tasks whose error nobody retrieves is logged by asyncio
  with its traceback, all around the one error that `Checkpointer` raises
  with what to do. The first are logged as one line; the second keep their
  first line and reason (no traceback). Other reports are untouched.
  """
  global _LEFTOVER_HOOKS_INSTALLED
  if _LEFTOVER_HOOKS_INSTALLED:
    return
  previous = sys.unraisablehook

  def hook(unraisable):
    value = unraisable.exc_value
    if (isinstance(value, RuntimeError)
        and str(value) == "Event loop is closed"):
      logging.info("A checkpoint write still in flight after a failed save "
                   "was dropped (event loop closed).")
      return
    previous(unraisable)

  sys.unraisablehook = hook
  py_logging.getLogger("asyncio").addFilter(_ORBAX_TASKS)
  _LEFTOVER_HOOKS_INSTALLED = True


class _OrbaxTasks(py_logging.Filter):
  """asyncio's "Task/Future exception was never retrieved": one line each.

  (Orbax's abandoned writes after a failed save; the exception's first line
  stays, its traceback and the future's repr go.)
  """

  def filter(self, record: py_logging.LogRecord) -> bool:
    message = record.getMessage()
    if "exception was never retrieved" in message:
      exc = record.exc_info[1] if record.exc_info else None
      record.msg = (f"{message.splitlines()[0]} "
                    f"[{short_reason(exc) if exc else ''}]")
      record.args = None
      record.exc_info = None
      record.exc_text = None
    return True


_ORBAX_TASKS = _OrbaxTasks()
_LEFTOVER_HOOKS_INSTALLED = False


def collect_abandoned_reads() -> None:
  """Keeps the reads Orbax left pending after a failed restore quiet.

  When one array of a restore fails, Orbax abandons the reads of the others;
  when those coroutines are garbage-collected (now, or later from another
  thread, or at exit) each prints an "Exception ignored in: <coroutine ...>"
  traceback. From the first failed restore on, a hook drops exactly those
  reports (coroutines defined in Orbax) for the rest of the process, and the
  ones already collectable are collected now, so the log keeps the one error.
  """
  global _QUIET_HOOK_INSTALLED
  if not _QUIET_HOOK_INSTALLED:
    previous = sys.unraisablehook

    def hook(unraisable):
      code = getattr(unraisable.object, "cr_code", None)
      if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
        return
      previous(unraisable)
    sys.unraisablehook = hook
    _QUIET_HOOK_INSTALLED = True
  gc.collect()


_QUIET_HOOK_INSTALLED = False

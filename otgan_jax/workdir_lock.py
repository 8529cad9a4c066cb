"""One run per workdir: an exclusive lock held for the run's lifetime.

  with WorkdirLock(workdir):
    train(...)

The lock is `fcntl.flock` on `<workdir>/.lock`, taken without waiting; the
file holds who took it (pid, host, start time, command line), so a second run
is refused with a message that names the first. The kernel releases a flock
when its process dies, however it dies, so a lock file left behind by a
killed run is not a held lock: the next run takes it over and logs whose it
was. The file is never deleted (deleting it would let two runs lock two
different files of the same name); a clean release only empties it.

The caller decides which process takes the lock: in a multi-process run only
process 0 should (the others share its workdir and must not be refused).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
from typing import Any

from absl import logging

LOCK_NAME = ".lock"


class WorkdirLockedError(RuntimeError):
  """Another live process holds the workdir's lock."""

  def __init__(self, message: str, holder: dict[str, Any] | None = None):
    super().__init__(message)
    self.holder = holder


def _describe(holder: dict[str, Any] | None) -> str:
  if not holder:
    return "an unknown process (the lock file names none)"
  if "unparsed" in holder:
    return f"an unknown process (lock file content: {holder['unparsed']!r})"
  parts = [f"pid {holder.get('pid', '?')} on host "
           f"{holder.get('hostname', '?')}"]
  if holder.get("started"):
    parts.append(f"started {holder['started']}")
  if holder.get("command"):
    parts.append(f"command: {holder['command']}")
  return ", ".join(parts)


def read_holder(workdir: str) -> dict[str, Any] | None:
  """What the lock file of `workdir` says about its (last) holder, or None.

  This does not say whether the lock is held; `WorkdirLock.acquire` does.
  """
  try:
    with open(os.path.join(workdir, LOCK_NAME), encoding="utf-8") as f:
      return _parse(f.read())
  except FileNotFoundError:
    return None


def _parse(text: str) -> dict[str, Any] | None:
  text = text.strip()
  if not text:
    return None
  try:
    holder = json.loads(text)
    if isinstance(holder, dict):
      return holder
  except ValueError:
    pass
  return {"unparsed": text[:200]}


class WorkdirLock:
  """An exclusive, non-blocking lock on a workdir (see the module docstring).

  Attributes:
    path: the lock file, `<workdir>/.lock`.
    previous_holder: after `acquire`, what the file said about a holder that
      had died without releasing the lock (None if it was free and empty).
  """

  def __init__(self, workdir: str, *, command: str | None = None):
    self.workdir = os.path.abspath(workdir)
    self.path = os.path.join(self.workdir, LOCK_NAME)
    self._command = command if command is not None else shlex.join(
        [os.path.basename(sys.executable)] + sys.argv)
    self._fd: int | None = None
    self.previous_holder: dict[str, Any] | None = None

  @property
  def held(self) -> bool:
    return self._fd is not None

  def acquire(self) -> "WorkdirLock":
    """Takes the lock (creating the workdir if needed) or raises at once.

    Returns:
      self.

    Raises:
      WorkdirLockedError: another live process holds it; the message names
        it and says what to do.
      RuntimeError: if this object already holds it.
    """
    if self._fd is not None:
      raise RuntimeError(f"{self.path} is already held by this object.")
    os.makedirs(self.workdir, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
          raise
        holder = _parse(_read_fd(fd))
        raise WorkdirLockedError(
            f"The workdir {self.workdir} is in use by another run: "
            f"{_describe(holder)}. Two runs in one workdir would overwrite "
            "each other's checkpoints. Wait for that run to finish (or stop "
            "it), or give this one another --workdir.", holder) from None
      previous = _parse(_read_fd(fd))
      if previous:
        self.previous_holder = previous
        logging.warning(
            "Took over the lock of %s: its previous holder (%s) is no longer "
            "running; it ended without releasing the lock (killed or "
            "crashed).", self.workdir, _describe(previous))
      info = {
          "pid": os.getpid(),
          "hostname": socket.gethostname(),
          "started": datetime.datetime.now().astimezone().isoformat(
              timespec="seconds"),
          "command": self._command,
      }
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
      os.fsync(fd)
    except BaseException:
      os.close(fd)  # Closing releases the lock if it was taken.
      raise
    self._fd = fd
    return self

  def release(self) -> None:
    """Empties the file (a clean end) and releases; safe to call twice."""
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      os.ftruncate(fd, 0)
    except OSError:  # A full or read-only disk: the lock still goes.
      pass
    finally:
      try:
        fcntl.flock(fd, fcntl.LOCK_UN)
      finally:
        os.close(fd)

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()

  def __del__(self):
    if getattr(self, "_fd", None) is not None:
      try:
        os.close(self._fd)
      except OSError:
        pass


def _read_fd(fd: int) -> str:
  chunks, offset = [], 0
  while True:
    chunk = os.pread(fd, 65536, offset)
    if not chunk:
      break
    chunks.append(chunk)
    offset += len(chunk)
  return b"".join(chunks).decode("utf-8", errors="replace")

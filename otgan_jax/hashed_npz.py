"""Hash-checked `.npz` files: byte-reproducible, with a `.sha256` sidecar.

The VAE encoder (`models.vae`), the domain classifiers
(`evaluation.classifier`) and the converted Inception weights
(`evaluation.inception_weights`) are all stored this way:

* `save(path, arrays)` writes `path` so that the same arrays always give the
  same bytes (zip members sorted, stored uncompressed, dated 1980-01-01, no
  pickles) and `<path>.sha256` in `sha256sum` format (`<hex>  <name>`), so
  `sha256sum -c <path>.sha256` run in the file's folder checks it too.
* `load(path, sha256=None)` reads the arrays only after the file's sha256
  matches the pin `sha256` or, without a pin, the sidecar. A file with
  neither is refused, as is a mismatch (the message names both digests).

Writing order: both files are first written in full to temporary names in the
destination folder (flushed and fsynced); then an existing `path` is removed,
the sidecar is moved into place, and last the `.npz` (`os.replace`). So at
every moment the folder holds the old pair, a sidecar without its `.npz`
(which `load` reports as a missing file), or the new pair: never an `.npz`
beside a sidecar of other contents. With `sidecar=False` a stale sidecar is
removed before the `.npz` is replaced, for the same reason. Concurrent
writers of one path are not supported.

All errors are `HashedNpzError`, a `ValueError` (a user error for the
launchers); callers pass their own subclass as `error` to keep their
exception types.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import re
import tempfile
import zipfile
from typing import Mapping

import numpy as np

PathLike = str | os.PathLike
SIDECAR_SUFFIX = ".sha256"
# The earliest date a zip header can hold: fixed, so the bytes never depend
# on when the file was written.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_UNIX = 3  # "created on" Unix, fixed so the header is the same everywhere
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class HashedNpzError(ValueError):
  """A hash-checked file is missing, unverifiable, altered or unreadable."""


def file_sha256(path: PathLike) -> str:
  """Lower-case hex sha256 of a file's bytes (read in 1 MiB blocks)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def sidecar_path(path: PathLike) -> pathlib.Path:
  """`<path>.sha256`, where `save` writes the digest of `path`."""
  return pathlib.Path(os.fspath(path) + SIDECAR_SUFFIX)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
  """The byte-reproducible `.npz` of `arrays` that `save` writes.

  `np.load` reads it back with the same keys. Object arrays are refused
  (`np.load(..., allow_pickle=False)` could not read them).
  """
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
    for key in sorted(arrays):
      if not isinstance(key, str) or not key:
        raise ValueError(f"Array names must be non-empty strings, got {key!r}.")
      member = io.BytesIO()
      np.lib.format.write_array(member, np.asarray(arrays[key]),
                                allow_pickle=False)
      info = zipfile.ZipInfo(key + ".npy", _ZIP_DATE)
      info.create_system = _ZIP_UNIX
      archive.writestr(info, member.getvalue())
  return buffer.getvalue()


def _write_temp(folder: str, name: str, data: bytes) -> str:
  """Writes `data` to a new temporary file in `folder`; returns its path."""
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  except BaseException:
    os.unlink(tmp)
    raise
  return tmp


def _fsync_folder(folder: str) -> None:
  """Makes the renames in `folder` durable where the OS allows it."""
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def save(path: PathLike, arrays: Mapping[str, np.ndarray], *,
         sidecar: bool = True) -> str:
  """Writes `arrays` to `path` (byte-reproducibly) and `<path>.sha256`.

  See the module docstring for the order of the writes, which never leaves
  an `.npz` beside a sidecar of other contents.

  Args:
    path: The `.npz` file to (over)write; its folder must exist.
    arrays: Name -> array; names may contain `/`.
    sidecar: Also write `<path>.sha256`. If False, an existing sidecar is
      removed (it would no longer match).

  Returns:
    The file's lower-case hex sha256.
  """
  path = pathlib.Path(path)
  folder = os.fspath(path.parent)
  data = npz_bytes(arrays)
  digest = hashlib.sha256(data).hexdigest()
  side = sidecar_path(path)
  tmp_npz = _write_temp(folder, path.name, data)
  tmp_side = None
  try:
    if sidecar:
      tmp_side = _write_temp(folder, side.name,
                             f"{digest}  {path.name}\n".encode())
      # The old .npz goes first, so its old sidecar never meets the new
      # .npz nor the new sidecar the old .npz.
      path.unlink(missing_ok=True)
      os.replace(tmp_side, side)
      tmp_side = None
    else:
      side.unlink(missing_ok=True)
    os.replace(tmp_npz, path)
    tmp_npz = None
  finally:
    for tmp in (tmp_npz, tmp_side):
      if tmp is not None:
        os.unlink(tmp)
  _fsync_folder(folder)
  return digest


def read_sidecar(path: PathLike) -> str | None:
  """The digest in `<path>.sha256`, or None when there is no sidecar.

  Raises:
    HashedNpzError: The sidecar does not start with a hex sha256.
  """
  side = sidecar_path(path)
  if not side.is_file():
    return None
  fields = side.read_text().split()
  if not fields or not _HEX_DIGEST.fullmatch(fields[0].lower()):
    raise HashedNpzError(f"{side} is not a sha256sum line ('<64 hex digits>"
                         "  <file name>').")
  return fields[0].lower()


def verify(path: PathLike, sha256: str | None = None, *,
           error: type[HashedNpzError] = HashedNpzError,
           what: str = "File", hint: str = "") -> str:
  """Checks `path` against the pin `sha256` or, if None, its sidecar.

  Args:
    path: The file.
    sha256: Expected hex digest (any case); None reads `<path>.sha256`.
    error: The exception class raised (`HashedNpzError` or a subclass).
    what: How messages name the file (e.g. "Encoder file").
    hint: A sentence appended to every message: what the user should do.

  Returns:
    The file's (verified) lower-case hex sha256.

  Raises:
    error: The file is missing, there is neither a pin nor a sidecar, the
      sidecar is malformed, or the digests differ.
  """
  path = pathlib.Path(path)
  tail = f" {hint}" if hint else ""
  if not path.is_file():
    raise error(f"{what} {path} not found.{tail}")
  if sha256 is None:
    try:
      sha256 = read_sidecar(path)
    except HashedNpzError as e:
      raise error(f"{e}{tail}") from e
    if sha256 is None:
      raise error(
          f"No expected sha256 for {what.lower()} {path}: cannot verify it "
          "without a pin or its sidecar. Pass sha256=<hex digest>, or keep "
          f"the sidecar {sidecar_path(path).name} that was written with it "
          f"beside it.{tail}")
  expected = sha256.strip().lower()
  actual = file_sha256(path)
  if actual != expected:
    raise error(f"{what} {path} has sha256 {actual}, expected {expected} "
                f"(altered or a different file).{tail}")
  return actual


def load(path: PathLike, sha256: str | None = None, *,
         error: type[HashedNpzError] = HashedNpzError,
         what: str = "File", hint: str = "") -> dict[str, np.ndarray]:
  """The arrays of `path`, read after `verify(path, sha256)` passes.

  Args:
    path: A `.npz` (any `.npz` of non-object arrays, not only `save`'s).
    sha256: Expected hex digest; None reads `<path>.sha256`.
    error: The exception class raised (`HashedNpzError` or a subclass).
    what: How messages name the file.
    hint: A sentence appended to every message.

  Returns:
    Name -> array, all read into memory (the file is closed).

  Raises:
    error: As `verify`, or the file is not a readable `.npz`.
  """
  verify(path, sha256, error=error, what=what, hint=hint)
  tail = f" {hint}" if hint else ""
  try:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
      raise ValueError("not a zip of arrays (.npz)")
    with data:
      return {key: data[key] for key in data.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    reason = str(e).rstrip(".")
    raise error(f"{what} {path} is corrupt: {type(e).__name__}: {reason}."
                f"{tail}") from e

"""A thin wrapper over Orbax's CheckpointManager for the train state.

Every checkpoint carries a content fingerprint of the state it holds (per
array, two wrap-around sums of its bits, computed on device;
otgan_jax/fingerprint.py), written with Orbax's per-step `custom_metadata`
into the step's own `_CHECKPOINT_METADATA`, so it is committed atomically
with the arrays (inside Orbax's temporary folder, renamed when complete). A restore
recomputes the fingerprint of what it read and compares:

* `restore(abstract, step)` restores one step and raises `CheckpointError` if
  it does not verify;
* `restore_latest(abstract)` falls back to the newest checkpoint that
  verifies, moves the ones it skipped (process 0) to
  `<workdir>/checkpoints_corrupt/<step>` so they stay on disk for inspection
  but out of Orbax's way (a later save of the same step cannot collide), and
  logs which and where.

Checkpoints written before fingerprints existed restore with a one-line
warning. A checkpoint whose array shapes or tree differ from the state
asked for is not corrupt but from another configuration: that is always a
`CheckpointError` saying so, never a fallback.

Write failures (a full disk) surface in `save`, `wait_until_finished` or
`close` as one `CheckpointError` naming the step, the last complete
checkpoint and the folder to free.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any, NamedTuple

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from otgan_jax import orbax_errors
from otgan_jax.fingerprint import fingerprint  # Part of this module's API.
from otgan_jax.fingerprint import path_str as _path_str
from otgan_jax.fingerprint import to_tree as _to_tree
# Part of this module's API (otgan_jax/orbax_errors.py: one-line errors).
from otgan_jax.orbax_errors import CheckpointError
from otgan_jax.orbax_errors import short_reason

FINGERPRINT_KEY = "otgan_fingerprint"
FINGERPRINT_VERSION = 1  # Of `fingerprint`'s definition (otgan_jax/fingerprint.py).
CORRUPT_DIR = "checkpoints_corrupt"
# Orbax's per-step metadata file (custom_metadata lives in it). Read directly
# only to tell a garbled file (corruption) from one without a fingerprint.
_STEP_METADATA_FILE = "_CHECKPOINT_METADATA"


# ----------------------------------------------------------------------------
# Checkpointer.


def _item_handler() -> ocp.PyTreeCheckpointHandler:
  """Orbax's PyTree handler (the layout StandardCheckpointHandler writes,
  which reads and writes checkpoints of either), with replica-parallel
  saving only across processes.

  Replica-parallel saving has each replica of a replicated array write a
  slice of it, so that the hosts of a multi-process run share the writing;
  Orbax turns it on unless JAX_PLATFORMS names a GPU. In one process it
  only adds work: the first save in a process compiles one slicing program
  per array and replica (72 for OT-GAN's test state on 8 CPU devices, 1.9 s;
  a multi-GPU host without JAX_PLATFORMS would do the same, not measured),
  and the process writes every slice anyway. One process keeps Orbax's
  defaults but that; several keep them all.
  """
  if jax.process_count() > 1:
    return ocp.PyTreeCheckpointHandler()
  th = ocp.type_handlers
  registry = th.create_type_handler_registry(
      (jax.Array, th.ArrayHandler(use_replica_parallel=False)),
      *((t, th.get_type_handler(t)) for t in (np.ndarray, np.number, int,
                                              float, str)))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


class _Outcome(NamedTuple):
  kind: str  # "ok", "legacy", "corrupt" or "config".
  state: Any = None
  reason: str = ""


class Checkpointer:
  """Periodic, atomic, fingerprinted saves of a pytree under
  `workdir/checkpoints/<step>`.

  Saves are asynchronous: training goes on while the arrays are written, and an
  interrupted save never replaces a finished one (Orbax writes to a temporary
  folder and renames it when complete).

  Multi-process runs: every process constructs it and calls `save`,
  `restore`, `restore_latest`, `wait_until_finished` and `close` together
  (they contain collectives).
  """

  def __init__(self, workdir: str, *, every_steps: int = 1,
               max_to_keep: int | None = None, read_only: bool = False):
    """Opens (training: creates) `workdir/checkpoints`.

    Args:
      workdir: the run's folder.
      every_steps: period of `should_save`.
      max_to_keep: how many checkpoints Orbax keeps (None: all).
      read_only: for sampling and evaluation: creates nothing (not even an
        empty `checkpoints/` folder), cleans nothing up, moves nothing, and
        refuses `save`.
    """
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.corrupt_directory = os.path.join(self.workdir, CORRUPT_DIR)
    self.read_only = read_only
    self._every_steps = every_steps
    self._pending: int | None = None  # Saved, not yet known to be complete.
    self._verified: dict[int, bool] = {}
    self._error_reported = False
    self._closed = False
    orbax_errors.install_log_filter()
    if read_only and not os.path.isdir(self.directory):
      self._manager = None  # Nothing to read; nothing to create.
      return
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only,
        cleanup_tmp_directories=not read_only, read_only=read_only)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_handlers=_item_handler())
    # Reads go to a handler of their own, which has no barriers: a process
    # that cannot read its shards must not leave the others waiting in
    # Orbax's restore barrier; `_attempt` then decides with all processes.
    self._reader = _item_handler()

  # -- Steps.

  def latest_step(self) -> int | None:
    return None if self._manager is None else self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return [] if self._manager is None else sorted(self._manager.all_steps())

  def should_save(self, step: int) -> bool:
    """Periodic saves, plus every step at which a preemption was signalled."""
    return (step % self._every_steps == 0
            or self.reached_preemption(step))

  def reached_preemption(self, step: int) -> bool:
    return self._manager is not None and self._manager.reached_preemption(step)

  def verified(self, step: int) -> bool | None:
    """Whether checkpoint `step` is known to hold exactly its state.

    True: written by this process's run and complete (its fingerprint is
    that of the state in memory), or read back and verified. False: it
    failed verification or could not be read. None: unknown (not read in
    this run, still being written, or written before fingerprints).
    """
    if step not in self.all_steps():
      return None
    return self._verified.get(step)

  # -- Saving.

  def save(self, step: int, state: Any) -> None:
    """Starts an asynchronous save of `state` as step `step`, fingerprinted.

    Raises:
      CheckpointError: this or the previous save could not be written (a
        full disk: the message names the last complete checkpoint and the
        folder to free); or the Checkpointer is read-only.
    """
    if self.read_only or self._manager is None:
      raise CheckpointError(
          f"This Checkpointer of {self.directory} is read-only; it cannot "
          f"save step {step}.")
    tree = _to_tree(state)
    metadata = {FINGERPRINT_KEY: {
        "version": FINGERPRINT_VERSION,
        "method": "per array: uint32 words u, [sum(u), sum(u*(2i+1))] mod "
                  "2^32, hex",
        "leaves": fingerprint(tree)}}
    try:
      self._manager.save(step, args=ocp.args.PyTreeSave(tree), force=True,
                         custom_metadata=metadata)
    except Exception as e:  # pylint: disable=broad-except
      # The error of the previous (async) save surfaces here too.
      failed = self._pending if self._pending is not None else step
      self._pending = None
      raise self._write_error(failed, e) from e
    previous, self._pending = self._pending, step
    self._confirm(previous)  # Orbax waited for it before starting this one.

  def wait_until_finished(self) -> None:
    """Blocks until the last save is complete.

    Raises:
      CheckpointError: it could not be written.
    """
    if self._manager is None:
      return
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      failed, self._pending = self._pending, None
      raise self._write_error(failed, e) from e
    step, self._pending = self._pending, None
    self._confirm(step)

  def close(self) -> None:
    """Waits for the last save and shuts Orbax down, also after errors.

    Safe to call twice. Raises `CheckpointError` only for a write failure not
    already raised by `save` or `wait_until_finished`.
    """
    if self._closed:
      return
    self._closed = True
    if self._manager is None:
      return
    already = self._error_reported
    error = None
    try:
      self.wait_until_finished()
    except CheckpointError as e:
      error = e
    finally:
      for closable in (self._manager, self._reader):
        try:
          closable.close()
        except Exception as e:  # pylint: disable=broad-except
          logging.info("Closing the checkpoint manager after an error: %s",
                       short_reason(e))
    if error is not None:
      if already:  # The failure was raised already; one error is enough.
        logging.info("After the checkpoint error: %s", error)
      else:
        raise error

  def _confirm(self, step: int | None) -> None:
    """Marks a finished save complete, or raises if Orbax dropped it silently."""
    if step is None:
      return
    if (jax.process_count() == 1
        and not os.path.isdir(os.path.join(self.directory, str(step)))):
      raise self._write_error(step, None)
    self._verified[step] = True

  def _complete_steps(self) -> list[int]:
    """Steps with a finished folder on disk (no Orbax temporary folders)."""
    try:
      names = os.listdir(self.directory)
    except OSError:
      return []
    return sorted(int(n) for n in names if n.isdigit()
                  and os.path.isdir(os.path.join(self.directory, n)))

  def out_of_space_error(self, e: BaseException) -> CheckpointError | None:
    """A full disk met by another writer of the run, as a CheckpointError.

    The metrics, TensorBoard and sample files share the disk with the
    checkpoints: when one of them fails with a full disk (`e`), the message
    is the same as for a checkpoint (the last complete one, that nothing was
    lost, where to free space). None if `e` is not a full disk.
    """
    full = orbax_errors.disk_full(e)
    if full is None:
      return None
    self._error_reported = True
    done = self._complete_steps()
    last = (f"the last complete checkpoint is step {done[-1]} and nothing was "
            "lost" if done else "no checkpoint was completed yet")
    where = (getattr(e, "filename", None)
             or "the run's logs (metrics.jsonl, tb/) or samples")
    return CheckpointError(
        f"could not write {where} ({full}); {last}; free space in "
        f"{os.path.dirname(self.directory)} and rerun the same command")

  def _write_error(self, step: int | None, e: BaseException | None
                   ) -> CheckpointError:
    self._error_reported = True
    full = orbax_errors.disk_full(e) if e is not None else None
    if e is None:
      reason = "Orbax did not finalize it; its error is in the log above"
    elif full:
      reason = full
    else:
      reason = short_reason(e)
    if step is not None:
      self._verified[step] = False
    done = [s for s in self._complete_steps() if s != step]
    what = f"step {step}" if step is not None else "the last step"
    last = (f"the last complete checkpoint is step {done[-1]} and nothing was "
            "lost" if done else "no checkpoint was completed before it")
    todo = (f"free space in {self.directory} and rerun the same command"
            if full or isinstance(e, OSError) else
            f"fix the cause in {self.directory} and rerun the same command")
    return CheckpointError(
        f"could not write checkpoint {what} ({reason}); {last}; {todo}")

  # -- Restoring.

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restores `step` (default: the latest) and verifies its fingerprint.

    Args:
      abstract_state: a pytree of `jax.ShapeDtypeStruct` (with shardings) or
        arrays that gives the structure to restore into.
      step: which checkpoint; the latest when None.

    Returns:
      The restored pytree.

    Raises:
      CheckpointError: with what to do, if the checkpoint is unreadable or
        corrupt (its content differs from its fingerprint), or does not match
        the configuration.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"No checkpoint in {self.directory}.")
    if step not in self.all_steps():
      raise CheckpointError(
          f"No checkpoint of step {step} in {self.directory} (there are: "
          f"{', '.join(map(str, self.all_steps())) or 'none'}).")
    abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                  abstract_state)
    outcome = self._attempt(step, abstract_state)
    if outcome.kind in ("ok", "legacy"):
      return outcome.state
    path = os.path.join(self.directory, str(step))
    if outcome.kind == "config":
      raise CheckpointError(self._config_message(step, outcome.reason))
    raise CheckpointError(
        f"Could not restore the checkpoint at {path}: {outcome.reason}. It is "
        "corrupt or incomplete. To resume from an earlier checkpoint, move "
        f"this folder aside (nothing is deleted): mv {path} {path}.bad ; to "
        "start afresh, use a new --workdir.")

  def restore_latest(self, abstract_state: Any
                     ) -> tuple[int, Any, list[int]]:
    """Restores the newest checkpoint that verifies.

    Newer ones that are corrupt (unreadable, or content differing from their
    fingerprint) are skipped with a warning naming them; unless read-only,
    process 0 moves them to `<workdir>/checkpoints_corrupt/<step>` (kept, out
    of Orbax's way). Nothing is moved unless an older checkpoint verifies.

    Args:
      abstract_state: as for `restore`.

    Returns:
      `(step, state, skipped_steps)`; `skipped_steps` newest first.

    Raises:
      CheckpointError: no checkpoint; or the newest readable one was written
        with another configuration (shapes or tree differ: no fallback); or
        no checkpoint verifies (nothing is moved or deleted).
    """
    steps = sorted(self.all_steps(), reverse=True)
    if not steps:
      raise CheckpointError(f"No checkpoint in {self.directory}.")
    abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                  abstract_state)
    skipped: list[tuple[int, str]] = []
    for step in steps:
      outcome = self._attempt(step, abstract_state)
      if outcome.kind == "config":
        raise CheckpointError(self._config_message(step, outcome.reason))
      if outcome.kind == "corrupt":
        logging.warning("Checkpoint %d in %s does not verify: %s", step,
                        self.directory, outcome.reason)
        skipped.append((step, outcome.reason))
        continue
      if skipped:
        where = self._set_aside([s for s, _ in skipped])
        logging.warning(
            "Resuming from checkpoint %d, the newest that verifies; skipped "
            "the corrupt checkpoint(s) %s, %s.", step,
            ", ".join(str(s) for s, _ in skipped), where)
      return step, outcome.state, [s for s, _ in skipped]
    details = "; ".join(f"step {s}: {r}" for s, r in skipped)
    paths = " ".join(os.path.join(self.directory, str(s)) for s, _ in skipped)
    newest = os.path.join(self.directory, str(skipped[0][0]))
    raise CheckpointError(
        f"No checkpoint in {self.directory} verifies ({details}). Nothing "
        f"was moved or deleted: {paths}. To start afresh, use a new "
        "--workdir; to set a checkpoint aside by hand: "
        f"mv {newest} {newest}.bad")

  def _config_message(self, step: int, reason: str) -> str:
    path = os.path.join(self.directory, str(step))
    return (
        f"The checkpoint at {path} was written with a different "
        f"configuration than the one given now ({reason}). Nothing is "
        "corrupt and nothing was changed. Resume with the configuration it "
        f"was written with (config.json in {self.workdir}), or start afresh "
        "with a new --workdir.")

  def _attempt(self, step: int, abstract: Any) -> _Outcome:
    """Reads and verifies one step; never raises for a bad checkpoint."""
    outcome = self._read(step, abstract)
    if outcome.kind == "corrupt":
      orbax_errors.collect_abandoned_reads()
    if jax.process_count() > 1:  # All processes take the same decision.
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      codes = {"ok": 0, "legacy": 0, "corrupt": 1, "config": 2}
      worst = int(np.max(multihost_utils.process_allgather(
          np.int32(codes[outcome.kind]))))
      if worst and codes[outcome.kind] != worst:
        kind = "config" if worst == 2 else "corrupt"
        outcome = _Outcome(kind, None, "unreadable on another process (see its log)")
    if outcome.kind in ("ok", "legacy"):
      outcome = self._verify(step, outcome, abstract)
    self._verified[step] = {"ok": True, "corrupt": False}.get(outcome.kind)
    return outcome

  def _read(self, step: int, abstract: Any) -> _Outcome:
    """Checks the metadata against `abstract`, then restores (no verifying)."""
    path = os.path.join(self.directory, str(step))
    meta_file = os.path.join(path, _STEP_METADATA_FILE)
    try:
      if os.path.exists(meta_file):
        with open(meta_file, encoding="utf-8") as f:
          json.load(f)
      stored = self._manager.metadata(step).custom_metadata or {}
      stored_fp = stored.get(FINGERPRINT_KEY)
      if stored_fp is not None and not (
          isinstance(stored_fp, dict)
          and isinstance(stored_fp.get("leaves"), dict)):
        return _Outcome("corrupt", None, "its fingerprint record is garbled")
      item = self._manager.item_metadata(step)
      if item is None:
        return _Outcome("corrupt", None, "it has no array metadata")
      on_disk = {_path_str(p): m for p, m in
                 jax.tree_util.tree_flatten_with_path(_plain(item))[0]}
    except Exception as e:  # pylint: disable=broad-except
      return _Outcome("corrupt", None,
                      f"its metadata is unreadable ({short_reason(e)})")
    tree = _to_tree(abstract)
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    wanted = {_path_str(p): a for p, a in flat}
    mismatch = _shape_mismatch(on_disk, wanted)
    if mismatch:
      return _Outcome("config", None, mismatch)
    # Read each array in its stored dtype (verified as written), cast after.
    target = jax.tree_util.tree_unflatten(treedef, [
        jax.ShapeDtypeStruct(a.shape, _dtype_of(on_disk[_path_str(p)],
                                                a.dtype),
                             sharding=a.sharding) for p, a in flat])
    try:
      restored = self._reader.restore(
          epath.Path(path) / ocp.checkpoint_manager.DEFAULT_ITEM_NAME,
          args=ocp.args.PyTreeRestore(
              target,
              restore_args=ocp.checkpoint_utils.construct_restore_args(
                  target)))
    except Exception as e:  # pylint: disable=broad-except
      return _Outcome("corrupt", None,
                      f"its arrays are unreadable ({short_reason(e)})")
    kind = "ok" if stored_fp is not None else "legacy"
    return _Outcome(kind, (restored, stored_fp), "")

  def _verify(self, step: int, outcome: _Outcome, abstract: Any) -> _Outcome:
    """Compares the fingerprint; casts to the asked-for dtypes."""
    restored, stored_fp = outcome.state
    if stored_fp is None:
      logging.warning(
          "Checkpoint %d in %s has no fingerprint (written before "
          "fingerprints existed): restored without verifying it.", step,
          self.directory)
    else:
      got = fingerprint(restored)
      want = stored_fp["leaves"]
      bad = sorted(p for p in set(got) | set(want) if got.get(p) != want.get(p))
      if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more"
                                      if len(bad) > 5 else "")
        return _Outcome(
            "corrupt", None,
            f"its content differs from the fingerprint saved with it in "
            f"{len(bad)} of {len(want)} arrays ({shown}): its files changed "
            "after they were written")
    tree = jax.tree.map(
        lambda x, a: x if x.dtype == a.dtype else x.astype(a.dtype),
        restored, _to_tree(abstract))
    return _Outcome(outcome.kind, _from_tree(abstract, tree), "")

  def _set_aside(self, steps: list[int]) -> str:
    """Moves corrupt step folders (process 0) out of Orbax's way."""
    if self.read_only:
      return f"left in place in {self.directory} (read-only)"
    moved = []
    if jax.process_index() == 0:
      os.makedirs(self.corrupt_directory, exist_ok=True)
      for step in steps:
        dest = os.path.join(self.corrupt_directory, str(step))
        n = 1
        while os.path.exists(dest):
          dest = os.path.join(self.corrupt_directory, f"{step}.{n}")
          n += 1
        shutil.move(os.path.join(self.directory, str(step)), dest)
        moved.append(dest)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("otgan_checkpoints_set_aside")
    self._manager.reload()
    if moved:
      return "kept in " + ", ".join(moved)
    return f"kept in {self.corrupt_directory}"


def _plain(tree: Any) -> Any:
  """Orbax's tree metadata as plain nested containers."""
  if hasattr(tree, "tree"):
    tree = tree.tree
  if isinstance(tree, dict) or hasattr(tree, "items"):
    return {k: _plain(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [_plain(v) for v in tree]
  return tree


def _dtype_of(meta: Any, default: Any) -> Any:
  dtype = getattr(meta, "dtype", None)
  return default if dtype is None else dtype


def _shape_mismatch(on_disk: dict[str, Any], wanted: dict[str, Any]) -> str:
  """What differs between the stored arrays and the asked-for ones, or ''."""
  missing = sorted(set(wanted) - set(on_disk))
  extra = sorted(set(on_disk) - set(wanted))
  shapes = [f"{p}: {tuple(on_disk[p].shape)} in the checkpoint, "
            f"{tuple(wanted[p].shape)} now"
            for p in sorted(set(wanted) & set(on_disk))
            if getattr(on_disk[p], "shape", None) is not None
            and tuple(on_disk[p].shape) != tuple(wanted[p].shape)]
  parts = []
  if shapes:
    parts.append(f"{len(shapes)} array(s) have other shapes: "
                 + "; ".join(shapes[:3]) + ("; ..." if len(shapes) > 3 else ""))
  if missing:
    parts.append(f"{len(missing)} array(s) of this configuration are not in "
                 "the checkpoint: " + ", ".join(missing[:3])
                 + (", ..." if len(missing) > 3 else ""))
  if extra:
    parts.append(f"{len(extra)} array(s) of the checkpoint are not in this "
                 "configuration: " + ", ".join(extra[:3])
                 + (", ..." if len(extra) > 3 else ""))
  return "; ".join(parts)


def _from_tree(like: Any, tree: Any) -> Any:
  if dataclasses.is_dataclass(like):
    return like.replace(**tree)
  return tree

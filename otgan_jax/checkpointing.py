"""A thin wrapper over Orbax's CheckpointManager for the train state."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be restored into the current state."""


class Checkpointer:
  """Periodic, atomic saves of a pytree under `workdir/checkpoints/<step>`.

  Saves are asynchronous: training goes on while the arrays are written, and an
  interrupted save never replaces a finished one (Orbax writes to a temporary
  folder and renames it when complete).
  """

  def __init__(self, workdir: str, *, every_steps: int, max_to_keep: int):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._every_steps = every_steps
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def should_save(self, step: int) -> bool:
    """Periodic saves, plus every step at which a preemption was signalled."""
    return (step % self._every_steps == 0
            or self._manager.reached_preemption(step))

  def reached_preemption(self, step: int) -> bool:
    return self._manager.reached_preemption(step)

  def save(self, step: int, state: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(_to_tree(state)),
                       force=True)

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restores `step` (default: the latest) with the shardings of the target.

    Args:
      abstract_state: a pytree of `jax.ShapeDtypeStruct` (with shardings) or
        arrays that gives the structure to restore into.
      step: which checkpoint; the latest when None.

    Returns:
      The restored pytree.

    Raises:
      CheckpointError: with what to do, if the checkpoint is unreadable or does
        not match the configuration.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"No checkpoint in {self.directory}.")
    abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                  abstract_state)
    try:
      restored = self._manager.restore(
          step, args=ocp.args.StandardRestore(_to_tree(abstract_state)))
      return _from_tree(abstract_state, restored)
    except Exception as e:  # Orbax raises many types for bad files.
      path = os.path.join(self.directory, str(step))
      raise CheckpointError(
          f"Could not restore the checkpoint at {path} ({type(e).__name__}: "
          f"{e}). Either it is corrupt or incomplete, or it was written with a "
          "different model configuration than the one given now. To resume "
          "from an earlier checkpoint, move this folder aside (nothing is "
          f"deleted): mv {path} {path}.bad ; to start afresh, use a new "
          "--workdir.") from e

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _to_tree(state: Any) -> Any:
  """A dataclass state as a dict of its non-None fields (else unchanged).

  Checkpoints then hold only the fields a method uses, so a field added later
  with a None default (`TrainState.extra`) leaves older checkpoints readable.
  """
  if dataclasses.is_dataclass(state):
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
            if getattr(state, f.name) is not None}
  return state


def _from_tree(like: Any, tree: Any) -> Any:
  if dataclasses.is_dataclass(like):
    return like.replace(**tree)
  return tree

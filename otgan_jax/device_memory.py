"""Whether a compiled program fits the memory of the devices it runs on.

A batch too large for the devices fails deep inside XLA when the step runs:
on a CPU with "INTERNAL: Error dispatching computation: ... Out of memory
allocating N bytes", on a GPU with RESOURCE_EXHAUSTED. XLA's memory
analysis of the compiled program says the same before anything runs:
`check_fits` turns it into an error that says what the step needs, what the
device holds and what to change.

What a device holds: an accelerator's `bytes_limit` (what JAX's allocator
may use, `XLA_PYTHON_CLIENT_MEM_FRACTION` of the card by default). CPU
devices share the host's memory: every local CPU device of the mesh runs its
copy of the program at once, so their sum is checked against the host's
memory and swap (an error), and against the memory available now (a
warning: other programs may free it, or the step may be slow).
"""

from __future__ import annotations

import dataclasses

from absl import logging
import jax

GIB = 2**30


class DeviceMemoryError(ValueError):
  """The compiled step needs more memory than its devices have."""


@dataclasses.dataclass(frozen=True)
class Need:
  """One device's bytes for a compiled program, by XLA's memory analysis."""
  arguments: int
  outputs: int
  temporaries: int
  aliased: int  # Donated arguments whose buffers the outputs reuse.

  @property
  def total(self) -> int:
    return self.arguments + self.outputs + self.temporaries - self.aliased


def need(compiled) -> Need | None:
  """A `jax.stages.Compiled`'s per-device bytes, or None if XLA has none."""
  m = compiled.memory_analysis()
  if m is None:
    return None
  return Need(int(m.argument_size_in_bytes), int(m.output_size_in_bytes),
              int(m.temp_size_in_bytes), int(m.alias_size_in_bytes))


def compiled_bytes(compiled) -> int | None:
  """Arguments + outputs + temporaries - aliased, per device, or None."""
  n = need(compiled)
  return None if n is None else n.total


def _host_meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
  """`/proc/meminfo`'s fields in bytes; {} where there is none."""
  try:
    with open(path, encoding="ascii") as f:
      lines = f.read().splitlines()
  except OSError:
    return {}
  out = {}
  for line in lines:
    name, _, value = line.partition(":")
    parts = value.split()
    if parts and parts[0].isdigit():
      out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
  return out


def _gib(b: float) -> str:
  return f"{b / GIB:.1f} GiB" if b >= GIB / 10 else f"{b / 2**20:.1f} MiB"


def check_fits(compiled, devices, *, what: str, advice: str,
               meminfo: dict[str, int] | None = None) -> Need | None:
  """Raises `DeviceMemoryError` if `compiled` cannot fit on `devices`.

  Args:
    compiled: the `jax.stages.Compiled` program.
    devices: the devices it runs on (a mesh's); those of this process count.
    what: the program, for the message ("The train step (config.batch_size
      = 512)").
    advice: what to change, a sentence or more.
    meminfo: the host's memory in bytes by `/proc/meminfo` field (tests);
      default: read it.

  Returns:
    The per-device need, or None where XLA gives no memory analysis.
  """
  n = need(compiled)
  local = [d for d in devices if d.process_index == jax.process_index()]
  if n is None or not local:
    return n
  device = local[0]
  parts = (f"arguments {_gib(n.arguments)}, outputs {_gib(n.outputs)}, "
           f"temporaries {_gib(n.temporaries)}, donated {_gib(n.aliased)}")
  if device.platform == "cpu":
    info = _host_meminfo() if meminfo is None else meminfo
    total = n.total * len(local)
    copies = (f"{len(local)} CPU devices x {_gib(n.total)}; "
              if len(local) > 1 else "")
    host = info.get("MemTotal", 0) + info.get("SwapTotal", 0)
    if host and total > host:
      raise DeviceMemoryError(
          f"{what} needs {_gib(total)} of host memory by XLA's memory "
          f"analysis of the compiled step ({copies}{parts}), more than "
          f"this host's {_gib(host)} of memory and swap. Nothing was run. "
          f"{advice}")
    available = info.get("MemAvailable")
    if available and total > available:
      logging.warning(
          "%s needs %s of host memory by XLA's memory analysis (%s), more "
          "than the %s available now: it may be slow (swap) or be killed. %s",
          what, _gib(total), copies + parts, _gib(available), advice)
    return n
  limit = (device.memory_stats() or {}).get("bytes_limit")
  if limit and n.total > limit:
    raise DeviceMemoryError(
        f"{what} needs {_gib(n.total)} per device by XLA's memory analysis "
        f"of the compiled step ({parts}), more than the {_gib(limit)} JAX "
        f"may use on {device.device_kind} ({device.platform}; "
        f"XLA_PYTHON_CLIENT_MEM_FRACTION sets the share of the device). "
        f"Nothing was run. {advice}")
  return n

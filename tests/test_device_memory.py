"""device_memory.check_fits: XLA's memory analysis against what the devices
hold (fake devices and analyses; the training loop's use is in
tests/test_train.py)."""

import types

from absl import logging
import pytest

from otgan_jax import device_memory

GIB = 2**30


def _compiled(temp_gib, args_gib=1.0, donated_gib=1.0):
  analysis = types.SimpleNamespace(
      argument_size_in_bytes=int(args_gib * GIB),
      output_size_in_bytes=int(args_gib * GIB),
      temp_size_in_bytes=int(temp_gib * GIB),
      alias_size_in_bytes=int(donated_gib * GIB))
  return types.SimpleNamespace(memory_analysis=lambda: analysis)


class _Device:

  def __init__(self, platform, limit=None, process_index=0):
    self.platform, self.process_index = platform, process_index
    self.device_kind = "NVIDIA H200" if platform == "gpu" else "cpu"
    self._limit = limit

  def memory_stats(self):
    return None if self._limit is None else {"bytes_limit": self._limit}


def _check(compiled, devices, meminfo=None):
  return device_memory.check_fits(
      compiled, devices, what="The train step (config.batch_size=8000)",
      advice="Lower --config.batch_size.", meminfo=meminfo)


def test_an_accelerator_step_over_the_limit_says_what_it_needs_and_what_to_do():
  gpu = [_Device("gpu", limit=int(132.8 * GIB))]
  need = _check(_compiled(temp_gib=100.0), gpu)
  assert need.total == 101 * GIB  # args + outputs + temporaries - donated
  with pytest.raises(device_memory.DeviceMemoryError) as e:
    _check(_compiled(temp_gib=150.0), gpu)
  message = str(e.value)
  for part in ("config.batch_size=8000", "151.0 GiB per device",
               "temporaries 150.0 GiB", "132.8 GiB", "NVIDIA H200",
               "XLA_PYTHON_CLIENT_MEM_FRACTION", "Nothing was run",
               "Lower --config.batch_size."):
    assert part in message, (part, message)
  # No limit known (a backend without memory stats): no check.
  assert _check(_compiled(temp_gib=1e6), [_Device("gpu")]).total > 0


def test_cpu_devices_share_the_host(monkeypatch):
  info = {"MemTotal": 16 * GIB, "SwapTotal": 2 * GIB, "MemAvailable": 13 * GIB}
  cpus = [_Device("cpu") for _ in range(8)]
  warnings = []
  monkeypatch.setattr(logging, "warning",
                      lambda msg, *args: warnings.append(msg % args))
  _check(_compiled(temp_gib=0.5), cpus, info)  # 8 x 1.5 GiB: fits.
  _check(_compiled(temp_gib=0.5), cpus[:4], info)
  assert not warnings
  _check(_compiled(temp_gib=1.0), cpus, info)  # 8 x 2 GiB: over what's free.
  assert len(warnings) == 1 and "16.0 GiB of host memory" in warnings[0]
  with pytest.raises(device_memory.DeviceMemoryError,
                     match=r"8 CPU devices x 2.5 GiB.*18.0 GiB of memory and "
                           r"swap"):
    _check(_compiled(temp_gib=1.5), cpus, info)
  # Another process's devices do not count; without an analysis, no check.
  _check(_compiled(temp_gib=1.5), cpus[:1] + [_Device("cpu", None, 1)] * 7,
         info)
  no_analysis = types.SimpleNamespace(memory_analysis=lambda: None)
  assert _check(no_analysis, cpus, info) is None


def test_host_meminfo_reads_proc_meminfo(tmp_path):
  path = tmp_path / "meminfo"
  path.write_text("MemTotal:       24576000 kB\nMemAvailable:   1000 kB\n"
                  "HugePages_Total:       0\n")
  info = device_memory._host_meminfo(str(path))  # pylint: disable=protected-access
  assert info == {"MemTotal": 24576000 * 1024, "MemAvailable": 1024000,
                  "HugePages_Total": 0}
  assert device_memory._host_meminfo(str(tmp_path / "none")) == {}  # pylint: disable=protected-access

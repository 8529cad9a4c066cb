"""Test setup: fake CPU devices before JAX starts, so sharded code runs everywhere."""

import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
# LLVM level 1 for the tests marked `optimised` (the others compile at level
# 0, `_compile_quickly` below): bench/xla_flags.py measured level 1 running
# our programs as fast as XLA's default 3 (within the run-to-run spread),
# compiling them in 0.8-1.1 of its time, the outputs within 3e-6 of its;
# the conv VAE's step compiled in half the time (bench/RESULTS.md).
if "xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=1"
# XLA:CPU's older fusion code generators (tests/child_processes.py): the
# level-0 test programs compile in about half the time.
import child_processes  # pylint: disable=g-import-not-at-top,g-bad-import-order
os.environ["XLA_FLAGS"] = child_processes.with_compile_quickly_flags(
    os.environ["XLA_FLAGS"])
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One XLA compilation cache for the session, shared with the subprocesses the
# tests start: the many tests that build the same tiny step (a run, then its
# resume, then a launcher on it) compile it once. It changes no program.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(
      prefix="otgan_jax_tests_xla_cache_")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"],
                  ignore_errors=True)
# Cache every compilation, not only those over a second (JAX's default): the
# xdist workers and the subprocesses compile the same small programs again.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# TensorFlow (used only by TFDS) must not grab accelerators or spam the log.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# POT imports every installed array library as a backend; the tests use its
# numpy and JAX ones, as the library does (evaluation.transport._pot). Without
# this a test module's `import ot` imported TensorFlow (about 4 s) into every
# pytest process while collecting.
os.environ.setdefault("POT_BACKEND_DISABLE_TENSORFLOW", "1")
os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")

import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _compile_quickly(request):
  """Each test compiles with most of XLA's optimisations off
  (`jax_disable_most_optimizations`: LLVM level 0, no expensive LLVM passes),
  the setting of the programs the tests start (tests/child_processes.py): on
  the tiny test programs compiling is most of a test's time. The same HLO
  passes run, so the programs and their sharding are the same; the machine
  code is less optimised and the last float32 bits can differ. Tests marked
  `@pytest.mark.optimised` (those that run many steps or large networks,
  where level 0's code runs 1.3-7.5x slower than level 1-3's) compile at
  LLVM level 1 (XLA_FLAGS above), with LLVM's expensive passes. Both
  compile fusions with XLA:CPU's older emitters (XLA_FLAGS above)."""
  import jax  # pylint: disable=g-import-not-at-top
  optimised = request.node.get_closest_marker("optimised") is not None
  jax.config.update("jax_disable_most_optimizations", not optimised)
  yield


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
  """The real data folder ($OTGAN_SHARED_DATA or ../shared/data); else skip."""
  default = _REPO_ROOT.parent / "shared" / "data"
  folder = pathlib.Path(os.environ.get("OTGAN_SHARED_DATA", default))
  if not folder.is_dir():
    pytest.skip(f"shared data folder {folder} not present")
  return folder


def _loop_batch(exp, step, transform=None):
  """The training loop's batch of `step` (one process; None for a method that
  reads none), from the pipeline's own functions; `transform` (optional) maps
  the raw `x` array first."""
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top
  from otgan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  spec = exp.batch_spec
  if spec is None:  # The method reads no batches.
    return None
  local = pipeline.host_batch(
      exp.source, step, num_updates=spec.num_updates,
      batch_size=exp.config.batch_size, shard_index=0, num_shards=1,
      with_labels=spec.labels, draws=spec.draws)
  if transform is not None:
    local = dict(local, x=transform(local["x"]))
  return pipeline.global_batch(local, exp.batch_sharding(),
                               experiment.BATCH_AXIS)


@pytest.fixture
def loop_batch():
  """`loop_batch(exp, step)`: the batch the training loop feeds at `step`."""
  return _loop_batch


def run_module(*args, check=True, timeout=600):
  """`python -m <args>` from the repository root, output captured."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import child_processes  # pylint: disable=g-import-not-at-top
  proc = subprocess.run([sys.executable, "-m", *args], cwd=str(_REPO_ROOT),
                        env=child_processes.child_env(), capture_output=True,
                        text=True, timeout=timeout)
  if check and proc.returncode:
    raise AssertionError(f"{args} failed:\n{proc.stderr[-4000:]}")
  return proc


@pytest.fixture
def cli():
  """`cli("launch.train", "--flag=...", check=True)` -> CompletedProcess, a
  launch program run as a user runs it (with a timeout)."""
  return run_module


# `OTGAN_TEST_COMPILE_LOG=<file>`: one JSON line per test with the seconds it
# spent in XLA's backend compiler, in tracing and lowering, and in all (this
# process only; the programs a test starts are not counted). It shows where
# the suite's time goes: `python tests/compile_report.py <file>`.
_COMPILE_LOG = os.environ.get("OTGAN_TEST_COMPILE_LOG")
_EVENTS = {"/jax/core/compile/backend_compile_duration": "compile_s",
           "/jax/core/compile/jaxpr_trace_duration": "trace_s",
           "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s"}
_totals: dict[str, float] = {}


def _on_duration(event: str, seconds: float, **_) -> None:
  if event in _EVENTS:
    _totals[_EVENTS[event]] = _totals.get(_EVENTS[event], 0.0) + seconds


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
  if not _COMPILE_LOG:
    yield
    return
  import json  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  if not getattr(pytest_runtest_protocol, "registered", False):
    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    pytest_runtest_protocol.registered = True
  _totals.clear()
  start = time.perf_counter()
  yield
  line = dict(test=item.nodeid, total_s=time.perf_counter() - start,
              **{k: _totals.get(k, 0.0) for k in _EVENTS.values()})
  with open(_COMPILE_LOG, "a") as f:
    f.write(json.dumps(line) + "\n")

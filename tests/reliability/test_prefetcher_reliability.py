"""The prefetcher never leaves the training loop waiting forever.

Every case that used to hang runs in a subprocess with a timeout, so a
regression fails the test instead of hanging the suite.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from otgan_jax.data import pipeline
import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# A tiny source and a one-device sharding, shared by the in-process tests and
# the subprocess scripts.
_PRELUDE = textwrap.dedent("""
    import faulthandler, signal  # SIGUSR1: every thread's stack (a hang's why)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    import threading
    import numpy as np
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from otgan_jax.data import pipeline

    class Source:
      def __init__(self, fail_at=None, block_at=None):
        self.fail_at, self.block_at = fail_at, block_at

      def sample(self, index, batch_size, *, shard_index=0, num_shards=1):
        if self.fail_at is not None and index >= self.fail_at:
          raise ValueError(f"unreadable record {index}")
        if self.block_at is not None and index >= self.block_at:
          threading.Event().wait()  # Stuck, like a read from a dead mount.
        n = batch_size // num_shards
        return {"x": np.full((n, 2), index, np.float32)}

    SHARDING = NamedSharding(Mesh(np.array(jax.devices()[:1]), ("data",)),
                             P(None, None, "data"))

    def make(source, start, stop, **kw):
      return pipeline.Prefetcher(source, start, stop, num_updates=1,
                                 batch_size=4, sharding=SHARDING, batch_axis=2,
                                 **kw)
""")
_NS = {}
exec(_PRELUDE, _NS)  # pylint: disable=exec-used
Source, make = _NS["Source"], _NS["make"]


def _run_script(body: str, timeout: float = 60, **popen):
  """Runs the prelude plus `body` in a fresh Python; returns the process."""
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu", XLA_FLAGS="",
      PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.Popen(
      [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)], cwd=ROOT,
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      **popen)


def _finish(proc, timeout: float = 60):
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.send_signal(signal.SIGUSR1)  # The child dumps its threads' stacks.
    time.sleep(2)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"hung (killed after {timeout} s); stdout:\n{out[-1000:]}\n"
                f"stderr (with the stacks):\n{err[-6000:]}")
  return proc.returncode, out, err


def test_yields_every_step_in_order_then_stops():
  p = make(Source(), 3, 6)
  steps = [(s, float(np.asarray(b["x"]).reshape(-1)[0])) for s, b in p]
  # Step s, update 0, draw 0 is the source's batch number 2 * s.
  assert steps == [(3, 6.0), (4, 8.0), (5, 10.0)]
  with pytest.raises(StopIteration):  # Later calls stop too.
    next(p)
  p.close()
  p.close()  # Twice is fine.


@pytest.mark.parametrize("start,stop", [(5, 5), (7, 5)])
def test_empty_range_ends_at_once(start, stop):
  code, out, err = _finish(_run_script(f"""
      p = make(Source(), {start}, {stop})
      print("steps", list(p))
      p.close(); p.close()
      """), timeout=60)
  assert code == 0, err[-3000:]
  assert "steps []" in out


def test_producer_error_is_raised_in_the_consumer():
  code, out, err = _finish(_run_script("""
      p = make(Source(fail_at=4), 0, 10)  # Steps 0, 1 read 0..3; step 2 fails.
      got = []
      try:
        for step, _ in p:
          got.append(step)
      except ValueError as e:
        print("raised", e, "after", got)
      try:
        next(p)
      except ValueError:
        print("raised again")
      p.close(); p.close()
      """))
  assert code == 0, err[-3000:]
  assert "raised unreadable record 4 after [0, 1]" in out
  assert "raised again" in out


def test_error_with_a_full_queue_and_a_closed_consumer_ends_the_thread():
  # The consumer takes nothing and closes: the thread must not stay blocked
  # putting its error into the full queue.
  code, out, err = _finish(_run_script("""
      import time
      p = make(Source(fail_at=2), 0, 10, buffer_size=1)
      time.sleep(1.0)  # Step 0 fills the queue; step 1 fails.
      thread = p._thread
      start = time.time()
      p.close(timeout=30)
      print("closed in", round(time.time() - start, 1), "alive",
            thread.is_alive())
      """))
  assert code == 0, err[-3000:]
  assert "alive False" in out
  assert float(out.split("closed in")[1].split()[0]) < 5


def test_a_producer_that_died_silently_is_an_error():
  code, out, err = _finish(_run_script("""
      class Dying(pipeline.Prefetcher):
        def _produce(self):  # Ends without a batch, an end mark or an error.
          return None
      p = Dying(Source(), 0, 3, num_updates=1, batch_size=4, sharding=SHARDING,
                batch_axis=2)
      try:
        print("got", next(p)[0])
      except pipeline.PrefetchError as e:
        print("PrefetchError:", e)
      p.close()
      """))
  assert code == 0, err[-3000:]
  assert "PrefetchError: The input thread ended" in out


def test_a_signal_flag_ends_a_wait_on_stuck_input():
  # The handler only sets a flag, as the training loop's does; `stop_when`
  # reads it, and the wait on the stuck input thread ends.
  proc = _run_script("""
      import signal, sys
      flag = {}
      signal.signal(signal.SIGTERM, lambda s, f: flag.setdefault("sig", s))
      p = make(Source(block_at=2), 0, 10, stop_when=lambda: "sig" in flag)
      got = []
      print("ready", flush=True)
      for step, _ in p:
        got.append(step)
      p.close(timeout=0.5)
      print("stopped after", got, "signal", flag.get("sig"), flush=True)
      """)
  assert proc.stdout.readline().strip() == "ready"
  time.sleep(1.0)  # Steps 0 and 1 arrive; step 1 waits on the stuck read.
  proc.send_signal(signal.SIGTERM)
  code, out, err = _finish(proc, timeout=60)
  assert code == 0, err[-3000:]
  assert f"stopped after [0] signal {int(signal.SIGTERM)}" in out


def test_sigint_interrupts_a_wait_on_stuck_input():
  # Python's own SIGINT handler, also when this suite runs in the background
  # (where a child inherits SIGINT as ignored).
  proc = _run_script("""
      signal.signal(signal.SIGINT, signal.default_int_handler)
      p = make(Source(block_at=0), 0, 10)
      print("ready", flush=True)
      try:
        next(p)
      except KeyboardInterrupt:
        print("interrupted", flush=True)
      p.close(timeout=0.5)
      """)
  assert proc.stdout.readline().strip() == "ready"
  time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  code, out, err = _finish(proc, timeout=60)
  assert code == 0, err[-3000:]
  assert "interrupted" in out


def test_close_twice_and_after_errors_in_process():
  p = make(Source(fail_at=0), 0, 3)
  with pytest.raises(ValueError, match="unreadable record 0"):
    next(p)
  p.close()
  p.close()
  assert len(jax.devices()) >= 1

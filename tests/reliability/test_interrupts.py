"""A signal whose handler runs inside a callback that cannot raise is not lost.

(`otgan_jax.interrupts`; the training loop's own case, a SIGTERM before the
first step, is in test_loop_faults.py.)
"""

import gc
import signal
import time

import pytest

from otgan_jax import interrupts


class _Interrupt(KeyboardInterrupt):

  def __init__(self, signum):
    super().__init__(signum)
    self.signum = signum


def test_an_interrupt_swallowed_by_a_gc_callback_is_delivered_again():
  handled = []

  def handler(signum, frame):
    del frame
    handled.append(signum)
    raise _Interrupt(signum)

  def callback(phase, info):
    del phase, info
    if not handled:  # The signal's handler, run inside the collector.
      handler(signal.SIGUSR2, None)

  previous = signal.signal(signal.SIGUSR2, handler)
  interrupts.install()
  gc.callbacks.append(callback)
  try:
    with pytest.raises(_Interrupt) as e:
      gc.collect()  # Raises inside the callback: swallowed by Python.
      for _ in range(100):  # The signal delivered again runs here.
        time.sleep(0.001)
  finally:
    gc.callbacks.remove(callback)
    signal.signal(signal.SIGUSR2, previous)
  # Handled in the callback, then again outside it (more than twice if a
  # delivery landed in a callback again, e.g. JAX's: each is redelivered).
  assert len(handled) >= 2 and set(handled) == {signal.SIGUSR2}
  assert e.value.signum == signal.SIGUSR2


def test_the_signal_behind_an_interrupt():
  assert interrupts.signal_number(KeyboardInterrupt()) == signal.SIGINT
  assert interrupts.signal_number(KeyboardInterrupt(15)) == 15
  assert interrupts.signal_number(_Interrupt(12)) == 12

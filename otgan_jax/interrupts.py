"""Ctrl-C and SIGTERM that land inside a callback are delivered, not lost.

Python runs a signal's handler wherever the main thread is, also inside code
that cannot raise: a garbage-collector callback (JAX registers one, which
runs at any allocation) or a `__del__`. There the handler's
`KeyboardInterrupt` is reported as "unraisable" (a traceback on stderr) and
the program goes on as if no signal had come: a Ctrl-C ignored, a SIGTERM
from a scheduler ignored until its SIGKILL (seen: SIGTERM during a run's
start-up, 1 of 12 runs trained to the end; a CI log's KeyboardInterrupt
swallowed in JAX's `_xla_gc_callback`).

`install()` adds a `sys.unraisablehook` that, for such an interrupt in the
main thread, sends the same signal to the main thread again shortly after
(`REDELIVERY_DELAY_S`, from a timer thread: sent from the hook itself, the
handler would run at once, still inside the hook). By then the callback has
returned, so the handler runs in the code the main thread was running, and
raises there (were it inside a callback again, the same happens again).
Other reports go to the previous hook. The launchers, the training loop and
the input pipeline install it.
"""

from __future__ import annotations

import signal
import sys
import threading

# Long enough for the callback the handler ran in to return.
REDELIVERY_DELAY_S = 0.05


def signal_number(e: KeyboardInterrupt) -> int:
  """The signal behind `e`: its `signum`, an int first argument, or SIGINT."""
  signum = getattr(e, "signum", None)
  if signum is None and e.args and isinstance(e.args[0], int):
    signum = e.args[0]
  return int(signum) if signum is not None else int(signal.SIGINT)


def install() -> None:
  """Re-delivers interrupts swallowed by callbacks (see the module doc).

  Idempotent while the hook is in place (one that replaced it, e.g. a test
  runner's per-test hook, is wrapped again). The hook is process-wide but
  acts only on interrupts reported in the main thread, where signal handlers
  run.
  """
  if getattr(sys.unraisablehook, "redelivers_interrupts", False):
    return
  previous = sys.unraisablehook

  def hook(unraisable):
    exc = unraisable.exc_value
    main = threading.main_thread()
    if (isinstance(exc, KeyboardInterrupt)
        and threading.current_thread() is main):
      timer = threading.Timer(REDELIVERY_DELAY_S, signal.pthread_kill,
                              (main.ident, signal_number(exc)))
      timer.daemon = True
      timer.start()
      return
    previous(unraisable)

  hook.redelivers_interrupts = True
  sys.unraisablehook = hook

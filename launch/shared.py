"""Set-up shared by the launch programs: errors as one line, logging, configs.

Every launch program ends with

  if __name__ == "__main__":
    shared.run(main)

in place of `absl.app.run(main)`. `run` makes each way a user can get a
command wrong end in one line on stderr and a non-zero exit status, never a
traceback:

* an unknown flag or a bad flag value: `error: <absl's message>`, exit
  status 1 (an error a `--config` file raised: its last line, no traceback);
* a misspelt `--config.<key>` override, or a `--config` file that cannot be
  loaded: `error: ...` (with ml_collections' "Did you mean" suggestion),
  exit status 1;
* an exception of `user_errors()` escaping `main` (bad input: `ValueError`,
  `OSError`, the package's `CheckpointError`, `DataError`,
  `WorkdirLockedError`, `NonFiniteLossError`): `error (TypeName): message`,
  exit status 1 (without Python's teardown, see `_exit_now`). Raise them
  with a message that says what to do;
* Ctrl-C (SIGINT) or SIGTERM while `main` runs: the message given as
  `interrupted=` (or that of the `KeyboardInterrupt` subclass raised, such as
  `train.StoppedBeforeFirstStep`), exit status 128 + the signal number
  (130, 143), ending the process at once after the program's `finally`
  clauses have run (no interpreter teardown, which could crash under XLA's
  compile threads). `run` turns SIGTERM into a `KeyboardInterrupt` for this
  (unless the process inherited it as ignored, then it stays so);
  code that handles signals itself (the training loop) installs its own
  handlers and restores these.

A write that fails in a library's background thread (TensorBoard's event
writer on a full disk) is one warning line in the log, not a thread's
traceback (`quiet_background_write_errors`); the main thread's own next
write reports the fault as above.

Anything else is a bug and keeps its traceback. A program that needs other
exit paths can still call `sys.exit` itself.
"""

import gc
import logging as py_logging
import os
import signal
import sys
import threading
from typing import Callable

from absl import app
from absl import flags
from absl import logging

from otgan_jax import interrupts
from otgan_jax.errors import exception_chain as _chain


class _QuietLibraries(py_logging.Filter):
  """Drops Orbax's and TensorStore's per-save INFO lines from the log."""

  def filter(self, record):
    noisy = ("/orbax/" in record.pathname or "/tensorstore/" in record.pathname)
    return record.levelno >= py_logging.WARNING or not noisy


def quiet_libraries() -> None:
  """Keeps library INFO chatter out of the absl log."""
  logging.get_absl_handler().addFilter(_QuietLibraries())


def quiet_background_write_errors() -> None:
  """Makes an `OSError` ending a background thread one warning line.

  tensorboardX writes event files from a thread of its own; on a full or
  read-only disk that thread dies with a traceback at a moment of its own
  (before or after the main thread's one-line error). The main thread
  writes to the same folder (metrics.jsonl, checkpoints) and reports the
  fault itself; the thread's output after this point is lost, which the
  warning says. Other exceptions in threads keep Python's default report.
  """
  default = threading.excepthook

  def hook(args):
    if args.exc_type is not None and issubclass(args.exc_type, OSError):
      name = args.thread.name if args.thread is not None else "a thread"
      logging.warning("A background write failed (%s: %s); that thread's "
                      "output after this point is lost.", name,
                      one_line(str(args.exc_value), 300))
      return
    default(args)

  threading.excepthook = hook


def run_config(workdir: str):
  """A run's saved config, completed with today's defaults for newer keys."""
  from otgan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  return workdir_lib.load_config(workdir)


def user_errors() -> tuple[type[BaseException], ...]:
  """The exception types that mean bad input, not a bug (one line, exit 1)."""
  from otgan_jax import train  # pylint: disable=g-import-not-at-top
  return tuple(train.USER_ERRORS) + (OSError,)


def one_line(text: str, limit: int = 2000) -> str:
  """`text` on one line (whitespace runs collapsed), at most `limit` chars."""
  line = " ".join(str(text).split())
  return line if len(line) <= limit else line[:limit - 3] + "..."


def _key_of(e: BaseException) -> str | None:
  """The first line of a `KeyError`'s message, unquoted: the missing key."""
  text = str(e.args[0]) if e.args else ""
  first = text.splitlines()[0] if text else ""
  return first.strip("'\"") or None


def _override_of(argv: list[str], key: str) -> str | None:
  """The `--config....` argument that names `key`, if any."""
  for arg in argv[1:]:
    name = arg.split("=", 1)[0]
    if name.startswith("--config.") and key in name.split(".")[1:]:
      return arg
  return None


def config_error_message(e: BaseException, argv: list[str]) -> str:
  """One line for an error ml_collections raised while parsing `--config*`."""
  for err in _chain(e):
    if isinstance(err, SyntaxError):
      where = f"{err.filename}, line {err.lineno}" if err.filename else ""
      return (f"cannot load the --config file: SyntaxError: {err.msg}"
              + (f" ({where})" if where else ""))
  text = " ".join(str(err) for err in _chain(e))
  suggestion = ""
  if "Did you mean" in text:
    suggestion = " Did you mean" + text.split("Did you mean", 1)[1].split(
        "?", 1)[0] + "?"
  keys = [k for k in (_key_of(err) for err in _chain(e)
                      if isinstance(err, (KeyError, AttributeError))) if k]
  if keys:
    key = keys[-1]  # The innermost: the key itself.
    arg = _override_of(argv, key)
    where = f"{arg.split('=', 1)[0]}: " if arg else ""
    return (f"{where}the config has no key {key!r}.{suggestion} Keys are "
            "declared in configs/common.py.")
  innermost = list(_chain(e))[-1]
  return one_line(f"bad --config: {type(innermost).__name__}: {innermost}")


def flag_error_message(e: BaseException) -> str:
  """absl's flag error on one line (an embedded traceback: its last line)."""
  text = str(e)
  marker = "Traceback (most recent call last):"
  if marker in text:
    head, tail = text.split(marker, 1)
    last = [line for line in tail.splitlines()
            if line.strip() and not line.startswith(" ")]
    return one_line(head.rstrip().rstrip(":") + ": " + (last[-1] if last
                                                         else ""))
  return one_line(text)


def _config_load_message(e: OSError) -> str | None:
  """One line for ml_collections' "Configuration is not available" error."""
  text = str(e)
  if "Configuration is not available" not in text:
    return None
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  reason = lines[-1] if lines else text
  return f"cannot load the --config file: {one_line(reason)}"


def define_config_file(name: str, default: str, help_string: str, **kwargs):
  """`config_flags.DEFINE_config_file`, a bad `--config*` as one line.

  ml_collections reads the `--config.<key>` overrides of `sys.argv` while
  the flag is defined (at import), before `run` can catch anything: a
  misspelt key would otherwise print a page of chained tracebacks.
  """
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  try:
    return config_flags.DEFINE_config_file(name, default, help_string,
                                           **kwargs)
  except (KeyError, AttributeError, TypeError, ValueError, OSError,
          SyntaxError, ImportError) as e:
    sys.exit(f"error: {config_error_message(e, sys.argv)}")


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with config-override and config-file errors as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {flag_error_message(e)} (--helpshort lists the flags)")
  except (KeyError, AttributeError, TypeError, ValueError, OSError,
          SyntaxError, ImportError) as e:
    # ml_collections applies --config and --config.<key> while parsing.
    sys.exit(f"error: {config_error_message(e, argv)}")


def _raise_interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(signum)


def _skip_the_last_collection() -> None:
  """Leaves the objects alive now out of the garbage collection that ends
  Python's teardown (`gc.freeze`).

  That collection walks every object still tracked (JAX, ott-jax, SciPy and
  Orbax leave hundreds of thousands) to find cycles, 0.5-1.5 s at the end of
  every command for nothing: `main` has returned, its `finally` clauses have
  closed what it wrote (checkpointer, metric and event files, the workdir
  lock). The `atexit` handlers and the modules' teardown still run.
  """
  gc.freeze()


def _exit_now(code: int) -> None:
  """Ends the process after `main` was stopped, skipping Python's teardown.

  A signal stops the main thread at any point, also while XLA compiles in its
  own threads; Python's teardown then destroys JAX's client under them (a
  segfault, seen when SIGTERM came during the first step's compilation) and
  reports the coroutines the interrupted code left unawaited. An error can
  leave such work behind too (a failed async save's writes). `main`'s
  `finally` clauses have run (lock released, files closed, input thread
  stopped, checkpointer closed) and nothing is left to write, so after
  flushing the logs and the standard streams the process ends at once with
  `code`, its one-line message the last thing it printed. A process of a
  multi-process run first leaves `jax.distributed` as its teardown would
  have (else its peers log the lost connection before their own error).
  """
  jax = sys.modules.get("jax")
  if jax is not None and jax.distributed.is_initialized():
    try:
      jax.distributed.shutdown()
    except Exception:  # pylint: disable=broad-except
      pass  # Ending anyway.
  for handler in py_logging.getLogger().handlers + py_logging.getLogger(
      "absl").handlers:
    try:
      handler.flush()
    except Exception:  # pylint: disable=broad-except
      pass
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)  # pylint: disable=protected-access


def run(main: Callable[[list[str]], None], *,
        interrupted: str = "stopped by a signal; nothing was written") -> None:
  """`absl.app.run(main)` with bad input as one line; see the module doc.

  Args:
    main: the program, `main(argv)`.
    interrupted: the line printed when SIGINT/SIGTERM stop `main` with a
      plain `KeyboardInterrupt` (one with a message of its own keeps it).
  """
  def wrapped(argv):
    previous = None
    try:
      if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # Not the main thread.
      pass
    interrupts.install()  # A signal inside a callback is not lost.
    quiet_background_write_errors()
    try:
      main(argv)
      _skip_the_last_collection()
    except KeyboardInterrupt as e:
      signum = interrupts.signal_number(e)
      message = str(e) if type(e) is not KeyboardInterrupt else interrupted
      name = signal.Signals(signum).name
      sys.stderr.write(f"{name}: {one_line(message)}\n")
      _exit_now(128 + int(signum))
    except app.UsageError:
      raise  # absl prints it with the usage line.
    except Exception as e:  # pylint: disable=broad-except
      if not isinstance(e, (ValueError, OSError)) and not isinstance(
          e, user_errors()):
        raise
      message = _config_load_message(e) if isinstance(e, OSError) else None
      sys.stderr.write((f"error: {message}" if message else
                        f"error ({type(e).__name__}): {one_line(str(e))}")
                       + "\n")
      _exit_now(1)
    finally:
      if previous is not None:
        try:
          signal.signal(signal.SIGTERM, previous)
        except (ValueError, TypeError):
          pass
  app.run(wrapped, flags_parser=_parse_flags)

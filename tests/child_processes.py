"""The environment of the programs the tests start (`python -m launch...`).

They compile with most of XLA's optimisations off
(`JAX_DISABLE_MOST_OPTIMIZATIONS=1`: LLVM level 0, no expensive LLVM
passes), as the pytest processes do for every test not marked `optimised`
(tests/conftest.py): on the tiny test configs compiling is most of a run,
and the programs are the same HLO, fused the same way; only the machine code
is less optimised (results differ in the last float32 bits). The same
compile options in both also let a program compiled in a test and the same
program compiled by its subprocess share the session's XLA cache.

Both also compile fusions with XLA:CPU's older code generators
(`COMPILE_QUICKLY_XLA_FLAGS`), in the processes' `XLA_FLAGS`: with LLVM's
optimisations off, the default fusion emitters (MLIR) take most of a test
program's compile; the older ones compiled the tiny OT-GAN step in 0.5-0.6
of the time, running it as fast (bench/RESULTS.md). The tests marked
`optimised` (LLVM level 1) use them too: there the two kinds compiled and
ran our programs within the machine's noise of each other.
"""

import importlib.metadata
import os
import sys

# An XLA:CPU flag of jaxlib 0.10, which jaxlib 0.11 no longer knows (every
# process would abort at start with "Unknown flag in XLA_FLAGS"): added only
# for jaxlib 0.10 and older (there the suite takes about 5 minutes on 2
# cores; under jaxlib 0.11.2 without it, 6, bench/RESULTS.md).
_JAXLIB = tuple(int(p) for p in
                importlib.metadata.version("jaxlib").split(".")[:2])
COMPILE_QUICKLY_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false"
                             if _JAXLIB < (0, 11) else "")


def child_env(**overrides: str) -> dict[str, str]:
  """`os.environ` with `overrides`, compiling with most optimisations off
  unless an override says otherwise, and with `COMPILE_QUICKLY_XLA_FLAGS`
  (added to an overriding `XLA_FLAGS` too)."""
  env = dict(os.environ)
  env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
  env.update(overrides)
  env["XLA_FLAGS"] = with_compile_quickly_flags(env.get("XLA_FLAGS", ""))
  return env


def with_compile_quickly_flags(xla_flags: str) -> str:
  """`xla_flags` plus `COMPILE_QUICKLY_XLA_FLAGS`, unless it sets them."""
  name = COMPILE_QUICKLY_XLA_FLAGS.split("=")[0]
  if not name or name in xla_flags:
    return xla_flags
  return f"{xla_flags} {COMPILE_QUICKLY_XLA_FLAGS}".strip()


def with_interactive_sigint(module: str, *args: str) -> list[str]:
  """`python -m module args...`, with Python's own SIGINT handler.

  A process started in the background by a script inherits SIGINT as
  ignored (POSIX: so that Ctrl-C in the terminal stops the script, not its
  background jobs), and Python and the training loop leave it ignored; so
  a suite started that way would not test Ctrl-C. The child made here
  handles SIGINT as when started from a terminal.
  """
  return [sys.executable, "-c",
          "import runpy, signal, sys; "
          "signal.signal(signal.SIGINT, signal.default_int_handler); "
          "del sys.argv[0]; "
          "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)",
          module, *args]


def messages(stderr: str) -> list[str]:
  """A child's stderr without absl's log lines (`I1203 ...`: a severity
  letter and a date) and without blank lines."""
  return [line for line in stderr.splitlines() if line.strip()
          and not (line[:1] in "IWEF" and line[1:5].isdigit())]

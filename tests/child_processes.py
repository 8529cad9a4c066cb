"""The environment of the programs the tests start (`python -m launch...`).

They compile with LLVM's optimisation level 0
(`--xla_backend_optimization_level=0`): on the tiny test configs compiling is
most of a run (the default config's CLI run, one core: 58 s -> 36 s), and
the programs are the same HLO, fused the same way; only the machine code is
less optimised (results differ in the last float32 bits). The pytest
processes themselves keep the default level, so the tests that train for
hundreds of steps and compare with measured numbers see the code users run.
"""

import os

CHILD_XLA_FLAGS = "--xla_backend_optimization_level=0"


def child_env(**overrides: str) -> dict[str, str]:
  """`os.environ` with `overrides`, plus the children's XLA flag (appended
  to whatever XLA_FLAGS results)."""
  env = dict(os.environ, **overrides)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + CHILD_XLA_FLAGS).strip()
  return env

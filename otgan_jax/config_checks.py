"""Range checks of config values, one message shape for every section.

Each raises `ValueError("config.<key> must be ..., got <value>.")` naming
the dotted key, so a launcher prints one line that says what to set.
"""

from __future__ import annotations

import math
from typing import Any


def value(config: Any, key: str) -> Any:
  """`config.a.b` for `key` "a.b"."""
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def at_least(config: Any, key: str, low: int) -> None:
  """An integer setting of at least `low` (a count, an interval, a size)."""
  v = value(config, key)
  if int(v) < low:
    raise ValueError(f"config.{key} must be at least {low}, got {v}.")


def finite_at_least_zero(config: Any, key: str) -> None:
  """A weight or learning rate: finite and not negative."""
  v = value(config, key)
  if not 0 <= float(v) < math.inf:
    raise ValueError(f"config.{key} must be finite and at least 0, got {v}.")


def positive_finite(config: Any, key: str, hint: str = "") -> None:
  """A scale that divides (epsilon, a cost scale): finite and above 0."""
  v = value(config, key)
  if not 0 < float(v) < math.inf:
    raise ValueError(f"config.{key} must be positive and finite, got {v}"
                     f"{f' ({hint})' if hint else ''}.")

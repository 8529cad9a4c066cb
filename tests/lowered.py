"""What a function's lowered (StableHLO) program is made of, for tests that
check it without running it (e.g. the precision every backend would use)."""

import re

import jax


def dot_precisions(fn, *args):
  """`(operand shapes, precision)` of every dot in `fn`'s lowered program."""
  text = jax.jit(fn).lower(*args).as_text()
  found = re.findall(r"stablehlo\.dot_general[^\n]*precision = \[(\w+), "
                     r"\w+\] : \(([^)]*)\)", text)
  assert found, "no dot_general in the lowered program"
  return [(shapes, p) for p, shapes in found]

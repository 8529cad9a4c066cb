"""Small helpers for error messages (no heavy imports: the launchers use
them before JAX is loaded)."""

from typing import Iterator


def exception_chain(e: BaseException | None) -> Iterator[BaseException]:
  """`e`, then what caused it (`__cause__`, else `__context__`), and so on;
  each exception once."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__

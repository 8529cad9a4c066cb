"""Training methods as plug-ins, chosen by `config.method` through a registry.

Every module in this package defines one or more `base.Method` subclasses and
registers each under its `config.method` name with `@register`; the registry
imports the package's modules the first time a name is looked up, so adding a
method is adding a module here (and a config), with no other file to edit.
The generic code (`experiment`, `train`, `sampling`, `launch/`) only ever
goes through `get`, `names` and `config_sections`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Type

import ml_collections

from otgan_jax.methods.base import BatchSpec
from otgan_jax.methods.base import Method

__all__ = ["BatchSpec", "Method", "check_sections", "config_sections", "get",
           "names", "register"]

_REGISTRY: dict[str, Type[Method]] = {}
_LOADED = False


def register(cls: Type[Method]) -> Type[Method]:
  """Class decorator: makes `cls` the method of `config.method=cls.name`."""
  if not cls.name:
    raise TypeError(f"{cls.__name__} has no `name`.")
  if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
    raise TypeError(f"Two methods are named {cls.name!r}: "
                    f"{_REGISTRY[cls.name].__qualname__} and "
                    f"{cls.__qualname__}.")
  _REGISTRY[cls.name] = cls
  return cls


def _load() -> None:
  global _LOADED
  if not _LOADED:
    for info in pkgutil.iter_modules(__path__):
      if not info.name.startswith("_") and info.name != "base":
        importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def names() -> tuple[str, ...]:
  """Every registered `config.method`, sorted."""
  _load()
  return tuple(sorted(_REGISTRY))


def get(name: str) -> Type[Method]:
  """The method class of `config.method=name`; a clear error if unknown."""
  _load()
  if name not in _REGISTRY:
    raise ValueError(f"Unknown config.method {name!r}: use one of "
                     f"{', '.join(names())}.")
  return _REGISTRY[name]


def config_sections() -> dict[str, tuple[ml_collections.ConfigDict,
                                         tuple[str, ...]]]:
  """`{section: (its default ConfigDict, the methods that read it)}`.

  Several methods may read one section (the adversarial baselines and
  POT-GAN share `baseline`); they must then declare the same defaults.
  """
  _load()
  out: dict[str, tuple[ml_collections.ConfigDict, tuple[str, ...]]] = {}
  for name in names():
    for section, defaults in _REGISTRY[name].config_sections().items():
      if section in out:
        known, owners = out[section]
        if known.to_dict() != defaults.to_dict():
          raise TypeError(f"Methods {owners} and {name!r} declare section "
                          f"{section!r} with different defaults.")
        out[section] = (known, owners + (name,))
      else:
        out[section] = (defaults, (name,))
  return out


def _plain(value):
  """JSON-loaded lists and config tuples compare equal."""
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  return value


def _leaves(d: dict, prefix: str):
  for k, v in d.items():
    if isinstance(v, dict):
      yield from _leaves(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v


def check_sections(config: ml_collections.ConfigDict) -> None:
  """Refuses a changed key of a section the configured method does not read.

  `--config.method=wgangp --config.otgan.random_flip=True` would otherwise
  train without flips and say nothing.

  Raises:
    ValueError: naming the key, the methods that read it, and what to do.
  """
  method = get(config.method).name
  for section, (defaults, owners) in config_sections().items():
    if method in owners or section not in config:
      continue
    want = dict(_leaves(defaults.to_dict(), f"{section}."))
    have = dict(_leaves(config[section].to_dict(), f"{section}."))
    changed = sorted(k for k in have if k in want and
                     _plain(have[k]) != _plain(want[k]))
    if changed:
      readers = " or ".join(owners)
      raise ValueError(
          f"config.{changed[0]}={have[changed[0]]!r} is read only by "
          f"config.method={readers}, but this run's method is {method!r}: "
          f"remove --config.{changed[0]} (it would be ignored) or set "
          f"--config.method={owners[0]}."
          + (f" Also changed: {', '.join(changed[1:])}." if len(changed) > 1
             else ""))

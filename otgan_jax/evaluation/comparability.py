"""Whether a published number may stand beside ours, and in which units.

A number is measured under a `Protocol` (data, resolution, units, sample
counts, other settings); a `Published` entry (`evaluation/published.py`
holds the papers' numbers) is a value with its protocol. Fields a paper
does not state are `UNSTATED`, never guessed; a field a paper does not
print but the official code or a cited protocol fixes is named in
`Protocol.inferred`.

`run_protocol` builds the same record for one of our runs from its
`config.json`, its `dataset_info.json` and the evaluation's protocol;
`comparable` says whether a published number may stand beside ours, and
why not. Our W1 is computed on samples in the data's raw range (`[0, 255]`
for MNIST, see `evaluators.Evaluator`); `to_published_units` rescales it
(`convert_w1`) to the paper's range where one is known.

  ours = comparability.run_protocol(config, "w1/exact", dataset_info=info)
  for entry in published.entries_for(config):
    value, mine = comparability.to_published_units(w1, ours, entry)
    ok, why = comparability.comparable(mine, entry)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

UNSTATED = "unstated"
KINDS = ("table", "text", "figure")

# Families whose key carries the protocol as a suffix (`is/openai`,
# `fid/pool3_half_pixel`, `reverse_kl/parzen_0.1`): one quantity per family.
# In other families (`modes/covered`, `modes/high_quality`) each key is its
# own quantity.
PROTOCOL_SUFFIXED = ("is", "fid", "kid", "reverse_kl", "precision", "recall")
# Metrics whose value scales with the data's value range (ground cost ||x-y||).
RANGE_DEPENDENT = ("w1",)

# Known data sets: image shape (H, W), raw range, training-set size. Used only
# when a run's dataset_info.json is missing.
_KNOWN_DATA = {
    "mnist": ((28, 28), (0.0, 255.0), 60_000),
    "fashion_mnist": ((28, 28), (0.0, 255.0), 60_000),
    "cifar10": ((32, 32), (0.0, 255.0), 50_000),
    "digits": ((8, 8), (0.0, 16.0), 1_797),
    "gaussians": (None, None, None),
}


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How a number was measured: what `comparable` compares.

  A field is a value, `UNSTATED` (the paper does not say), or None (does not
  apply: no resolution for vector data, no real samples for IS, no units for
  metrics that do not depend on the value range).

  Attributes:
    metric: Metric key as our evaluators name it; a bare family (`is`, `fid`,
      `reverse_kl`) when the implementation or variant is unstated.
    data: Data set, in `config.data.name`'s vocabulary (`mnist`, `cifar10`,
      `gaussians`, ...).
    resolution: `(H, W)` of the images the metric saw.
    value_range: `(low, high)` of the samples the metric saw: the units of
      range-dependent metrics (W1); None for the others.
    num_generated: Generated samples per evaluation.
    num_real: Real samples the metric compares with.
    params: Other settings the number depends on (`is_splits`,
      `parzen_bandwidth`, `ring_std`, `criterion`, ...).
    split: Data split. Secondary: compared only when both sides state it.
    selection: `last` (the evaluation after training), `best` (the peak over
      training) or `UNSTATED`. Secondary, as `split`.
    notes: Other conditions, shown but not compared.
    inferred: Names of fields not printed in the paper but fixed by its
      official code or by a protocol it cites (METHODS.md), e.g. `units`.
  """

  metric: str
  data: str
  resolution: tuple[int, int] | str | None = None
  value_range: tuple[float, float] | str | None = None
  num_generated: int | str | None = UNSTATED
  num_real: int | str | None = None
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  split: str = UNSTATED
  selection: str = UNSTATED
  notes: tuple[str, ...] = ()
  inferred: tuple[str, ...] = ()

  def signature(self) -> str:
    """A string equal for equal protocols (for grouping runs)."""
    return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


@dataclasses.dataclass(frozen=True)
class Published:
  """One published number.

  Attributes:
    paper: Short citation, e.g. `Salimans et al. 2018`.
    where: Table or figure, e.g. `Table 1`, `Fig. 3`, `Sec. 5.2`.
    kind: `table` (printed in a table), `text` (printed in the text) or
      `figure` (not printed: read off a plot).
    table: Heading the number is shown under (launch.tables).
    label: The paper's name of the model or setting (`WGAN-GP`, `batch 200`).
    value: The number, in the paper's units.
    std: Its printed `±` (a std unless the paper says otherwise), or None.
    protocol: How it was measured.
    setting: Dotted keys of our config with the values that define the
      experiment (`{"method": "wgangp", "data.name": "mnist"}`): a run whose
      config has them all reproduces this entry.
  """

  paper: str
  where: str
  kind: str
  table: str
  label: str
  value: float
  std: float | None
  protocol: Protocol
  setting: Mapping[str, Any]

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}.")

  @property
  def metric(self) -> str:
    return self.protocol.metric

  @property
  def read_off_figure(self) -> bool:
    return self.kind == "figure"

  @property
  def source(self) -> str:
    """`Salimans et al. 2018, Fig. 3 (batch 200), read off the figure`."""
    text = f"{self.paper}, {self.where} ({self.label})"
    return text + (", read off the figure" if self.read_off_figure else "")


# Metric keys ---------------------------------------------------------------


def metric_family(metric: str) -> str:
  """`fid/pool3_half_pixel` -> `fid`; `w1/exact` -> `w1`."""
  return metric.split("/")[0]


def same_quantity(a: str, b: str) -> bool:
  """Whether two metric keys measure the same thing (perhaps differently)."""
  if a == b:
    return True
  fam = metric_family(a)
  return fam == metric_family(b) and fam in PROTOCOL_SUFFIXED


# W1 units ------------------------------------------------------------------


def convert_w1(value: float, from_range: tuple[float, float],
               to_range: tuple[float, float]) -> float:
  """W1 (or its std) of data rescaled affinely from one range to another.

  The Euclidean ground cost is translation invariant and scales with the
  data, so W1 scales by the ratio of the ranges' widths: `[0, 255] ->
  [-1, 1]` multiplies by `2 / 255`.

  Args:
    value: W1 measured on data in `from_range`.
    from_range: `(low, high)` of the data it was measured on.
    to_range: `(low, high)` to express it in.

  Returns:
    The W1 of the same samples mapped affinely onto `to_range`.

  Raises:
    ValueError: If a range is not a `(low, high)` pair with `high > low`.
  """
  for r in (from_range, to_range):
    if (not isinstance(r, (tuple, list)) or len(r) != 2
        or not float(r[1]) > float(r[0])):
      raise ValueError(f"A value range must be (low, high) with high > low, "
                       f"got {r!r}.")
  scale = ((float(to_range[1]) - float(to_range[0]))
           / (float(from_range[1]) - float(from_range[0])))
  return value * scale


def to_published_units(value: float | None, ours: Protocol,
                       entry: Published) -> tuple[float | None, Protocol]:
  """Our value (and protocol) in the entry's units, where both are known.

  Only range-dependent metrics (W1) change; others, and cases where either
  range is unknown or unstated, are returned as they are (and `comparable`
  then says why they differ).
  """
  to = entry.protocol.value_range
  if (metric_family(ours.metric) not in RANGE_DEPENDENT
      or not _is_range(to) or not _is_range(ours.value_range)
      or tuple(to) == tuple(ours.value_range)):
    return value, ours
  if value is not None:
    value = convert_w1(value, ours.value_range, to)
  return value, dataclasses.replace(ours, value_range=tuple(to))


def _is_range(r) -> bool:
  return isinstance(r, (tuple, list)) and len(r) == 2


# Our runs ------------------------------------------------------------------

_MISSING = object()


def get(config: Mapping[str, Any], dotted: str, default: Any = _MISSING):
  """`config["a"]["b"]` for `"a.b"`; `default` (or KeyError) if absent."""
  node = config
  for part in dotted.split("."):
    if not isinstance(node, Mapping) or part not in node:
      if default is _MISSING:
        raise KeyError(dotted)
      return default
    node = node[part]
  return node


def matches_setting(entry: Published, config: Mapping[str, Any]) -> bool:
  """Whether a run's config is the experiment `entry` was measured on."""
  return all(get(config, k, _MISSING) == v for k, v in entry.setting.items())


def run_protocol(config: Mapping[str, Any], metric: str, *,
                 dataset_info: Mapping[str, Any] | None = None,
                 evals: Mapping[str, Any] | None = None,
                 selection: str = UNSTATED) -> Protocol:
  """The protocol under which one of our runs measured `metric`.

  Args:
    config: The run's config (`config.json` as a dict).
    metric: Metric key as written by the evaluator (`w1/exact`, ...).
    dataset_info: The run's `dataset_info.json` (shape, low, high,
      num_examples): the data as trained. Missing: the known defaults of
      `config.data.name`.
    evals: The evaluation's `config.evals` (the `protocol` of an
      `eval/step_N.json`, which records command-line overrides); default
      `config["evals"]`.
    selection: `last` or `best`: which evaluation of the run is reported.

  Returns:
    The `Protocol`; the value range is that of the samples the metric saw,
    i.e. the data's raw range (the evaluators work in it).
  """
  evals = dict(evals if evals is not None else get(config, "evals", {}))
  data = get(config, "data.name", UNSTATED)
  split = get(config, "data.split", "train")
  shape, low_high, size = _KNOWN_DATA.get(data, (UNSTATED, UNSTATED, None))
  # The config's own reductions of the data (paper 004: the first 5,000
  # images, resized to 32x32), where no dataset_info.json records them.
  resize = get(config, "data.resize", 0) or 0
  if resize and isinstance(shape, tuple):
    shape = (int(resize), int(resize))
  first = get(config, "data.num_examples", 0) or 0
  if first and size:
    size = min(int(first), int(size))
  if dataset_info:
    info_shape = tuple(dataset_info.get("shape") or ())
    shape = tuple(info_shape[:2]) if len(info_shape) == 3 else None
    low, high = dataset_info.get("low"), dataset_info.get("high")
    low_high = None if low is None else (float(low), float(high))
    size = dataset_info.get("num_examples")
  elif split != "train":
    size = None
  family = metric_family(metric)
  num_gen = evals.get("num_samples", UNSTATED)
  num_real = _capped(evals.get("num_reference", UNSTATED), size)
  params: dict[str, Any] = {}
  notes = []
  if family == "w1":
    cap = evals.get("w1_max_points") or None
    num_gen, num_real = _capped(num_gen, cap), _capped(num_real, cap)
    params["ground_cost"] = "euclidean"
    notes.append("flattened")
  elif family == "is":
    num_real = None
    if metric == "is/openai":
      params["is_splits"] = evals.get("is_splits", UNSTATED)
  elif family == "fid" and evals.get("reference_stats"):
    num_real = f"statistics file {evals['reference_stats']}"
  elif family in ("modes", "reverse_kl"):
    num_real = None
    g = get(config, "data.gaussians", {})
    params.update(num_modes=g.get("num_modes", UNSTATED),
                  ring_radius=g.get("radius", UNSTATED),
                  ring_std=g.get("std", UNSTATED))
    if family == "reverse_kl":
      params["parzen_bandwidth"] = evals.get("parzen_bandwidth", UNSTATED)
    else:
      params["criterion"] = "a sample within 3 std of the mode"
  elif family == "classifier_score":
    num_real = None
  if isinstance(shape, tuple) and isinstance(num_real, int):
    notes.append(f"reals: a seeded random subset of the {split} split")
  return Protocol(
      metric=metric, data=data, resolution=shape,
      value_range=low_high if family in RANGE_DEPENDENT else None,
      num_generated=num_gen, num_real=num_real, params=params, split=split,
      selection=selection, notes=tuple(notes))


def _capped(n, cap):
  if isinstance(n, str) or n is None or cap is None:
    return n
  return min(int(n), int(cap))


# Comparison ----------------------------------------------------------------


def comparable(ours: Protocol, published: Published | Protocol
               ) -> tuple[bool, str]:
  """Whether our number may stand beside the published one, and why (not).

  Every field the published protocol sets must be stated there and equal
  ours: the metric key (a bare family means the implementation is
  unstated), data, resolution, units (compare after `to_published_units`),
  sample counts and each of its `params`. `split` and `selection` are
  compared only where both sides state them. Fields the paper leaves
  `UNSTATED` make the numbers incomparable: they cannot be shown to match.

  Args:
    ours: Our run's protocol (in the entry's units for W1).
    published: The entry, or its protocol.

  Returns:
    `(True, "same protocol ...")` or `(False, "<what differs>")`; the reason
    also names the fields taken from the official code rather than the paper.
  """
  theirs = published.protocol if isinstance(published, Published) else published
  differ, unstated = [], []
  if theirs.metric != ours.metric:
    if theirs.metric == metric_family(theirs.metric):
      unstated.append(f"which {theirs.metric} implementation")
    else:
      differ.append(f"metric {ours.metric} vs paper's {theirs.metric}")
  fields = [("data", theirs.data, ours.data),
            ("resolution", theirs.resolution, ours.resolution),
            ("units", theirs.value_range, ours.value_range),
            ("generated samples", theirs.num_generated, ours.num_generated),
            ("real samples", theirs.num_real, ours.num_real)]
  fields += [(k, v, ours.params.get(k, _MISSING))
             for k, v in theirs.params.items()]
  for name, want, got in fields:
    if want is None:
      continue
    if want == UNSTATED:
      unstated.append(name)
    elif got is _MISSING or got is None or got == UNSTATED:
      differ.append(f"{name} unknown for ours (paper: {_show(want, name)})")
    elif _norm(want) != _norm(got):
      differ.append(f"{name}: ours {_show(got, name)}, paper "
                    f"{_show(want, name)}")
  for name in ("split", "selection"):
    want, got = getattr(theirs, name), getattr(ours, name)
    if UNSTATED not in (want, got) and want != got:
      differ.append(f"{name}: ours {got}, paper {want}")
  reasons = differ + ([f"unstated in the paper: {', '.join(unstated)}"]
                      if unstated else [])
  if reasons:
    return False, "; ".join(reasons)
  reason = "same protocol"
  if theirs.inferred:
    reason += (" (not printed in the paper but set by its code or the "
               f"protocol it cites: {', '.join(theirs.inferred)})")
  return True, reason


def _norm(v):
  if isinstance(v, (list, tuple)):
    return tuple(_norm(x) for x in v)
  if isinstance(v, bool) or not isinstance(v, (int, float)):
    return v
  return float(v)


def _show(v, name: str = "") -> str:
  """`32x32` for a resolution, `[-1, 1]` for units, `50,000` for counts."""
  if isinstance(v, (list, tuple)) and len(v) == 2:
    a, b = v
    return f"[{a:g}, {b:g}]" if name == "units" else f"{a}x{b}"
  if isinstance(v, int) and not isinstance(v, bool):
    return f"{v:,}"
  return str(v)


def describe(p: Protocol, *, full: bool = False) -> str:
  """A one-line note on a protocol, e.g. for a table cell.

  `mnist, 32x32, in [-1, 1], 50,000 generated vs 5,000 real, ground_cost
  euclidean, after training, not in the paper but its code or cited
  protocol: units, ...`; `full` adds the free-text notes.
  """
  parts = [p.data]
  if p.resolution is not None:
    parts.append(_show(p.resolution) if p.resolution != UNSTATED
                 else "resolution unstated")
  if p.value_range is not None:
    parts.append(f"in {_show(p.value_range, 'units')}"
                 if p.value_range != UNSTATED else "units unstated")
  counts = f"{_show(p.num_generated)} generated"
  if p.num_real is not None:
    counts += f" vs {_show(p.num_real)} real"
  parts.append(counts)
  parts += [f"{k} {_show(v)}" for k, v in p.params.items()]
  if p.selection != UNSTATED:
    parts.append({"best": "peak over training",
                  "last": "after training"}.get(p.selection, p.selection))
  if p.inferred:
    parts.append("not in the paper but its code or cited protocol: "
                 + ", ".join(p.inferred))
  return ", ".join(parts + (list(p.notes) if full else []))

"""The papers' numbers, with the protocols they were measured under.

Every number we reproduce is a `comparability.Published` entry: the paper,
where in it the number is (table, text, or read off a figure), the metric
under the key our evaluators give it (`w1/exact`, `is/openai`, ...; a bare
family such as `fid` when the paper does not say which implementation), the
value and its std, and its `comparability.Protocol` (data, resolution,
units, sample counts, other settings). Facts come from the papers in
`../shared/papers/` and `../shared/docs/METHODS.md`; what neither states is
`UNSTATED`, never guessed.

`entries_for(config)` finds the entries a run reproduces from its config
(method, data and the settings that define the experiment), so no caller
needs experiment names; `otgan_jax/evaluation/comparability.py` says whether
each may stand beside our number.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from otgan_jax.evaluation.comparability import matches_setting
from otgan_jax.evaluation.comparability import Protocol
from otgan_jax.evaluation.comparability import Published
from otgan_jax.evaluation.comparability import same_quantity
from otgan_jax.evaluation.comparability import UNSTATED


_OTGAN = "Salimans et al. 2018"
_POTGAN = "Avraham et al. 2019"
_ASSIGN = "Laschos et al."


def _otgan_cifar() -> list[Published]:
  """OT-GAN on CIFAR-10: Table 1, Figure 3 (batch sizes), random matching."""
  table = "OT-GAN, CIFAR-10 Inception Score by batch size"
  # The paper cites the Inception Score of Salimans et al. 2016 (the OpenAI
  # code, same first author): its protocol is 50,000 samples in 10 splits.
  def proto(selection):
    return Protocol(
        metric="is/openai", data="cifar10", resolution=(32, 32),
        num_generated=50_000, params={"is_splits": 10}, split="train",
        selection=selection,
        notes=("batch B read as X + X' of B/2 real images each (our "
               "batch_size = B/2), as METHODS.md reads the official code",),
        inferred=("metric (OpenAI IS code)", "generated samples",
                  "is_splits", "split"))
  setting = {"method": "otgan", "data.name": "cifar10",
             "model.num_classes": 0, "ot.matching": "sinkhorn"}
  entries = [
      # Not printed in the paper: Figure 3's curves, peaks read off the plot.
      Published(_OTGAN, "Fig. 3", "figure", table, f"batch {b}", v, None,
                proto("best"), {**setting, "batch_size": b // 2})
      for b, v in ((200, 7.22), (800, 7.84), (3200, 8.15))]
  entries.append(Published(
      _OTGAN, "Table 1", "table", table, "batch 8000", 8.47, 0.12,
      proto(UNSTATED), {**setting, "batch_size": 4000}))
  entries.append(Published(
      _OTGAN, "Sec. 5.2", "text", table, "random matching", 4.64, None,
      proto("best"), {**setting, "ot.matching": "random",
                      "batch_size": 4000}))
  return entries


def _otgan_gaussians() -> list[Published]:
  """Section 5.1: all 8 modes kept with the critic frozen at 15k steps."""
  return [Published(
      _OTGAN, "Sec. 5.1, Fig. 2", "text",
      "OT-GAN, 8 Gaussians with a frozen critic (section 5.1)",
      "OT-GAN, all 8 modes kept", 8.0, None,
      Protocol(metric="modes/covered", data="gaussians",
               num_generated=UNSTATED,
               params={"num_modes": 8, "ring_radius": 2.0, "ring_std": 0.2,
                       "criterion": "visual (Fig. 2)"},
               selection="last",
               notes=("critic frozen at 15k of 40k iterations",),
               inferred=("params.ring_radius", "params.ring_std")),
      {"method": "otgan", "data.name": "gaussians",
       "otgan.freeze_critic_at_step": 15_000})]


def _potgan() -> list[Published]:
  """POT-GAN Table 1 (reverse KL, 50 runs) and Table 2 (CIFAR-10)."""
  kl_table = "POT-GAN, reverse KL on the 8-Gaussian ring (Table 1)"
  ball_table = "POT-GAN, reverse KL on the 3-D Gaussian ball (Table 1)"
  cifar_table = "POT-GAN, CIFAR-10 (Table 2)"
  ring = Protocol(
      metric="reverse_kl", data="gaussians", num_generated=UNSTATED,
      num_real=UNSTATED,
      params={"num_modes": 8, "ring_radius": UNSTATED, "ring_std": UNSTATED,
              "parzen_bandwidth": UNSTATED},
      notes=("KL(P_g || P_r) by a Parzen window",
             "mean ± spread over 50 runs (std or s.e. unstated)"))
  ball = dataclasses.replace(
      ring, data="gaussian_ball_3d",
      params={"parzen_bandwidth": UNSTATED},
      notes=("N3(0, I) learned from 2-D N2(0, I) noise",) + ring.notes)
  cifar = dict(data="cifar10", resolution=(32, 32), num_generated=UNSTATED,
               notes=("WGAN-GP baseline, batch 64, up to 100K generator "
                      "iterations",))
  out = []
  for method, label, ring_kl, ball_kl in (
      ("gan", "GAN", (0.2417, 0.0113), (3.0772, 0.1014)),
      ("wgangp", "WGAN-GP", (0.0046, 0.0004), (0.9438, 0.0044)),
      ("potgan", "POT-GAN", (0.0020, 0.0002), (0.7428, 0.0038))):
    out.append(Published(_POTGAN, "Table 1", "table", kl_table, label,
                         *ring_kl, ring,
                         {"method": method, "data.name": "gaussians"}))
    out.append(Published(_POTGAN, "Table 1", "table", ball_table, label,
                         *ball_kl, ball,
                         {"method": method, "data.name": "gaussian_ball_3d"}))
  for method, label, is_, fid in (("wgangp", "WGAN-GP", (6.58, 0.06), 34.4),
                                  ("potgan", "POT-GAN", (6.87, 0.04), 32.5)):
    setting = {"method": method, "data.name": "cifar10"}
    out.append(Published(_POTGAN, "Table 2", "table", cifar_table, label,
                         *is_, Protocol(metric="is", **cifar), setting))
    out.append(Published(
        _POTGAN, "Table 2", "table", cifar_table, label, fid, None,
        Protocol(metric="fid", num_real=UNSTATED, **cifar), setting))
  return out


def _assignment() -> list[Published]:
  """The assignment paper's exact W1, Tables 1 (MNIST) and 2 (Fashion)."""
  out = []
  for data, where in (("mnist", "Table 1"), ("fashion_mnist", "Table 2")):
    protocol = Protocol(
        metric="w1/exact", data=data, resolution=(32, 32),
        value_range=(-1.0, 1.0), num_generated=50_000, num_real=5_000,
        params={"ground_cost": "euclidean"}, split="train", selection="last",
        notes=("5,000 training images (the first 5,000 in the official "
               "code) upscaled from 28x28 to 32x32, interpolation unstated",
               "POT's exact network simplex"),
        inferred=("units", "params.ground_cost", "split"))
    for i, (label, setting) in enumerate((
        ("GAN", {"method": "gan"}), ("WGAN", {"method": "wgan"}),
        ("WGAN-GP", {"method": "wgangp"}),
        ("square assignment", {"method": "assignment",
                               "assignment.generator_cost": "sqeuclidean"}),
        ("SSIM assignment", {"method": "assignment",
                             "assignment.generator_cost": "ssim"}))):
      value = _ASSIGNMENT_W1[data][i]
      out.append(Published(
          _ASSIGN, where, "table", "Assignment method, exact W1",
          f"{label}, {data}", value, None, protocol,
          {**setting, "data.name": data}))
  return out


# GAN, WGAN, WGAN-GP, square, SSIM (paper 004, Tables 1 and 2).
_ASSIGNMENT_W1 = {"mnist": (15.80, 12.59, 10.69, 9.68, 9.67),
                  "fashion_mnist": (11.03, 11.19, 9.15, 3.40, 7.17)}

PUBLISHED: tuple[Published, ...] = tuple(
    _otgan_cifar() + _otgan_gaussians() + _potgan() + _assignment())


def entries_for(config: Mapping[str, Any],
                metric: str | None = None) -> list[Published]:
  """The published entries a run (its config) reproduces.

  Args:
    config: The run's config (`config.json` as a dict).
    metric: If set, only entries of this quantity (`same_quantity`).
  """
  return [e for e in PUBLISHED if matches_setting(e, config)
          and (metric is None or same_quantity(e.metric, metric))]

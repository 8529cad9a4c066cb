r"""The reproduction suites: every table's claim in miniature.

  python -m launch.reproduce --suite=cpu --workdir=runs/reproduce          # 3 seeds
  python -m launch.reproduce --suite=cpu --workdir=/tmp/quick --seeds=1    # a quick look

`get_suite("cpu")` is sized for 2 CPU cores (bench/RESULTS.md has its
measured wall time); `get_suite("test")` is the same suite with every run cut
to a few steps, for the tests. All data are embedded (no download): the
8-Gaussian ring, the 3-D Gaussian ball and the 1,797 8x8 scikit-learn digits,
of which the last 297 are held out (`data.holdout=297`): every image metric
compares 2,970 generated digits (10x, unequal weights for W1) with those 297
held-out ones, and the digits classifier is the pinned one
(`evaluation/classifier.py`, trained on the other 1,500, 0.946 on the 297).

What differs from the papers, for every claim: far fewer steps, small
networks, 8x8 digits instead of CIFAR-10 / MNIST, and 3 seeds. The runs use
the repository's configs unchanged except for what each run's `protocol`
below names. Nothing was tuned until a method won: the settings are those of
the configs the runs start from, fixed before the first suite ran.
"""

from __future__ import annotations

import functools

from configs import baselines_gaussians
from configs import common
from configs import otgan_digits
from configs import otgan_gaussians
from configs import potgan_gaussians
from otgan_jax.reproduce import Check
from otgan_jax.reproduce import Claim
from otgan_jax.reproduce import Run
from otgan_jax.reproduce import Suite

HOLDOUT = 297
HELD_OUT = (("split", "test"),)


def _quiet(c, total_steps):
  """Common to every run: its length, little logging, one checkpoint."""
  c.total_steps = total_steps
  c.log_every_steps = max(1, total_steps // 4)
  c.sample_every_steps = total_steps
  c.ckpt.every_steps = max(1, total_steps // 2)
  c.ckpt.max_to_keep = 1
  c.evals.every_steps = 0
  return c


# -- The 8-Gaussian ring and the 3-D ball ----------------------------------


def ring_otgan_frozen(seed, *, steps, freeze):
  del seed
  c = _quiet(otgan_gaussians.get_config(), steps)
  c.otgan.freeze_critic_at_step = freeze
  return c


def ring_gan_frozen(seed, *, steps, freeze):
  del seed
  c = _quiet(baselines_gaussians.get_config("gan"), steps)
  c.baseline.freeze_critic_at_step = freeze
  return c


def _toy(make, data, steps):
  def build(seed):
    del seed
    c = _quiet(make(), steps)
    if data == "ball":
      c.data.name = "gaussian_ball_3d"
    return c
  return build


# -- The digits ---------------------------------------------------------------


def digits_otgan(seed, *, steps, batch, matching="sinkhorn", conditional=False):
  del seed
  c = _quiet(otgan_digits.get_config("conditional" if conditional else None),
             steps)
  c.data.holdout = HOLDOUT
  c.batch_size = batch
  c.ot.matching = matching
  return c


def _digits_networks(steps):
  """configs/otgan_digits.py's data and networks, OT-GAN's own keys reset."""
  c = _quiet(otgan_digits.get_config(), steps)
  defaults = common.get_config()
  c.ot, c.otgan = defaults.ot, defaults.otgan
  c.data.holdout = HOLDOUT
  return c


def digits_baseline(seed, *, steps, method):
  """A baseline with the digits networks and its paper's optimiser."""
  del seed
  c = _digits_networks(steps)
  common.set_baseline(c, method)
  c.optim.ema_decay = 0.99
  return c


def digits_assignment(seed, *, steps, cost):
  del seed
  c = _digits_networks(steps)
  c.method = "assignment"
  c.batch_size = 48
  for net in ("generator", "critic"):
    c.optim[net].b1 = 0.5
    c.optim[net].b2 = 0.9
    c.optim[net].learning_rate = 1e-4
  c.assignment.num_reals = 1500
  c.assignment.count_samples = 3000
  c.assignment.assigner_hidden = (256, 256)
  c.assignment.generator_steps = 20
  if cost == "ssim":
    c.assignment.assigner_cost = "psnr"
    c.assignment.generator_cost = "ssim"
  return c


def get_suite(arg: str | None = None) -> Suite:
  """The suite `arg` ("cpu", or "test": every run a few steps)."""
  arg = arg or "cpu"
  if arg not in ("cpu", "test"):
    raise ValueError(f"Unknown suite {arg!r}: cpu | test.")
  tiny = arg == "test"
  ring_steps, freeze = (4, 2) if tiny else (3000, 1500)
  toy_steps = 4 if tiny else 3000
  digit_steps = 3 if tiny else 300
  table_steps = 3 if tiny else 300
  assign_steps = 3 if tiny else 100
  ring_eval = dict(num_samples=2500, num_reference=2500)
  image_eval = dict(num_samples=2970 if not tiny else 297,
                    num_reference=HOLDOUT, eval_data=HELD_OUT)
  batches = (8, 16) if tiny else (8, 16, 32, 64)
  p = functools.partial
  runs = [
      Run("ring_otgan_frozen", p(ring_otgan_frozen, steps=ring_steps,
                                 freeze=freeze),
          ("modes", "reverse_kl"), **ring_eval),
      Run("ring_gan_frozen", p(ring_gan_frozen, steps=ring_steps,
                               freeze=freeze),
          ("modes", "reverse_kl"), **ring_eval),
  ]
  for b in batches:
    runs.append(Run(f"digits_otgan_b{b}", p(digits_otgan, steps=digit_steps,
                                            batch=b),
                    ("w1", "classifier_fd"), x=b, **image_eval))
  mid = batches[-2]
  runs += [
      Run(f"digits_random_b{mid}", p(digits_otgan, steps=digit_steps,
                                     batch=mid, matching="random"),
          ("w1", "classifier_fd"), x=mid, **image_eval),
      Run(f"digits_conditional_b{mid}", p(digits_otgan, steps=digit_steps,
                                          batch=mid, conditional=True),
          ("requested_class", "classifier_fd"), **image_eval),
  ]
  for data in ("ring", "ball"):
    metrics = ("modes", "reverse_kl", "w1") if data == "ring" else (
        "reverse_kl", "w1")
    for name, make in (("wgangp", lambda: baselines_gaussians.get_config(
        "wgangp")), ("potgan", potgan_gaussians.get_config)):
      runs.append(Run(f"{data}_{name}", _toy(make, data, toy_steps),
                      metrics, **ring_eval))
  for method in ("gan", "wgan", "wgangp"):
    runs.append(Run(f"table_{method}", p(digits_baseline, steps=table_steps,
                                         method=method),
                    ("w1", "assignment_variance"), **image_eval))
  for cost in ("square", "ssim"):
    runs.append(Run(f"table_{cost}", p(digits_assignment, steps=assign_steps,
                                       cost=cost),
                    ("w1", "assignment_variance"), **image_eval))

  low = dict(higher_is_better=False)
  kl = "reverse_kl/parzen_0.1"
  claims = [
      Claim(
          "otgan_frozen_critic",
          "OT-GAN section 5.1: modes kept after the critic is frozen",
          "Salimans et al. 2018, section 5.1: on the 8-Gaussian ring (radius "
          "2, std 0.2), with the critic frozen at 15k of 40k iterations, "
          "OT-GAN keeps all 8 modes while a (mini-batch-feature) GAN "
          "collapses to 3.",
          f"configs/otgan_gaussians.py and configs/baselines_gaussians.py:gan "
          f"(the non-saturating DCGAN loss, not a mini-batch-feature GAN), "
          f"{ring_steps} steps with the critic frozen from step {freeze}; "
          "2,500 samples of the final generator; a mode is covered when a "
          "sample lies within 3 std of it.",
          ("ring_otgan_frozen", "ring_gan_frozen"),
          (Check("at_least", "modes/covered", a="ring_otgan_frozen",
                 value=8),
           Check("beats", "modes/covered", a="ring_otgan_frozen",
                 b="ring_gan_frozen"))),
      Claim(
          "otgan_batch_size",
          "OT-GAN Figure 3: quality rises with the batch size",
          "Salimans et al. 2018, Figure 3: peak Inception score on CIFAR-10 "
          "grows with the batch size (200 to 8000).",
          f"configs/otgan_digits.py on the first 1,500 digits, batches "
          f"{', '.join(map(str, batches))} for the same {digit_steps} steps; "
          "exact W1 (Euclidean, flattened, digit units 0..16) and the "
          "pinned digits classifier's Frechet distance, 2,970 samples of "
          "the EMA generator against the 297 held-out digits. Inception "
          "score on CIFAR-10 is out of reach on this CPU.",
          tuple(f"digits_otgan_b{b}" for b in batches),
          (Check("trend", "w1/exact",
                 runs=tuple(f"digits_otgan_b{b}" for b in batches), **low),
           Check("trend", "classifier_fd",
                 runs=tuple(f"digits_otgan_b{b}" for b in batches), **low)),
          plot_x="batch size"),
      Claim(
          "otgan_vs_random_matching",
          "OT-GAN against random matching (the paper's ablation)",
          "Salimans et al. 2018, section 5 / Figure 3 discussion: replacing "
          "the Sinkhorn matching by a random one (an energy distance on "
          "random pairs) trains worse.",
          f"As the batch-size claim, batch {mid}, ot.matching=random against "
          "Sinkhorn.",
          (f"digits_otgan_b{mid}", f"digits_random_b{mid}"),
          (Check("beats", "w1/exact", a=f"digits_otgan_b{mid}",
                 b=f"digits_random_b{mid}", **low),
           Check("beats", "classifier_fd", a=f"digits_otgan_b{mid}",
                 b=f"digits_random_b{mid}", **low))),
      Claim(
          "conditional_otgan",
          "Conditional OT-GAN (Algorithm 2) generates the requested class",
          "Salimans et al. 2018, Algorithm 2 and the class-conditional "
          "samples: both networks see the label, and samples show the "
          "requested class.",
          f"configs/otgan_digits.py:conditional, batch {mid}, {digit_steps} "
          "steps; the share of 2,970 samples (297 per class) that the "
          "pinned digits classifier assigns to the requested class (chance "
          "is 0.1); the threshold 0.5 was fixed before any run.",
          (f"digits_conditional_b{mid}",),
          (Check("at_least", "requested_class",
                 a=f"digits_conditional_b{mid}", value=0.5),)),
      Claim(
          "potgan_toy",
          "POT-GAN Table 1: POT-GAN beats WGAN-GP on the ring and the ball",
          "Avraham et al. 2019, Table 1: reverse KL by a Parzen window, "
          "ring WGAN-GP 0.0046 vs POT-GAN 0.0020; 3-D Gaussian ball from "
          "2-D noise 0.9438 vs 0.7428 (50 runs).",
          f"configs/baselines_gaussians.py:wgangp and "
          f"configs/potgan_gaussians.py, {toy_steps} steps; the ball is "
          "N3(0, I) learned from 2-D uniform (not Gaussian) noise; 2,500 "
          "samples, Parzen bandwidth 0.1 against the smoothed true density; "
          "exact W1 against 2,500 fresh points.",
          ("ring_wgangp", "ring_potgan", "ball_wgangp", "ball_potgan"),
          (Check("beats", kl, a="ring_potgan", b="ring_wgangp", **low),
           Check("beats", kl, a="ball_potgan", b="ball_wgangp", **low),
           Check("beats", "w1/exact", a="ring_potgan", b="ring_wgangp",
                 **low),
           Check("beats", "w1/exact", a="ball_potgan", b="ball_wgangp",
                 **low)),
          shown=("modes/covered",)),
      Claim(
          "assignment_table",
          "The assignment method's table: W1 of GAN, WGAN, WGAN-GP, square "
          "and SSIM",
          "Laschos et al. (paper 004), Table 1: on MNIST / Fashion-MNIST the "
          "assignment method (square cost) reaches a lower exact W1 than "
          "GAN, WGAN and WGAN-GP (MNIST: 9.68 for square).",
          f"The digits networks for all five (the baselines with their "
          f"papers' learning rates and Adam, WGAN included), {table_steps} "
          f"steps; the assignment method over the 1,500 training digits, "
          f"{assign_steps} steps of one assigner update over 3,000 "
          "generated points (2x the reals; the paper's code grows from 15 "
          "to 25x) and 20 generator updates of 48 on that assignment "
          "(2,000 generator updates in all), sized so the suite fits in 90 "
          "minutes on 2 cores; exact W1 of 2,970 samples against the "
          "297 held-out digits (unequal weights, digit units 0..16) and the "
          "assignment variance (eq. 16, nearest real, psi = 0).",
          tuple(f"table_{m}" for m in ("gan", "wgan", "wgangp", "square",
                                       "ssim")),
          tuple(Check("beats", "w1/exact", a="table_square",
                      b=f"table_{m}", **low)
                for m in ("gan", "wgan", "wgangp")),
          shown=("assignment/variance",)),
  ]
  return Suite(arg, tuple(runs), tuple(claims))

r"""Evaluates a trained run's EMA generator; writes JSON beside its checkpoints.

  python -m launch.evaluate --workdir=runs/otgan_gaussians \
      --metrics=modes,reverse_kl,w1 --num_samples=10000
  python -m launch.evaluate --workdir=runs/otgan_cifar10 --metrics=is,fid,kid \
      --inception_weights=/path/pt_inception-2015-12-05-6726825d.pth

writes <workdir>/eval/step_<step>.json: the numbers (named with their
protocol, e.g. `is/openai`, `fid/pool3_half_pixel`) and every evaluation
setting. Unset flags take the run's `config.evals` values (the IS/FID
protocol by default: 50,000 samples, 10 splits). The real data is read from
the run's `config.data` (override its folder with --data_dir).

FID reference statistics of a data set, computed once and reused:

  python -m launch.evaluate --workdir=runs/otgan_cifar10 \
      --write_reference=stats/cifar10_train.npz
  python -m launch.evaluate ... --metrics=fid --reference_stats=stats/cifar10_train.npz
"""

import json
import os

from absl import app
from absl import flags
from absl import logging

from launch import shared

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.",
                               required=True)
_METRICS = flags.DEFINE_string(
    "metrics", None, "Comma-separated metrics; default config.evals.metrics.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step; default latest.")
_SEED = flags.DEFINE_integer("seed", 0, "Latent seed of the samples.")
_OUT = flags.DEFINE_string("out", None,
                           "Output JSON; default <workdir>/eval/step_N.json.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Override config.data.data_dir.")
_WRITE_REFERENCE = flags.DEFINE_string(
    "write_reference", None,
    "Write the FID reference statistics of the run's real data to this .npz "
    "and exit (no samples, no checkpoint needed).")
# Overrides of config.evals.<name>.
_OVERRIDES = {
    "num_samples": flags.DEFINE_integer("num_samples", None,
                                        "Generated samples."),
    "num_reference": flags.DEFINE_integer("num_reference", None,
                                          "Real examples for references."),
    "batch_size": flags.DEFINE_integer("batch_size", None, "Inception batch."),
    "inception_weights": flags.DEFINE_string(
        "inception_weights", None, "Inception weights file (.pth or .npz)."),
    "reference_stats": flags.DEFINE_string(
        "reference_stats", None, "FID reference statistics .npz."),
    "is_variant": flags.DEFINE_enum("is_variant", None, ["openai", "tfgan"],
                                    "Inception Score protocol."),
    "fid_resize": flags.DEFINE_enum("fid_resize", None, ["half_pixel", "tf1"],
                                    "FID resize protocol."),
}


def _config():
  """The run's config, completed with today's defaults for newer keys."""
  config = shared.run_config(_WORKDIR.value)
  if _METRICS.value is not None:
    config.evals.metrics = _METRICS.value
  for name, flag in _OVERRIDES.items():
    if flag.value is not None:
      config.evals[name] = flag.value
  if _DATA_DIR.value is not None:
    config.data.data_dir = _DATA_DIR.value
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  shared.quiet_libraries()
  # pylint: disable=g-import-not-at-top
  import jax
  from otgan_jax import data as data_lib
  from otgan_jax import sampling
  from otgan_jax.evaluation import evaluators
  from otgan_jax.evaluation import image_metrics
  # pylint: enable=g-import-not-at-top
  # Bad input ends in one line (shared.run), without a traceback.
  config = _config()
  if _WRITE_REFERENCE.value:
    config.evals.metrics = "fid"
    source = data_lib.build_source(config.data, seed=config.seed)
    evaluator = evaluators.Evaluator(config.evals, info=source.info,
                                     data_config=config.data, source=source)
    stats = evaluator.reference_stats()
    os.makedirs(os.path.dirname(os.path.abspath(_WRITE_REFERENCE.value)),
                exist_ok=True)
    image_metrics.save_stats(_WRITE_REFERENCE.value, stats)
    logging.info("Wrote FID reference statistics of %d %s images to %s",
                 stats.num, source.info.name, _WRITE_REFERENCE.value)
    return
  if not config.evals.metrics:
    raise ValueError("No metrics: pass --metrics=is,fid,... (or set "
                     "config.evals.metrics in the run's config).")
  exp, state, step = sampling.restore_run(
      _WORKDIR.value, config=config, step=_STEP.value, with_data=True)
  evaluator = evaluators.Evaluator(
      config.evals, info=exp.info, data_config=config.data,
      source=exp.source, cache_dir=os.path.join(_WORKDIR.value, "eval"),
      mesh=exp.mesh)
  samples = exp.sample(state.ema_params, config.evals.num_samples,
                       jax.random.key(_SEED.value))
  results = evaluator(samples)
  path = evaluators.write_results(_WORKDIR.value, step, results, config,
                                  path=_OUT.value)
  print(json.dumps(results, indent=2, sort_keys=True))
  logging.info("Wrote %s", path)


if __name__ == "__main__":
  shared.run(main)

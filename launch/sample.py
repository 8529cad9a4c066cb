r"""Writes samples of a trained generator (EMA weights) to an .npz and a PNG.

  python -m launch.sample --workdir=runs/otgan_digits --num=1000 \
      --out=runs/otgan_digits/samples.npz

The .npz holds `samples`: float32 in the data's own range, [N, H, W, C] for
images or [N, D] for vectors. A grid (images) or scatter plot (2-D data) is
written beside it with the same name and .png. No data is read.
"""

import os

from absl import app
from absl import flags
from absl import logging

from launch import shared

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.",
                               required=True)
_NUM = flags.DEFINE_integer("num", 1000, "Number of samples.")
_OUT = flags.DEFINE_string("out", None,
                           "Output .npz; default <workdir>/samples.npz.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step; default latest.")
_SEED = flags.DEFINE_integer("seed", 0, "Latent seed.")
_CHUNK = flags.DEFINE_integer("chunk", 1000, "Samples per generator call.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  shared.quiet_libraries()
  # pylint: disable=g-import-not-at-top
  from otgan_jax import sampling
  # pylint: enable=g-import-not-at-top
  out = _OUT.value or os.path.join(_WORKDIR.value, "samples.npz")
  # Bad input ends in one line (shared.run), without a traceback.
  config = shared.run_config(_WORKDIR.value)
  samples, step = sampling.sample_from_workdir(
      _WORKDIR.value, num=_NUM.value, seed=_SEED.value, step=_STEP.value,
      chunk=_CHUNK.value, config=config)
  png = sampling.save(out, samples, _WORKDIR.value, config)
  logging.info("Wrote %d samples of step %d to %s and %s", len(samples), step,
               out, png)


if __name__ == "__main__":
  shared.run(main)

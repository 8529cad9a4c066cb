r"""Benchmark: FID/IS Inception forward throughput and 50k-sample wall time.

  python bench/inception.py                           # batch sizes 50,200,500
  python bench/inception.py --batch_sizes=4,8 --repeats=2 --measure_n=16 \
      --out=bench/inception_cpu.json                  # a quick CPU run

Times the jitted, data-parallel step of `InceptionExtractor` (uint8 CIFAR-
sized inputs, TF1 legacy resize to 299x299, (x - 128) / 128 scaling, pool
features and, with --logits, the 1008-way logits) on every device of the
backend present. Weights are random with the real shapes (the speed does not
depend on their values). The wall time of FID feature extraction for
--num_samples images is EXTRAPOLATED from the best measured throughput; a
short end-to-end run of `inception_outputs` on --measure_n images (host to
device, padding, fetch) checks the extrapolation. Prints a table and writes
JSON (--out).
"""

import json
import os
import platform
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import numpy as np
from flax import traverse_util

from otgan_jax.evaluation import inception

_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["50", "200", "500"],
                                 "Global batch sizes (all devices).")
_INPUT_SIZE = flags.DEFINE_integer("input_size", 32,
                                   "Side of the uint8 input images.")
_RESIZE = flags.DEFINE_enum("resize", "tf1", ["tf1", "half_pixel", "none"],
                            "Resize to 299 ('none': feed input_size as is).")
_PRECISION = flags.DEFINE_enum("precision", "highest",
                               ["highest", "default"],
                               "Conv/matmul precision.")
_LOGITS = flags.DEFINE_bool("logits", True, "Include the 1008-way layer.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (median).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 50_000,
                                    "Samples for the extrapolated FID time.")
_MEASURE_N = flags.DEFINE_integer("measure_n", 0,
                                  "Images for an end-to-end timed run "
                                  "(0: twice the largest batch).")
_OUT = flags.DEFINE_string("out", "bench/inception.json", "JSON output.")


def shaped_params(include_logits):
  """Random params with the real shapes, BatchNorm kept well-conditioned."""
  model = inception.InceptionV3(include_logits=include_logits)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          np.zeros((1, 75, 75, 3), np.float32))["params"]
  rng = np.random.default_rng(0)
  flat = {}
  for key, s in traverse_util.flatten_dict(shapes).items():
    if key[-1] == "kernel":
      value = rng.standard_normal(s.shape) * np.sqrt(2 / np.prod(s.shape[:-1]))
    else:
      value = np.ones(s.shape) if key[-1] in ("scale", "var") else np.zeros(
          s.shape)
    flat[key] = value.astype(np.float32)
  return traverse_util.unflatten_dict(flat)


def time_batch(extractor, batch, repeats):
  """(compile+first-call seconds, median seconds per step)."""
  t0 = time.perf_counter()
  jax.block_until_ready(extractor.apply(batch))
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(extractor.apply(batch))
    times.append(time.perf_counter() - t0)
  return first, sorted(times)[len(times) // 2]


def main(argv):
  del argv
  params = shaped_params(_LOGITS.value)
  resize = None if _RESIZE.value == "none" else _RESIZE.value
  precision = None if _PRECISION.value == "default" else "highest"
  side = _INPUT_SIZE.value
  rng = np.random.default_rng(1)
  dev = jax.devices()[0]
  info = {"backend": jax.default_backend(), "device_kind": dev.device_kind,
          "device_count": jax.device_count(), "cpu_count": os.cpu_count(),
          "platform": platform.platform(), "jax": jax.__version__,
          "input": f"{side}x{side} uint8", "resize": _RESIZE.value,
          "precision": _PRECISION.value, "logits": _LOGITS.value}
  print(" ".join(f"{k}={v}" for k, v in info.items()))
  rows = []
  print(f"{'batch':>6} {'compile_s':>10} {'step_s':>9} {'img/s':>9}")
  for bs in map(int, _BATCH_SIZES.value):
    extractor = inception.InceptionExtractor(
        params, resize=resize, batch_size=bs, precision=precision)
    batch = rng.integers(0, 256, (extractor.batch_size, side, side, 3),
                         np.uint8)
    first, step = time_batch(extractor, batch, _REPEATS.value)
    row = {"batch_size": extractor.batch_size, "compile_and_first_s": first,
           "step_s": step, "images_per_s": extractor.batch_size / step}
    rows.append(row)
    print(f"{row['batch_size']:>6} {first:>10.2f} {step:>9.3f} "
          f"{row['images_per_s']:>9.1f}")
  best = max(rows, key=lambda r: r["images_per_s"])
  n = _NUM_SAMPLES.value
  estimate = n / best["images_per_s"]
  print(f"EXTRAPOLATED (not measured): FID features of {n:,} samples "
        f"~ {estimate:,.0f} s ({estimate / 60:.1f} min) at batch "
        f"{best['batch_size']}, {best['images_per_s']:.1f} img/s, "
        "excluding compilation.")
  measure_n = _MEASURE_N.value or 2 * best["batch_size"]
  extractor = inception.InceptionExtractor(
      params, resize=resize, batch_size=best["batch_size"], precision=precision)
  images = rng.integers(0, 256, (measure_n, side, side, 3), np.uint8)
  extractor(images[:extractor.batch_size])  # Compile outside the timing.
  t0 = time.perf_counter()
  extractor(images)
  measured = time.perf_counter() - t0
  print(f"MEASURED end-to-end: {measure_n} images in {measured:.2f} s "
        f"({measure_n / measured:.1f} img/s, incl. padding and transfers)")
  result = dict(info, rows=rows, num_samples=n,
                extrapolated_fid_features_s=estimate,
                extrapolated_from_batch=best["batch_size"],
                end_to_end={"images": measure_n, "seconds": measured,
                            "images_per_s": measure_n / measured})
  with open(_OUT.value, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)

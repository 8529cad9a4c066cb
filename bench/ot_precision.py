r"""Study: how much an accelerator's matmul precision moves OT-GAN's loss.

  python bench/ot_precision.py --data_dir=/path/to/cifar-10-batches-bin
  python bench/ot_precision.py --n=64 --sparse_ks=16  # quick, random images

XLA:CPU computes every float32 product in float32, but on a GPU the
default precision rounds a float32 matmul's inputs to TF32 (10-bit
mantissa) and on a TPU to bfloat16 (7 bits; "bfloat16_3x", `Precision.HIGH`
there, splits each input into two bfloat16 parts and keeps three of the four
products). OT-GAN's epsilon, 0.002, is of the order of those roundings of
the cosine cost, and the plan weighs a cost error of delta by
`exp(delta / epsilon)`. This emulates each precision on the CPU (the
features rounded as the hardware rounds them, products accumulated in
float32) and reports, against float32:

1. The paper's loss (configs/otgan_cifar10.py's critic and generator at
   initialisation, 32768-d features, X and X' real CIFAR-10 images (--data_dir;
   uniform noise without it), Y and Y' generated; n of each, 500
   iterations): the largest and mean error of the cost matrix X-Y, and the
   loss's and its gradient's relative errors. The forward products are
   rounded; the backward pass's are float32 (a straight-through rounding),
   so the gradient's error is the plan's and the cost's, not the backward
   products'.
2. Concentrated features (a trained critic may put its features on a few
   coordinates): every vector non-zero on the same k of 32768 coordinates
   (exponential entries), n of them against n: the cost matrix's largest
   and mean error.

`config.ot.precision` (losses.otgan.PRECISIONS) picks the precision of the
cost matrices' products; "highest" (float32) is the default. Prints a
markdown table and writes it (--md) and JSON (--out).
"""

import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from bench.accelerator import CIFAR
from configs import otgan_cifar10
from otgan_jax import experiment
from otgan_jax import losses
from otgan_jax.data import base as data_base
from otgan_jax.data import readers
from otgan_jax.losses import otgan as otgan_loss

FLAGS = flags.FLAGS
_COSINE_RIDGE = otgan_loss._COSINE_RIDGE  # pylint: disable=protected-access


def tf32(x):
  """Rounds float32 to TF32's 10-bit mantissa (to nearest, ties to even)."""
  bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
  bits = (bits + jnp.uint32(0xFFF) + ((bits >> 13) & 1)) & jnp.uint32(
      0xFFFFE000)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def bf16(x):
  return x.astype(jnp.bfloat16).astype(jnp.float32)


def _dot(a, b):
  return jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)


def _straight_through(a, rounded):
  return a + jax.lax.stop_gradient(rounded - a)


def products(mode, a, b):
  """`a @ b.T` as `mode` computes it: float32 products of rounded inputs."""
  if mode == "float32":
    return _dot(a, b)
  if mode in ("tensorfloat32", "bfloat16"):
    r = tf32 if mode == "tensorfloat32" else bf16
    return _dot(_straight_through(a, r(a)), _straight_through(b, r(b)))
  if mode == "bfloat16_3x":
    hi_a, hi_b = bf16(a), bf16(b)
    lo_a, lo_b = bf16(a - hi_a), bf16(b - hi_b)
    out = _dot(hi_a, hi_b) + _dot(hi_a, lo_b) + _dot(lo_a, hi_b)
    return _straight_through(_dot(a, b), out)
  raise ValueError(mode)


MODES = ("tensorfloat32", "bfloat16_3x", "bfloat16")


def cosine(mode):
  """The cosine cost matrix with `mode`'s products (norms in float32, as
  `losses.cost_matrix` computes them)."""
  def cost(a, b):
    norms = (jnp.linalg.norm(a, axis=1)[:, None]
             * jnp.linalg.norm(b, axis=1)[None] + _COSINE_RIDGE)
    return 1.0 - products(mode, a, b) / norms
  return cost


def paper_features(n, data_dir):
  """`[4, n, 32768]` critic features of X, X' (real) and Y, Y' (generated)
  from the paper's networks at initialisation."""
  c = otgan_cifar10.get_config()
  c.batch_size = n
  c.evals.metrics = ""
  exp = experiment.Experiment(c, info=CIFAR, devices=jax.devices()[:1])
  if data_dir:
    x, _ = readers.load_cifar10(data_dir, "train")
    real = jnp.asarray(data_base.normalize(x[:2 * n], CIFAR))
  else:
    real = jax.random.uniform(jax.random.key(1), (2 * n,) + CIFAR.shape,
                              minval=-1, maxval=1)
  state = exp.init_state(real[:c.model.init_batch_size])
  z = exp.method.sample_latent(jax.random.key(0), 2 * n)
  critic = jax.jit(exp.method.critic.apply)
  fake = jax.jit(exp.generator.apply)(state.gen_params, z)
  chunk = 250
  feats = [critic(state.critic_params, images[i:i + chunk])
           for images in (real, fake) for i in range(0, 2 * n, chunk)]
  return jnp.concatenate(feats).reshape(4, n, -1)


def _cost_errors(cost, exact, a, b):
  err = jnp.abs(cost(a, b) - exact)
  return float(err.max()), float(err.mean())


def loss_rows(feats, iterations, epsilon):
  """Errors of the cost X-Y, the loss and its gradient, for each mode."""
  def value_and_grad(mode):
    fn = lambda f: losses.minibatch_energy_distance(
        f[0], f[1], f[2], f[3], epsilon=epsilon, num_iterations=iterations,
        cost=cosine(mode))[0]
    return jax.jit(jax.value_and_grad(fn))(feats)

  exact_cost = cosine("float32")(feats[0], feats[2])
  value, grad = value_and_grad("float32")
  rows = [{"mode": "float32", "loss": float(value),
           "cost_min": float(exact_cost.min()),
           "cost_max": float(exact_cost.max())}]
  for mode in MODES:
    v, g = value_and_grad(mode)
    max_err, mean_err = _cost_errors(cosine(mode), exact_cost, feats[0],
                                     feats[2])
    rows.append({
        "mode": mode, "loss": float(v), "cost_max_err": max_err,
        "cost_mean_err": mean_err,
        "loss_rel_err": abs(float(v - value)) / abs(float(value)),
        "grad_rel_err": float(jnp.linalg.norm(g - grad)
                              / jnp.linalg.norm(grad))})
    print(rows[-1], flush=True)
  return rows


def sparse_rows(ks, n, d=32768, seed=0):
  """Cost errors on features non-zero on the same k coordinates."""
  rng = np.random.default_rng(seed)
  rows = []
  for k in ks:
    f = np.zeros((2, n, d), np.float32)
    f[:, :, rng.choice(d, k, replace=False)] = rng.exponential(
        size=(2, n, k))
    a, b = jnp.asarray(f[0]), jnp.asarray(f[1])
    exact = cosine("float32")(a, b)
    row = {"k": k, "cost_min": float(exact.min()),
           "cost_max": float(exact.max())}
    for mode in MODES:
      row[mode] = _cost_errors(cosine(mode), exact, a, b)
    rows.append(row)
    print(row, flush=True)
  return rows


def table(result):
  eps = result["epsilon"]
  lines = [f"Machine: {result['machine']['device_kind']}, jax "
           f"{result['machine']['jax']}, {result['date']}. Features: "
           f"{result['features']}; n = {result['n']}, "
           f"{result['iterations']} iterations, epsilon {eps}.", "",
           "| products | cost X-Y, largest error | mean error | largest / "
           "epsilon | loss, relative error | gradient, relative error |",
           "|---|---:|---:|---:|---:|---:|"]
  for r in result["loss"][1:]:
    lines.append(f"| {r['mode']} | {r['cost_max_err']:.2e} | "
                 f"{r['cost_mean_err']:.2e} | {r['cost_max_err'] / eps:.3f} | "
                 f"{r['loss_rel_err']:.2e} | {r['grad_rel_err']:.2e} |")
  if result["sparse"]:
    lines += ["", "Concentrated features (non-zero on the same k of 32768 "
              "coordinates; the cost matrix's largest error / epsilon, mean "
              "error):", "",
              "| k | cost range | " + " | ".join(MODES) + " |",
              "|---:|---|" + "---:|" * len(MODES)]
    for r in result["sparse"]:
      cells = " | ".join(f"{r[m][0] / eps:.3f} ({r[m][1]:.1e})"
                         for m in MODES)
      lines.append(f"| {r['k']} | [{r['cost_min']:.2f}, {r['cost_max']:.2f}]"
                   f" | {cells} |")
  return "\n".join(lines)


def main(argv):
  del argv
  start = time.time()
  n = FLAGS.n
  feats = paper_features(n, FLAGS.data_dir)
  result = {
      "machine": limits_lib.machine(),
      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
      "features": ("the paper's critic at initialisation on "
                   + ("CIFAR-10 images" if FLAGS.data_dir
                      else "uniform noise images")
                   + " and its generator's samples"),
      "n": n, "iterations": FLAGS.iterations, "epsilon": FLAGS.epsilon,
      "loss": loss_rows(feats, FLAGS.iterations, FLAGS.epsilon),
      "sparse": sparse_rows([int(k) for k in FLAGS.sparse_ks if k], n)}
  text = table(result)
  limits_lib.save_tables(result, FLAGS.out, FLAGS.md, text)
  print(text)
  print(f"wrote {FLAGS.out} and {FLAGS.md} in {time.time() - start:.0f} s")


def _define_flags():
  """The flags, defined when run as a script only (launch.tables, imported
  beside this module in the tests, defines --out in absl's one registry)."""
  flags.DEFINE_string(
      "data_dir", "", "CIFAR-10's cifar-10-batches-bin folder for X and X' "
      "(empty: uniform noise images).")
  flags.DEFINE_integer("n", 500, "Size of each of X, X', Y, Y'.")
  flags.DEFINE_integer("iterations", 500, "Sinkhorn iterations.")
  flags.DEFINE_float("epsilon", 0.002, "Entropic regularisation.")
  flags.DEFINE_list(
      "sparse_ks", ["16", "256", "4096"],
      "Non-zero coordinates of the concentrated features ('' = skip).")
  flags.DEFINE_string("out", "bench/out/ot_precision.json", "JSON output.")
  flags.DEFINE_string("md", "bench/out/ot_precision.md",
                      "Markdown table output.")


if __name__ == "__main__":
  _define_flags()
  app.run(main)

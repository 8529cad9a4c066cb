"""Transport metrics of the assignment method: exact W1 and assignment variance.

Both follow section 6.2 of Laschos, Tinapp and Obermayer ("Training generative
networks with arbitrary optimal transport costs", paper 004 in
`../shared/papers/`): ten times as many generated points as real points
(5000 real MNIST / Fashion-MNIST images, 32x32 in [-1, 1], flattened), W1 with
a Euclidean ground cost from POT's exact network simplex (`ot.emd`, which
implements the algorithm the paper cites), and the spread of the generated
points over the real ones. Everything runs on the host in float64 (the
assignment through `jax`, under `jax.enable_x64`, on the CPU device).
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from otgan_jax.losses import blockwise

CostFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_OPTIMAL = 1  # POT's result code for a converged network simplex.


def _pot():
  """POT, imported on first use: half a second of start-up (with scikit-learn
  and SciPy) that training, sampling and the other metrics do not need.

  POT imports every installed backend at import time; TensorFlow and PyTorch
  take seconds and may grab GPU memory, and W1 needs neither.
  """
  os.environ.setdefault("POT_BACKEND_DISABLE_TENSORFLOW", "1")
  os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
  import ot  # pylint: disable=g-import-not-at-top
  return ot


def _flatten(points: np.ndarray, name: str) -> np.ndarray:
  points = np.asarray(points, np.float64)
  if points.ndim < 2 or not len(points):
    raise ValueError(f"{name} must be [n, ...] with n > 0, got shape "
                     f"{points.shape}.")
  return points.reshape(len(points), -1)


def _subsample(points: np.ndarray, max_points: int | None,
               rng: np.random.Generator | None) -> np.ndarray:
  if max_points is None or len(points) <= max_points:
    return points
  if rng is None:
    raise ValueError("max_points subsampling needs an rng.")
  return points[rng.choice(len(points), max_points, replace=False)]


def exact_w1(x: np.ndarray, y: np.ndarray, *, metric: str = "euclidean",
             max_points: int | None = None,
             rng: np.random.Generator | int | None = None,
             num_iter_max: int = 100_000_000) -> float:
  """Exact Wasserstein-1 distance between two point clouds.

  Uniform weights `1/n` and `1/m` on sets of any sizes; the cost matrix is
  `ot.dist(x, y, metric)` and the transport problem is solved exactly with
  POT's network simplex (`ot.emd2`). The cost matrix takes `8 n m` bytes
  (2 GB for the paper's 50,000 x 5,000): use `max_points` to subsample.

  Args:
    x: `[n, ...]` points (images are flattened).
    y: `[m, ...]` points with the same trailing shape.
    metric: Ground cost, any `ot.dist` metric; 'euclidean' gives W1.
    max_points: If set, each set larger than this is subsampled to it,
      without replacement.
    rng: numpy generator or seed for the subsampling.
    num_iter_max: Network simplex iteration cap; POT's default of 100,000
      stops early on problems of a few thousand points.

  Returns:
    The optimal transport cost `min_P sum_ij P_ij M_ij`.

  Raises:
    RuntimeError: If the network simplex did not reach optimality.
  """
  rng = None if rng is None else np.random.default_rng(rng)
  x = _subsample(_flatten(x, "x"), max_points, rng)
  y = _subsample(_flatten(y, "y"), max_points, rng)
  if x.shape[1] != y.shape[1]:
    raise ValueError(f"Point sizes differ: {x.shape[1]} vs {y.shape[1]}.")
  ot = _pot()
  cost_matrix = ot.dist(x, y, metric=metric)
  a = np.full(len(x), 1.0 / len(x))
  b = np.full(len(y), 1.0 / len(y))
  with warnings.catch_warnings():
    # The log below carries the same message; raise on it instead.
    warnings.filterwarnings("ignore", message="numItermax reached")
    cost, log = ot.emd2(a, b, cost_matrix, numItermax=num_iter_max, log=True)
  if log["result_code"] != _OPTIMAL or log["warning"] is not None:
    raise RuntimeError(
        f"ot.emd2 did not converge on a {len(x)} x {len(y)} problem "
        f"(result code {log['result_code']}: {log['warning']}); raise "
        "num_iter_max or subsample with max_points.")
  return float(cost)


def _host_device():
  """The CPU device, where the float64 search runs (None: JAX's default)."""
  try:
    return jax.local_devices(backend="cpu")[0]
  except RuntimeError:  # A JAX restricted to accelerators (JAX_PLATFORMS).
    return None


def _builtin_cost(x: jax.Array, y: jax.Array, *, cost: str) -> jax.Array:
  xy = jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST)
  sq = jnp.maximum(jnp.sum(x * x, axis=1)[:, None] +
                   jnp.sum(y * y, axis=1)[None, :] - 2.0 * xy, 0.0)
  return sq if cost == "sqeuclidean" else jnp.sqrt(sq)


def _host_cost(cost: CostFn):
  """A numpy cost as a traceable one (`jax.pure_callback`), in float64."""

  def traced(x: jax.Array, y: jax.Array) -> jax.Array:
    shape = jax.ShapeDtypeStruct((x.shape[0], y.shape[0]), jnp.float64)
    return jax.pure_callback(
        lambda a, b: np.asarray(cost(a, b), np.float64), shape, x, y)

  return traced


@functools.partial(jax.jit, static_argnames=("cost", "batch_size"))
def _assign(generated, real, offsets, *, cost, batch_size):
  fn = (_host_cost(cost) if callable(cost)
        else functools.partial(_builtin_cost, cost=cost))
  index, _ = blockwise.argmin(generated, real, fn, offsets,
                              block_size=batch_size,
                              query_block_size=batch_size)
  return index


def assign_to_reals(generated: np.ndarray, real: np.ndarray, *,
                    cost: str | CostFn = "sqeuclidean",
                    potential: np.ndarray | None = None,
                    batch_size: int = 1024) -> np.ndarray:
  """Index of the real point each generated point is assigned to.

  `j(x) = argmin_j c(x, y_j) + psi_j` over all reals, ties to the lowest
  index; with `potential=None` (psi = 0) this is the closest real point
  under c. The search is `losses.blockwise.argmin` on blocks of `batch_size`
  generated and `batch_size` real points, run on the CPU in float64.

  Args:
    generated: `[n, ...]` generated points (flattened for the built-in costs).
    real: `[m, ...]` real points.
    cost: 'sqeuclidean', 'euclidean', or a numpy callable mapping
      (`[b, ...]` generated, `[k, ...]` real) to a `[b, k]` cost matrix (it
      is called on blocks of both).
    potential: `[m]` assigner values psi(y_j), or None.
    batch_size: Generated (and real) points per cost-matrix block.

  Returns:
    `[n]` int64 indices into `real`.
  """
  if callable(cost):
    generated, real = np.asarray(generated), np.asarray(real)
  elif cost in ("sqeuclidean", "euclidean"):
    generated, real = _flatten(generated, "generated"), _flatten(real, "real")
  else:
    raise ValueError(f"Unknown cost {cost!r}; use 'sqeuclidean', "
                     "'euclidean' or a callable.")
  if not len(generated):
    return np.empty(0, np.int64)
  offsets = None if potential is None else np.broadcast_to(
      np.asarray(potential, np.float64), (len(real),))
  with jax.enable_x64(True), jax.default_device(_host_device()):
    index = _assign(generated, real, offsets, cost=cost,
                    batch_size=int(batch_size))
    return np.asarray(index, np.int64)


def assignment_variance(generated: np.ndarray, real: np.ndarray, *,
                        cost: str | CostFn = "sqeuclidean",
                        potential: np.ndarray | None = None,
                        batch_size: int = 1024) -> dict[str, object]:
  """How evenly the generated points are spread over the real points.

  Paper 004, section 6.2.2, Eq. 16: each generated point is assigned to its
  closest real point under the model's cost c (`assign_to_reals`); with `n_j`
  the number of generated points assigned to real j and `r = n / m` the
  perfect share (10 in the paper, which generates ten times as many points as
  there are reals), the paper's "assignment variance" is

      AV = (1/m) sum_j sqrt((n_j - r)^2) = (1/m) sum_j |n_j - r|,

  a mean absolute deviation despite its name; 0 means every real receives
  exactly r points. The official code never computes it, so this is our
  reading of the formula. The plain variance `(1/m) sum_j (n_j - r)^2` is
  returned beside it. Note that even a perfect generator scores well above 0:
  if each generated point fell on a uniformly random real, `n_j ~
  Binomial(n, 1/m)` and `E|n_j - r|` is about `sqrt(2 r / pi)` (2.5 for
  r = 10), returned as `random_baseline`; the paper's values (0.01-1.99) are
  below that level, so compare numbers only with this procedure.

  Pass `potential` (the assigner's psi at the reals) to count the model's own
  assignment `argmin_j c(x, y_j) + psi_j` instead of the closest real: when
  the assigner is optimal every real gets the same share (METHODS.md,
  section 3, Theorem 3.3 of the paper).

  Args:
    generated: `[n, ...]` generated points (ideally n = 10 m).
    real: `[m, ...]` real points.
    cost: The model's cost, as in `assign_to_reals`.
    potential: `[m]` assigner values, or None for the closest real point.
    batch_size: Generated points per cost-matrix block.

  Returns:
    `assignment_variance` (AV above), `count_variance`, `random_baseline`,
    `ratio` (r), `max_count`, `unassigned_fraction` (share of reals with
    `n_j = 0`) and `counts` (`[m]` ints).
  """
  num_real = len(real)
  index = assign_to_reals(generated, real, cost=cost, potential=potential,
                          batch_size=batch_size)
  counts = np.bincount(index, minlength=num_real)
  ratio = len(generated) / num_real
  from scipy import stats  # pylint: disable=g-import-not-at-top
  binom = stats.binom(len(generated), 1.0 / num_real)
  support = np.arange(len(generated) + 1)
  baseline = float((binom.pmf(support) * np.abs(support - ratio)).sum())
  return {"assignment_variance": float(np.abs(counts - ratio).mean()),
          "count_variance": float(((counts - ratio)**2).mean()),
          "random_baseline": baseline,
          "ratio": ratio,
          "max_count": int(counts.max()),
          "unassigned_fraction": float((counts == 0).mean()),
          "counts": counts}

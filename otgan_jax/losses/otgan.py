"""OT-GAN's mini-batch energy distance (Salimans et al., ICLR 2018, eq. 8).

The cost matrices are ott-jax's point-cloud costs, written out here (the
same per-pair formulas under the same `vmap`; tests/losses/test_otgan.py
checks them and their gradients against ott-jax's `PointCloud`), so that a
training run need not import ott-jax. The transport plans come,
for a fixed iteration count (the paper's setting, `threshold=None`), from
`losses.sinkhorn`'s stabilised-scaling loop over the stacked cost matrices
(the same iterates as a log-domain loop; a matrix-vector product per
half-iteration instead of an exp per entry; bench/sinkhorn_peers.py times it
beside ott-jax), and otherwise (`threshold` set, or `solver="ott"`) from
ott-jax's log-domain Sinkhorn on a `Geometry` of the same cost matrices,
the pairs solved together under `vmap`. The
plans are held constant when differentiating (envelope theorem): the
gradient of
`W(a, b) = sum_ij P_ij C_ij` flows through the cost matrix `C` only.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TYPE_CHECKING, Union

import jax
import jax.numpy as jnp

from otgan_jax.losses import sinkhorn

if TYPE_CHECKING:
  from ott.geometry import geometry

# ott-jax is imported where it is first used (its solver and the geometry
# it takes): its import takes about 1.7-2 s (it loads SciPy and its own tools),
# which a run with our fixed-count loop, sampling, evaluation, the baselines
# and every command that stops at bad input do not need.

Array = jax.Array
CostMatrixFn = Callable[[Array, Array], Array]
Cost = Union[str, CostMatrixFn]

COSTS = ("cosine", "sqeuclidean")
MATCHINGS = ("sinkhorn", "random")
# "auto": ours for a fixed count, ott-jax with a threshold.
SOLVERS = ("auto", "ours", "ott")
# The six pairs of Algorithm 1, line 3, and their weights in L.
# Names use "p" for prime: "xpy" is W(x', y).
PAIR_NAMES = ("xy", "xyp", "xpy", "xpyp", "xxp", "yyp")
PAIR_WEIGHTS = (1.0, 1.0, 1.0, 1.0, -2.0, -2.0)
# Algorithm 2 (conditional): the cross pairs have independent labels.
CONDITIONAL_PAIR_NAMES = ("xyp", "xpy", "xxp", "yyp")
CONDITIONAL_PAIR_WEIGHTS = (1.0, 1.0, -1.0, -1.0)


# ott-jax's `costs.Cosine` ridge: 1 - x.y / (|x| |y| + ridge).
_COSINE_RIDGE = 1e-8
# The products of the cost matrices, as `jax.lax.Precision` names them.
# "highest" is float32 on every backend (the official code's float32). On
# GPUs "tensorfloat32" ("high") and "default" round the features to TF32
# (10-bit mantissa), on TPUs "default" to bfloat16 (7 bits). On features
# concentrated on 16 coordinates the cosine cost then errs by up to 0.3
# epsilon (TF32) and 2.6 epsilon (bfloat16) at epsilon 0.002
# (bench/ot_precision.py; bench/RESULTS.md, "The precision of the cost
# matrices").
PRECISIONS = ("highest", "float32", "high", "tensorfloat32", "bfloat16_3x",
              "default", "bfloat16")
Precision = Union[str, jax.lax.Precision]


def _precision(precision: Precision) -> jax.lax.Precision:
  if isinstance(precision, jax.lax.Precision):
    return precision
  if precision not in PRECISIONS:
    raise ValueError(f"Unknown precision {precision!r} for the cost "
                     f"matrices: use one of {PRECISIONS}.")
  return jax.lax.Precision(precision)


def _cosine(x: Array, y: Array, precision: Precision = "highest") -> Array:
  """ott-jax's `costs.Cosine()(x, y)` for one pair of vectors."""
  cosine_similarity = jnp.vdot(x, y, precision=_precision(precision)) / (
      jnp.linalg.norm(x, axis=-1) * jnp.linalg.norm(y, axis=-1)
      + _COSINE_RIDGE)
  return 1.0 - cosine_similarity


def _sqeuclidean(x: Array, y: Array, precision: Precision = "highest"
                 ) -> Array:
  """ott-jax's `costs.SqEuclidean()(x, y)` for one pair of vectors."""
  cross_term = -2.0 * jnp.vdot(x, y, precision=_precision(precision))
  return jnp.sum(x ** 2, axis=-1) + jnp.sum(y ** 2, axis=-1) + cross_term


def _all_pairs(fn: Callable[[Array, Array], Array], a: Array, b: Array
               ) -> Array:
  """`[n, m]` matrix of `fn(a_i, b_j)` (ott-jax's `CostFn.all_pairs`)."""
  return jax.vmap(lambda x: jax.vmap(lambda y: fn(x, y))(b))(a)


def cost_matrix(a: Array, b: Array, cost: Cost = "cosine", *,
                precision: Precision = "highest") -> Array:
  """Differentiable transport cost matrix.

  Args:
    a: `[n, d]` features.
    b: `[m, d]` features.
    cost: "cosine" (`1 - cos(a_i, b_j)`, in [0, 2]), "sqeuclidean"
      (`||a_i - b_j||^2 / (2 d)`, half the mean squared difference, the cost of
      the paper's toy experiment) or a callable returning the `[n, m]` matrix.
    precision: of the products `a_i . b_j` on accelerators (`PRECISIONS`);
      "highest" (float32) by default. A callable cost sets its own.

  Returns:
    `[n, m]` cost matrix.
  """
  if callable(cost):
    return cost(a, b)
  if cost == "cosine":
    return _all_pairs(functools.partial(_cosine, precision=precision), a, b)
  if cost == "sqeuclidean":
    # Half the mean squared Euclidean distance, as in the paper's section 5.1.
    return _all_pairs(functools.partial(_sqeuclidean, precision=precision),
                      a, b) * (1.0 / (2.0 * a.shape[-1]))
  raise ValueError(f"Unknown cost {cost!r}: use one of {COSTS} or a callable "
                   "(a [n, d], b [m, d]) -> cost matrix [n, m].")


def _ott_geometry(cost_matrix_: Array, epsilon: float) -> geometry.Geometry:
  from ott.geometry import geometry  # pylint: disable=g-import-not-at-top,redefined-outer-name
  return geometry.Geometry(cost_matrix=cost_matrix_, epsilon=epsilon)


def sinkhorn_plan(a: Array, b: Array, *, cost: Cost = "cosine",
                  epsilon: float = 0.002, num_iterations: int = 500,
                  threshold: float | None = None, solver: str = "auto",
                  precision: Precision = "highest"
                  ) -> tuple[Array, Array, Array]:
  """Entropic transport plan with uniform marginals `1/n`, `1/m`.

  Args:
    a: `[n, d]` features (no gradient is taken through the plan).
    b: `[m, d]` features.
    cost: see `cost_matrix`.
    epsilon: ABSOLUTE entropic regularisation (ott's default is relative).
    num_iterations: iteration count; with `threshold=None` exactly this many
      log-domain Sinkhorn iterations run (the official code runs 500).
    threshold: if set, stop early once the marginal L1 error falls below it
      (checked every 10 iterations), with `num_iterations` as the maximum.
    solver: "auto" (ours for a fixed count, ott-jax with a threshold),
      "ours" (`losses.sinkhorn`; fixed count only) or "ott".
    precision: of the cost matrix's products (see `cost_matrix`).

  Returns:
    plan `[n, m]` (sums to 1), iterations used (int scalar), final marginal L1
    error `|P 1 - 1/n|_1 + |P^T 1 - 1/m|_1` (scalar).
  """
  a, b = jax.lax.stop_gradient(a), jax.lax.stop_gradient(b)
  if _use_ours(solver, threshold):
    plans, errs = sinkhorn.sinkhorn_plans(
        cost_matrix(a, b, cost, precision=precision)[None], epsilon,
        num_iterations)
    return plans[0], jnp.asarray(num_iterations, jnp.int32), errs[0]
  return _solve(_ott_geometry(cost_matrix(a, b, cost, precision=precision),
                              epsilon),
                num_iterations, threshold)


def _use_ours(solver: str, threshold: float | None) -> bool:
  if solver not in SOLVERS:
    raise ValueError(f"Unknown solver {solver!r}: use one of {SOLVERS}.")
  if solver == "ours" and threshold is not None:
    raise ValueError('solver="ours" runs a fixed iteration count; unset '
                     'threshold or use solver="ott" (or "auto").')
  return solver == "ours" or (solver == "auto" and threshold is None)


def inner_iterations(num_iterations: int) -> int:
  """ott's `inner_iterations` for exactly `num_iterations` iterations.

  ott runs Sinkhorn in blocks of `inner_iterations` (default 10) and only
  whole blocks: with the default, 5 iterations would run none (the plan is
  then all zeros) and 25 would run 20. The largest divisor of
  `num_iterations` up to 10 keeps the count exact (10 for the usual
  multiples of 10, so those programs are unchanged).
  """
  return max(d for d in range(1, 11) if num_iterations % d == 0)


def _solve(geom: geometry.Geometry, num_iterations: int,
           threshold: float | None) -> tuple[Array, Array, Array]:
  if threshold is None:
    kwargs = dict(min_iterations=num_iterations, max_iterations=num_iterations,
                  inner_iterations=inner_iterations(num_iterations))
  else:
    kwargs = dict(threshold=threshold, max_iterations=num_iterations)
  from ott.solvers import linear  # pylint: disable=g-import-not-at-top
  out = linear.solve(geom, lse_mode=True, **kwargs)
  plan = out.matrix
  n, m = plan.shape
  err = (jnp.abs(plan.sum(1) - 1.0 / n).sum()
         + jnp.abs(plan.sum(0) - 1.0 / m).sum())
  return plan, out.n_iters, err


def random_plan(rng: Array, n: int) -> Array:
  """A uniformly random one-to-one matching as a plan with entries 1/n."""
  perm = jax.random.permutation(rng, n)
  return jax.nn.one_hot(perm, n, dtype=jnp.float32) / n


def transport_cost(a: Array, b: Array, plan: Array, cost: Cost = "cosine", *,
                   precision: Precision = "highest") -> Array:
  """`W(a, b) = sum_ij P_ij C_ij` with the plan held constant."""
  return jnp.sum(jax.lax.stop_gradient(plan)
                 * cost_matrix(a, b, cost, precision=precision))


def _energy(pairs, names, weights, *, epsilon, num_iterations, threshold,
            cost, matching, rng, solver, precision
            ) -> tuple[Array, dict[str, Any]]:
  """`sum_k weights[k] * W(pairs[k])`, the plans solved together."""
  if matching not in MATCHINGS:
    raise ValueError(f"Unknown matching {matching!r}: use one of {MATCHINGS}.")
  arrays = {a.shape for pair in pairs for a in pair}
  if len(arrays) != 1 or pairs[0][0].ndim != 2:
    raise ValueError("x, x_prime, y, y_prime must all be [n, d] arrays of the "
                     f"same shape; got {sorted(arrays)}.")
  n = pairs[0][0].shape[0]
  # One [n, n] cost matrix per pair; the features are never copied per pair.
  costs_ = jnp.stack([cost_matrix(a, b, cost, precision=precision)
                      for a, b in pairs])

  if matching == "sinkhorn" and _use_ours(solver, threshold):
    plans, errs = sinkhorn.sinkhorn_plans(costs_, epsilon, num_iterations)
    iters, errs = jnp.asarray(num_iterations, jnp.int32), jnp.max(errs)
  elif matching == "sinkhorn":
    plans, iters, errs = jax.vmap(lambda c: _solve(
        _ott_geometry(jax.lax.stop_gradient(c), epsilon), num_iterations,
        threshold))(costs_)
    iters, errs = jnp.max(iters), jnp.max(errs)
  else:
    if rng is None:
      raise ValueError('matching="random" needs an rng key.')
    plans = jax.vmap(random_plan, in_axes=(0, None))(
        jax.random.split(rng, len(pairs)), n)
    iters, errs = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)

  ws = jnp.sum(jax.lax.stop_gradient(plans) * costs_, axis=(1, 2))
  # float32 on every backend (a TPU's default dot would round W to bf16).
  loss = jnp.dot(jnp.asarray(weights, ws.dtype), ws,
                 precision=jax.lax.Precision.HIGHEST)
  aux = {f"w/{name}": ws[i] for i, name in enumerate(names)}
  aux["sinkhorn_iters"] = iters
  aux["marginal_error"] = errs
  return loss, aux


def minibatch_energy_distance(
    x: Array, x_prime: Array, y: Array, y_prime: Array, *,
    epsilon: float = 0.002, num_iterations: int = 500,
    threshold: float | None = None, cost: Cost = "cosine",
    matching: str = "sinkhorn", rng: Array | None = None,
    solver: str = "auto", precision: Precision = "highest",
) -> tuple[Array, dict[str, Any]]:
  """OT-GAN's loss `L` (Algorithm 1, line 3) on four feature batches.

  `L = W(x,y) + W(x,y') + W(x',y) + W(x',y') - 2 W(x,x') - 2 W(y,y')`, where
  `W(a, b) = sum_ij P_ij C_ij` and `P` is the entropic plan with uniform
  marginals `1/n`: W is the MEAN transport cost per sample. (The official code
  row-normalises P and so reports n times this value.) Gradients flow only
  through C; the plans are held constant (envelope theorem). The critic
  ascends L, the generator descends it.

  Args:
    x: `[n, d]` critic features of a real batch X.
    x_prime: `[n, d]` features of an independent real batch X'.
    y: `[n, d]` features of a generated batch Y.
    y_prime: `[n, d]` features of an independent generated batch Y'.
    epsilon: absolute entropic regularisation (0.002 = the official 500x cost
      scaling on the cosine cost).
    num_iterations: Sinkhorn iterations (fixed count when `threshold` is None).
    threshold: optional early-stopping marginal error.
    cost: "cosine" (the paper), "sqeuclidean" (the toy experiment; half the
      mean squared distance) or a callable `(a [n,d], b [m,d]) -> [n, m]`.
    matching: "sinkhorn" or "random" (the paper's ablation: a uniformly random
      one-to-one matching per pair, which reduces L to an energy distance).
    rng: PRNG key, required for `matching="random"`.
    solver: "auto" (`losses.sinkhorn`'s loop for a fixed count, ott-jax with
      a threshold), "ours" (fixed count only) or "ott" (ott-jax always).
    precision: of the cost matrices' products on accelerators: "highest"
      (float32, the default and the official code's), "tensorfloat32" or
      "bfloat16_3x" ("high"), "default" (the backend's: TF32 on recent
      GPUs, one bfloat16 pass on TPUs). Sinkhorn and L are float32 always.

  Returns:
    `(loss, aux)`; aux holds `w/xy`, `w/xyp`, `w/xpy`, `w/xpyp`, `w/xxp`,
    `w/yyp` (the six W terms, "p" for prime), `sinkhorn_iters` (the most
    iterations any of the six solves used; 0 for random matching) and
    `marginal_error` (the largest final marginal L1 error; 0 for random
    matching).
  """
  pairs = [(x, y), (x, y_prime), (x_prime, y), (x_prime, y_prime),
           (x, x_prime), (y, y_prime)]
  return _energy(pairs, PAIR_NAMES, PAIR_WEIGHTS, epsilon=epsilon,
                 num_iterations=num_iterations, threshold=threshold, cost=cost,
                 matching=matching, rng=rng, solver=solver,
                 precision=precision)


def conditional_energy_distance(
    x: Array, x_prime: Array, y: Array, y_prime: Array, *,
    epsilon: float = 0.002, num_iterations: int = 500,
    threshold: float | None = None, cost: Cost = "cosine",
    matching: str = "sinkhorn", rng: Array | None = None,
    solver: str = "auto", precision: Precision = "highest",
) -> tuple[Array, dict[str, Any]]:
  """Conditional OT-GAN's loss (Algorithm 2) on four feature batches.

  With real pairs (X, S), (X', S') and generated Y from labels S, Y' from S',
  `L = W[(X,S),(Y',S')] + W[(X',S'),(Y,S)] - W[(X,S),(X',S')]
  - W[(Y,S),(Y',S')]`. The arguments are the critic's features of the
  (image, label) pairs, so `x` embeds (X, S), `y` embeds (Y, S) and so on:
  each cross pair matches batches drawn with independent labels. W, the plans
  and all arguments are as in `minibatch_energy_distance`.

  Returns:
    `(loss, aux)`; aux holds `w/xyp`, `w/xpy`, `w/xxp`, `w/yyp`,
    `sinkhorn_iters` and `marginal_error`.
  """
  pairs = [(x, y_prime), (x_prime, y), (x, x_prime), (y, y_prime)]
  return _energy(pairs, CONDITIONAL_PAIR_NAMES, CONDITIONAL_PAIR_WEIGHTS,
                 epsilon=epsilon, num_iterations=num_iterations,
                 threshold=threshold, cost=cost, matching=matching, rng=rng,
                 solver=solver, precision=precision)

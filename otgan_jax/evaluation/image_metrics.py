"""Sample-quality metrics on classifier outputs and features: IS, FID, KID, P&R.

Pure maths on arrays that some network already produced (class probabilities
or pool features); the networks live elsewhere (`inception*.py`,
`classifier.py`). Everything is computed on the host in float64 so the numbers
follow the reference implementations:

- Inception Score: the OpenAI code of Salimans et al. (2016), 10 contiguous
  splits.
- FID: pytorch-fid's `calculate_frechet_distance` (Heusel et al. 2017), its
  matrix root's trace from a symmetric eigendecomposition (`frechet_distance`).
- KID: the unbiased MMD^2 estimator with kernel `(x.y / d + 1)^3` of
  Binkowski et al. (2018), as in TF-GAN and torch-fidelity.
- Precision and recall: the k-NN manifolds of Kynkaanniemi et al. (2019).

A number is only comparable to another computed with the same network
weights and the same resize: `FeatureStats` carries both, and
`fid_from_stats` refuses to compare statistics made under different protocols.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os

import numpy as np


class ProtocolMismatchError(ValueError):
  """Two feature statistics were made with different weights or resizes."""


def inception_score(probs: np.ndarray, *,
                    num_splits: int = 10) -> tuple[float, float]:
  """Inception Score, as in the OpenAI reference code.

  The samples are cut into `num_splits` contiguous splits (no shuffling, like
  the reference); per split, `exp(mean_x KL(p(y|x) || p(y)))` where `p(y)` is
  the split's mean prediction.

  Args:
    probs: `[n, k]` class probabilities p(y|x) (rows sum to 1).
    num_splits: Number of contiguous splits (10 in the reference).

  Returns:
    (mean, std) of the per-split scores. With 50,000 samples this is the
    protocol behind published numbers.
  """
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2:
    raise ValueError(f"probs must be [n, k], got shape {probs.shape}.")
  n = len(probs)
  if not 1 <= num_splits <= n:
    raise ValueError(f"num_splits={num_splits} must be in [1, {n}].")
  scores = []
  for i in range(num_splits):
    # The reference's split boundaries: i * n // splits.
    part = probs[i * n // num_splits:(i + 1) * n // num_splits]
    marginal = part.mean(axis=0, keepdims=True)
    # 0 * log(0) = 0: xlogy-style masking instead of adding an epsilon.
    with np.errstate(divide="ignore", invalid="ignore"):
      kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
    scores.append(np.exp(kl.sum(axis=1).mean()))
  return float(np.mean(scores)), float(np.std(scores))


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """The symmetric square root of a covariance (eigenvalues below 0 from
  round-off taken as 0), in float64."""
  w, v = np.linalg.eigh(np.asarray(sigma, np.float64))
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, *,
                     sigma2_root: np.ndarray | None = None,
                     sigma1_factor: np.ndarray | None = None) -> float:
  """Frechet distance between two Gaussians (pytorch-fid's quantity).

  `||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`, in float64. The trace
  of the root is taken as `sum sqrt(eig(R2 S1 R2))` with `R2 = S2^(1/2)`
  symmetric: `R2 S1 R2` is similar to `S1 S2`, so the eigenvalues are the
  same, and it is symmetric positive semi-definite, so `eigvalsh` is exact
  to round-off and none is complex. pytorch-fid takes `scipy.linalg.sqrtm`
  of the non-symmetric product instead; on full-rank covariances the two
  agree to about 1e-12 relative (tests/evaluation/test_image_metrics.py),
  and at d = 2048 this is ~5x faster (two eigendecompositions, 2-3 s on
  two cores, against 10-15 s), one when `sigma2_root` is given. On singular
  covariances (fewer samples than dimensions) sqrtm is unstable and
  pytorch-fid retries with `1e-6 * I` added; here no retry is needed.

  With `sigma1_factor`, `F` (`[d, n]`, `S1 = F F^T`, n < d: a set of fewer
  samples than features), the same eigenvalues, less the zeros, are those
  of the `[n, n]` matrix `F^T S2 F` (`M M^T` and `M^T M` with `M = R2 F`):
  no root of S2 and no `d x d` eigendecomposition at all.

  Args:
    mu1: `[d]` mean of the first set.
    sigma1: `[d, d]` covariance of the first set.
    mu2: `[d]` mean of the second set.
    sigma2: `[d, d]` covariance of the second set.
    sigma2_root: `psd_sqrt(sigma2)` if already known (a reference set's).
    sigma1_factor: `[d, n]` with `sigma1 = F @ F.T` (`FeatureStats.factor`).

  Returns:
    The distance (a float >= 0 up to round-off).

  Raises:
    ValueError: On shape mismatch.
  """
  mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(
      mu2).astype(np.float64)
  sigma1 = np.atleast_2d(sigma1).astype(np.float64)
  sigma2 = np.atleast_2d(sigma2).astype(np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"Shape mismatch: means {mu1.shape} vs {mu2.shape}, "
                     f"covariances {sigma1.shape} vs {sigma2.shape}.")
  diff = mu1 - mu2
  if sigma1_factor is not None:
    factor = np.asarray(sigma1_factor, np.float64)
    eig = np.linalg.eigvalsh(factor.T @ sigma2 @ factor)
  else:
    root = psd_sqrt(sigma2) if sigma2_root is None else sigma2_root
    eig = np.linalg.eigvalsh(root @ sigma1 @ root)
  trace_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) -
               2.0 * trace_covmean)


@dataclasses.dataclass(frozen=True)
class FeatureStats:
  """Mean and covariance of a feature set, with the protocol that made it.

  Attributes:
    mu: `[d]` feature mean (float64).
    sigma: `[d, d]` feature covariance (float64, with `ddof=1` as pytorch-fid's
      `np.cov`).
    num: Number of samples the statistics come from.
    weights_hash: sha256 (or another stable id) of the feature network.
    resize: Name of the resize applied before the network (e.g.
      'tf1_bilinear', 'none').
    dataset: What the samples are (e.g. 'cifar10/train'); informative only.
    factor: `[d, num]`, the centred features over `sqrt(num - 1)`
      (`sigma = factor @ factor.T`), kept by `from_features` when
      `num < d`: the FID of such a set needs no `d x d` eigendecomposition
      (`frechet_distance`). Not saved with the statistics.
  """
  mu: np.ndarray
  sigma: np.ndarray
  num: int
  weights_hash: str
  resize: str
  dataset: str = ""
  factor: np.ndarray | None = dataclasses.field(default=None, repr=False,
                                                compare=False)

  @functools.cached_property
  def sigma_root(self) -> np.ndarray:
    """`psd_sqrt(sigma)`, computed once (a reference's serves every FID)."""
    return psd_sqrt(self.sigma)

  @classmethod
  def from_features(cls, features: np.ndarray, *, weights_hash: str,
                    resize: str, dataset: str = "") -> "FeatureStats":
    """Statistics of `[n, d]` features."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
      raise ValueError("features must be [n, d] with n >= 2, got shape "
                       f"{features.shape}.")
    n, d = features.shape
    mu = features.mean(axis=0)
    centred = features - mu  # Once, for the covariance and the factor.
    return cls(mu=mu, sigma=centred.T @ centred / (n - 1), num=n,
               weights_hash=weights_hash, resize=resize, dataset=dataset,
               factor=centred.T / np.sqrt(n - 1) if n < d else None)

  def check_same_protocol(self, other: "FeatureStats") -> None:
    """Raises `ProtocolMismatchError` unless weights, resize and d agree."""
    self.check_protocol(other.weights_hash, other.resize, other.mu.shape,
                        other=other.dataset)

  def check_protocol(self, weights_hash: str, resize: str,
                     shape: tuple[int, ...] | None = None, *,
                     other: str = "") -> None:
    """`check_same_protocol` against the protocol of a set not yet computed
    (an evaluator checks its reference before the Inception pass)."""
    problems = []
    if self.weights_hash != weights_hash:
      problems.append(f"weights hash {self.weights_hash!r} vs "
                      f"{weights_hash!r}")
    if self.resize != resize:
      problems.append(f"resize {self.resize!r} vs {resize!r}")
    if shape is not None and self.mu.shape != tuple(shape):
      problems.append(f"feature size {self.mu.shape} vs {tuple(shape)}")
    if problems:
      raise ProtocolMismatchError(
          f"Feature statistics of {self.dataset or 'set 1'!r} and "
          f"{other or 'set 2'!r} were made under different "
          f"protocols ({'; '.join(problems)}); their distance would not be "
          "comparable to published numbers. Recompute both with the same "
          "network weights and resize.")


def save_stats(path: str | os.PathLike, stats: FeatureStats) -> None:
  """Writes `stats` to an `.npz` file (reference statistics)."""
  with open(path, "wb") as f:
    np.savez(f, mu=stats.mu, sigma=stats.sigma, num=np.int64(stats.num),
             weights_hash=np.str_(stats.weights_hash),
             resize=np.str_(stats.resize), dataset=np.str_(stats.dataset))


def load_stats(path: str | os.PathLike) -> FeatureStats:
  """Reads statistics written by `save_stats`.

  Raises:
    ValueError: If the file lacks a field (e.g. a bare pytorch-fid `.npz`
      with only `mu` and `sigma`, whose protocol is unknown).
  """
  with np.load(path, allow_pickle=False) as data:
    missing = {"mu", "sigma", "num", "weights_hash", "resize",
               "dataset"} - set(data.files)
    if missing:
      raise ValueError(
          f"{os.fspath(path)!r} lacks {sorted(missing)}; statistics without "
          "the weights hash and resize cannot be checked for a matching "
          "protocol. Build a FeatureStats and save it with save_stats.")
    return FeatureStats(mu=data["mu"].astype(np.float64),
                        sigma=data["sigma"].astype(np.float64),
                        num=int(data["num"]),
                        weights_hash=str(data["weights_hash"]),
                        resize=str(data["resize"]),
                        dataset=str(data["dataset"]))


def fid_from_stats(stats1: FeatureStats, stats2: FeatureStats) -> float:
  """FID between two statistics made under the same protocol.

  Raises:
    ProtocolMismatchError: If weights hash, resize or feature size differ.
  """
  stats1.check_same_protocol(stats2)
  if stats2.factor is not None and (
      stats1.factor is None or stats2.num < stats1.num):
    stats1, stats2 = stats2, stats1  # The distance is symmetric.
  if stats1.factor is not None:  # Fewer samples than features.
    return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma,
                            sigma1_factor=stats1.factor)
  return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma,
                          sigma2_root=stats2.sigma_root)


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(feats1: np.ndarray, feats2: np.ndarray, *, num_subsets: int = 100,
        subset_size: int = 1000,
        rng: np.random.Generator | int) -> dict[str, float | int | bool]:
  """Kernel Inception Distance: unbiased MMD^2, averaged over subsets.

  For each of `num_subsets` subsets, `m` rows are drawn without replacement
  from each set (as torch-fidelity does) and
  `MMD_u^2 = sum_{i!=j} [k(x_i,x_j) + k(y_i,y_j)] / (m (m-1))
  - 2 sum_{i,j} k(x_i,y_j) / m^2` with `k(x, y) = (x.y / d + 1)^3`. Each term
  is unbiased, so values can be slightly negative when the sets match.

  Args:
    feats1: `[n1, d]` features of one set.
    feats2: `[n2, d]` features of the other.
    num_subsets: Number of subsets (100 in the reference protocol).
    subset_size: Subset size m (1000 in the reference protocol); reduced to
      `min(n1, n2)` when a set is smaller, which the result reports.
    rng: numpy random generator (or an int seed) for the subsets.

  Returns:
    `kid_mean`, `kid_std` (over subsets), `subset_size` (the m used),
    `num_subsets`, and `subset_size_reduced` (True if m < `subset_size`).
  """
  feats1 = np.asarray(feats1, np.float64)
  feats2 = np.asarray(feats2, np.float64)
  if feats1.ndim != 2 or feats1.shape[1:] != feats2.shape[1:]:
    raise ValueError(f"Feature shapes {feats1.shape} and {feats2.shape} must "
                     "be [n1, d] and [n2, d].")
  rng = np.random.default_rng(rng)
  m = min(subset_size, len(feats1), len(feats2))
  if m < 2:
    raise ValueError("KID needs at least 2 samples in each set.")
  if m < subset_size:
    logging.warning("KID: sets of %d and %d samples are smaller than "
                    "subset_size=%d; using subsets of %d.", len(feats1),
                    len(feats2), subset_size, m)
  values = np.empty(num_subsets)
  for s in range(num_subsets):
    x = feats1[rng.choice(len(feats1), m, replace=False)]
    y = feats2[rng.choice(len(feats2), m, replace=False)]
    kxx, kyy = _polynomial_kernel(x, x), _polynomial_kernel(y, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (
        m * (m - 1))
    values[s] = within - 2.0 * _polynomial_kernel(x, y).sum() / m**2
  return {"kid_mean": float(values.mean()), "kid_std": float(values.std()),
          "subset_size": m, "num_subsets": num_subsets,
          "subset_size_reduced": m < subset_size}


def _squared_distances(a: np.ndarray, b: np.ndarray,
                       b_sq: np.ndarray) -> np.ndarray:
  # |a|^2 + |b|^2 - 2 a.b in one BLAS call; clamp round-off below zero.
  d = (a * a).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
  return np.maximum(d, 0.0)


def _knn_radii(feats: np.ndarray, k: int, batch_size: int) -> np.ndarray:
  """Squared distance of each row to its k-th nearest other row."""
  sq = (feats * feats).sum(axis=1)
  radii = np.empty(len(feats), feats.dtype)
  for start in range(0, len(feats), batch_size):
    d = _squared_distances(feats[start:start + batch_size], feats, sq)
    # Index k, not k - 1: the row's distance to itself (0) is the smallest.
    radii[start:start + batch_size] = np.partition(d, k, axis=1)[:, k]
  return radii


def _coverage(manifold: np.ndarray, radii: np.ndarray, probes: np.ndarray,
              batch_size: int) -> float:
  """Share of probes inside at least one ball B(manifold_i, radius_i)."""
  sq = (manifold * manifold).sum(axis=1)
  inside = 0
  for start in range(0, len(probes), batch_size):
    d = _squared_distances(probes[start:start + batch_size], manifold, sq)
    inside += int((d <= radii[None, :]).any(axis=1).sum())
  return inside / len(probes)


def precision_recall(real_feats: np.ndarray, fake_feats: np.ndarray, *,
                     k: int = 3, batch_size: int = 1000) -> dict[str, float]:
  """Improved precision and recall (Kynkaanniemi et al., 2019).

  Each set's manifold is the union of balls around its points, with radius
  the distance to the point's k-th nearest neighbour in the same set.
  Precision is the share of fake points inside the real manifold; recall the
  share of real points inside the fake manifold. Distances are computed
  `batch_size` rows at a time in float32 (like the reference), so memory is
  `O(batch_size * max(n_real, n_fake))`: 10k x 10k runs in about 40 MB.

  Args:
    real_feats: `[n_real, d]` features of real samples.
    fake_feats: `[n_fake, d]` features of generated samples.
    k: Neighbourhood size (3 in the paper).
    batch_size: Rows of the distance matrix held at once.

  Returns:
    `precision` and `recall`, floats in [0, 1].
  """
  real = np.asarray(real_feats, np.float32)
  fake = np.asarray(fake_feats, np.float32)
  if real.ndim != 2 or real.shape[1:] != fake.shape[1:]:
    raise ValueError(f"Feature shapes {real.shape} and {fake.shape} must be "
                     "[n_real, d] and [n_fake, d].")
  if min(len(real), len(fake)) <= k:
    raise ValueError(f"Both sets need more than k={k} points.")
  real_radii = _knn_radii(real, k, batch_size)
  fake_radii = _knn_radii(fake, k, batch_size)
  return {"precision": _coverage(real, real_radii, fake, batch_size),
          "recall": _coverage(fake, fake_radii, real, batch_size)}

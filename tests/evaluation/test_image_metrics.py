"""IS, FID, KID and precision/recall against closed forms and references."""

import numpy as np
import pytest
from scipy import linalg

from otgan_jax.evaluation import image_metrics as im


def _openai_inception_score(probs, splits):
  """The loop of the OpenAI reference code (improved-gan), verbatim maths."""
  scores = []
  for i in range(splits):
    part = probs[(i * probs.shape[0] // splits):(
        (i + 1) * probs.shape[0] // splits), :]
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    scores.append(np.exp(np.mean(np.sum(kl, 1))))
  return np.mean(scores), np.std(scores)


def test_inception_score_uniform_one_hot_is_num_classes():
  k = 7
  probs = np.eye(k)[np.arange(10 * k * 3) % k]  # every split sees all classes
  mean, std = im.inception_score(probs, num_splits=10)
  assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_identical_predictions_is_one():
  probs = np.tile(np.array([[0.1, 0.2, 0.7]]), (50, 1))
  assert im.inception_score(probs, num_splits=5) == pytest.approx((1.0, 0.0))


def test_inception_score_matches_reference_code():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.full(10, 0.3), size=1003)  # uneven split sizes
  np.testing.assert_allclose(im.inception_score(probs, num_splits=10),
                             _openai_inception_score(probs, 10), rtol=1e-12)


def test_frechet_distance_diagonal_closed_form():
  rng = np.random.default_rng(1)
  a, b = rng.uniform(0.5, 2.0, 6), rng.uniform(0.5, 2.0, 6)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  expected = ((mu1 - mu2)**2).sum() + ((np.sqrt(a) - np.sqrt(b))**2).sum()
  assert im.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == (
      pytest.approx(expected, rel=1e-10))


def test_frechet_distance_full_covariances():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
  s1, s2 = x @ x.T + np.eye(8), y @ y.T + np.eye(8)
  # Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2), a symmetric root.
  r1 = linalg.sqrtm(s1).real
  eig = np.linalg.eigvalsh(r1 @ s2 @ r1)
  expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig).sum()
  zero = np.zeros(8)
  assert im.frechet_distance(zero, s1, zero, s2) == pytest.approx(
      expected, rel=1e-8)


def _pytorch_fid(mu1, s1, mu2, s2):
  """pytorch-fid's calculate_frechet_distance (scipy's sqrtm of S1 S2)."""
  covmean = linalg.sqrtm(s1 @ s2).real
  return (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - (
      2 * np.trace(covmean))


def test_fid_equals_pytorch_fids_sqrtm_and_the_reference_root_is_kept():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(600, 256))
  y = 0.5 * x + rng.normal(size=(600, 256)) + 0.1
  ref = im.FeatureStats.from_features(x, weights_hash="h", resize="r")
  gen = im.FeatureStats.from_features(y, weights_hash="h", resize="r")
  want = _pytorch_fid(gen.mu, gen.sigma, ref.mu, ref.sigma)
  assert im.fid_from_stats(gen, ref) == pytest.approx(want, rel=1e-10)
  assert "sigma_root" in vars(ref)  # Computed once, kept for the next FID.
  np.testing.assert_allclose(ref.sigma_root @ ref.sigma_root, ref.sigma,
                             atol=1e-10)
  # Either order is the same distance.
  assert im.fid_from_stats(ref, gen) == pytest.approx(want, rel=1e-10)
  # Fewer samples than dimensions: a singular covariance still gives a
  # finite distance >= 0 without pytorch-fid's retry ...
  assert ref.factor is None and gen.factor is None  # 600 samples, d = 256.
  few = im.FeatureStats.from_features(y[:20], weights_hash="h", resize="r")
  value = im.fid_from_stats(few, ref)
  assert np.isfinite(value) and value > 0
  # ... taken from the 20 x 20 matrix F^T S2 F (`few.factor`), equal to the
  # d x d route through the reference's root, in either order. (That route
  # adds the roots of its 236 round-off eigenvalues, of +-1e-14: 6.5e-6 to
  # the trace, 3e-8 of the distance.)
  np.testing.assert_allclose(few.factor @ few.factor.T, few.sigma, atol=1e-12)
  by_root = im.frechet_distance(few.mu, few.sigma, ref.mu, ref.sigma,
                                sigma2_root=ref.sigma_root)
  assert value == pytest.approx(by_root, rel=1e-7)
  assert im.fid_from_stats(ref, few) == value
  # Two such sets: the smaller one's factor.
  fewer = im.FeatureStats.from_features(x[:12], weights_hash="h", resize="r")
  assert im.fid_from_stats(few, fewer) == pytest.approx(
      im.frechet_distance(few.mu, few.sigma, fewer.mu, fewer.sigma),
      rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero():
  feats = np.random.default_rng(3).normal(size=(500, 16))
  stats = im.FeatureStats.from_features(feats, weights_hash="h", resize="none")
  assert abs(im.fid_from_stats(stats, stats)) < 1e-6


def test_stats_roundtrip_and_protocol_mismatch(tmp_path):
  feats = np.random.default_rng(4).normal(size=(100, 5))
  stats = im.FeatureStats.from_features(
      feats, weights_hash="abc", resize="tf1_bilinear", dataset="toy/train")
  im.save_stats(tmp_path / "s.npz", stats)
  loaded = im.load_stats(tmp_path / "s.npz")
  np.testing.assert_array_equal(loaded.mu, stats.mu)
  np.testing.assert_array_equal(loaded.sigma, stats.sigma)
  assert (loaded.num, loaded.weights_hash, loaded.resize, loaded.dataset) == (
      100, "abc", "tf1_bilinear", "toy/train")
  other_weights = im.FeatureStats.from_features(
      feats, weights_hash="xyz", resize="tf1_bilinear")
  with pytest.raises(im.ProtocolMismatchError, match="weights hash"):
    im.fid_from_stats(loaded, other_weights)
  other_resize = im.FeatureStats.from_features(
      feats, weights_hash="abc", resize="half_pixel_bilinear")
  with pytest.raises(im.ProtocolMismatchError, match="resize"):
    im.fid_from_stats(loaded, other_resize)
  np.savez(tmp_path / "bare.npz", mu=stats.mu, sigma=stats.sigma)
  with pytest.raises(ValueError, match="weights_hash"):
    im.load_stats(tmp_path / "bare.npz")


def test_kid_same_vs_shifted():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
  same = im.kid(x, y, num_subsets=20, subset_size=200, rng=0)
  shifted = im.kid(x, y + 1.0, num_subsets=20, subset_size=200, rng=0)
  assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3
  assert shifted["kid_mean"] > 0.5 and shifted["kid_mean"] > 20 * abs(
      same["kid_mean"])
  assert same["subset_size"] == 200 and not same["subset_size_reduced"]
  small = im.kid(x[:50], y, num_subsets=3, subset_size=1000, rng=0)
  assert small["subset_size"] == 50 and small["subset_size_reduced"]


def test_kid_is_unbiased():
  # 1-D, k(x, y) = (xy + 1)^3 = 1 + 3xy + 3x^2y^2 + x^3y^3, so the population
  # MMD^2 is 3 (dm1)^2 + 3 (dm2)^2 + (dm3)^2 in the raw moments m1, m2, m3.
  # Tiny subsets make the biased (V-statistic) estimate visibly too large.
  rng = np.random.default_rng(6)
  n, m, subsets = 20000, 10, 4000
  x = rng.normal(size=(n, 1))
  same = im.kid(x, rng.normal(size=(n, 1)), num_subsets=subsets,
                subset_size=m, rng=1)
  se = same["kid_std"] / np.sqrt(subsets)
  assert abs(same["kid_mean"]) < 4 * se
  mu = 0.3
  moments = lambda mu: np.array([mu, mu**2 + 1, mu**3 + 3 * mu])
  dm = moments(0.0) - moments(mu)
  exact = 3 * dm[0]**2 + 3 * dm[1]**2 + dm[2]**2
  shifted = im.kid(x, rng.normal(size=(n, 1)) + mu, num_subsets=subsets,
                   subset_size=m, rng=2)
  se = shifted["kid_std"] / np.sqrt(subsets)
  assert abs(shifted["kid_mean"] - exact) < 4 * se


def test_precision_recall_identical_and_disjoint():
  rng = np.random.default_rng(7)
  real = rng.normal(size=(300, 10))
  same = im.precision_recall(real, real, k=3, batch_size=64)
  assert same == {"precision": 1.0, "recall": 1.0}
  far = im.precision_recall(real, real + 100.0, k=3, batch_size=64)
  assert far == {"precision": 0.0, "recall": 0.0}
  # Fakes covering only half of the real set: precision stays high, recall
  # drops.
  half = real[real[:, 0] > 0]
  pr = im.precision_recall(real, half, k=3, batch_size=50)
  assert pr["precision"] == 1.0 and pr["recall"] < 0.8


def test_precision_recall_batching_does_not_change_results():
  rng = np.random.default_rng(8)
  real, fake = rng.normal(size=(157, 4)), rng.normal(size=(131, 4)) + 0.5
  assert im.precision_recall(real, fake, batch_size=7) == (
      im.precision_recall(real, fake, batch_size=1000))

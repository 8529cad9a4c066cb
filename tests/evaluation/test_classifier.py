"""The domain classifier: training, pinned weights, hash checks, metrics."""

import os
import shutil

import numpy as np
import pytest

from otgan_jax import hashed_npz
from otgan_jax.data import readers
from otgan_jax.evaluation import classifier


def test_pinned_weights_are_small_and_load():
  for name, pin in classifier.PRETRAINED.items():
    path = classifier.pretrained_path(name)
    assert os.path.getsize(path) < 1_000_000
    assert hashed_npz.file_sha256(path) == pin["sha256"]
    model, params = classifier.load_pretrained(name)
    assert model == classifier.Classifier()
    assert sum(p.size for p in _leaves(params)) < 250_000


def _leaves(tree):
  for value in tree.values():
    yield from (_leaves(value) if isinstance(value, dict) else [value])


def test_hash_mismatch_raises(tmp_path):
  path = tmp_path / "w.npz"
  shutil.copy(classifier.pretrained_path("mnist"), path)
  with pytest.raises(classifier.WeightsHashError, match="No expected sha256"):
    classifier.load(path)
  with pytest.raises(classifier.WeightsHashError, match="expected 0000"):
    classifier.load(path, sha256="0" * 64)
  path.write_bytes(path.read_bytes()[:-1] + b"x")  # one byte changed
  with pytest.raises(classifier.WeightsHashError, match="weights changed"):
    classifier.load(path, sha256=classifier.PRETRAINED["mnist"]["sha256"])


def test_resaving_pinned_weights_gives_the_pinned_bytes(tmp_path):
  model, params = classifier.load_pretrained("mnist")
  digest = classifier.save(tmp_path / "m.npz", model, params)
  assert digest == classifier.PRETRAINED["mnist"]["sha256"]
  assert (tmp_path / "m.npz").read_bytes() == open(
      classifier.pretrained_path("mnist"), "rb").read()
  classifier.load(tmp_path / "m.npz")  # Through the sidecar.
  with pytest.raises(classifier.WeightsHashError, match="not found"):
    classifier.load(tmp_path / "missing.npz")


def test_train_save_load_roundtrip_is_byte_reproducible(tmp_path):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 64)
  # Two trivially separable classes: bright top half vs bright bottom half.
  images = np.zeros((64, 28, 28), np.uint8)
  images[labels == 0, :14] = 255
  images[labels == 1, 14:] = 255
  model = classifier.Classifier(features=(4, 4, 4), hidden=8, num_classes=2)
  params = classifier.train_classifier(images, labels, epochs=3,
                                       batch_size=16, seed=0, model=model,
                                       learning_rate=1e-2)
  probs, feats = classifier.predict(model, params, images, batch_size=24)
  assert probs.shape == (64, 2) and feats.shape == (64, 8)
  assert (probs.argmax(1) == labels).mean() == 1.0
  digest = classifier.save(tmp_path / "a.npz", model, params)
  assert classifier.save(tmp_path / "b.npz", model, params,
                         sidecar=False) == digest  # same bytes, same hash
  loaded_model, loaded = classifier.load(tmp_path / "a.npz")  # via sidecar
  assert loaded_model == model
  # The same batches as above: a program of another batch size may round
  # differently (it did by 7e-9 at LLVM level 1).
  np.testing.assert_array_equal(
      classifier.predict(loaded_model, loaded, images, batch_size=24)[0],
      probs)


def test_preprocess_checks_shape_and_range():
  images = np.zeros((2, 28, 28), np.uint8)
  images[:, :, 14:] = 255
  x = classifier.preprocess(images)
  assert x.shape == (2, 28, 28, 1) and x.min() == -1.0 and x.max() == 1.0
  with pytest.raises(ValueError, match="resize"):
    classifier.preprocess(np.zeros((2, 32, 32, 1), np.float32))


def test_metrics_reuse_is_and_fid():
  probs = np.eye(10)[np.arange(200) % 10]
  assert classifier.classifier_score(probs) == pytest.approx((10.0, 0.0))
  feats = np.random.default_rng(1).normal(size=(300, 6))
  assert abs(classifier.classifier_frechet_distance(feats, feats)) < 1e-8
  assert classifier.classifier_frechet_distance(feats, feats + 1.0) == (
      pytest.approx(6.0, rel=1e-6))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_pinned_classifier_on_real_test_images(shared_data_dir, name):
  try:
    images, labels = readers.load_idx_dataset(os.fspath(shared_data_dir),
                                              name, "test")
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"{name} test files not readable: {e}")
  model, params = classifier.load_pretrained(name)
  probs, feats = classifier.predict(model, params, images[:200])
  accuracy = (probs.argmax(1) == labels[:200]).mean()
  assert accuracy >= classifier.PRETRAINED[name]["test_accuracy"] - 0.06
  # Real images are confident and spread over all classes.
  score, _ = classifier.classifier_score(probs, num_splits=2)
  assert score > 7.0 and feats.shape == (200, 128)
  # Float input in [-1, 1] means the same as uint8.
  as_float = images[:20].astype(np.float32) / 127.5 - 1.0
  np.testing.assert_allclose(classifier.predict(model, params, as_float)[0],
                             probs[:20], atol=1e-5)


def test_pinned_digits_classifier_scores_its_held_out_split():
  from otgan_jax.data import sources  # pylint: disable=g-import-not-at-top
  x, y = sources.digits_split(297, "test")
  model, params = classifier.load_pretrained("digits")
  images = np.rint(x * (255 / 16)).astype(np.uint8)
  probs, _ = classifier.predict(model, params, images, shape=(8, 8, 1))
  accuracy = float((probs.argmax(1) == y).mean())
  assert accuracy == pytest.approx(classifier.PRETRAINED["digits"][
      "test_accuracy"], abs=0.01)
  # Samples generated in class order i % 10 and classified as such.
  onehot = np.eye(10)[np.arange(20) % 10]
  assert classifier.requested_class_accuracy(onehot, 10) == 1.0
  assert classifier.requested_class_accuracy(np.roll(onehot, 1, 1), 10) == 0.0

"""Hash-checked .npz: reproducible bytes, sidecars, refusals, atomic saves."""

import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from otgan_jax import hashed_npz
from otgan_jax.evaluation import classifier
from otgan_jax.evaluation import inception_weights
from otgan_jax.models import vae


def _arrays(seed=0):
  rng = np.random.default_rng(seed)
  return {"params/dense/kernel": rng.normal(size=(3, 4)).astype(np.float32),
          "params/dense/bias": np.zeros(4, np.float32),
          "config/features": np.array([8, 16], np.int64),
          "__meta__": np.array('{"a": 1}')}


def test_roundtrip_and_sidecar_format(tmp_path):
  path = tmp_path / "w.npz"
  arrays = _arrays()
  digest = hashed_npz.save(path, arrays)
  assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
  assert digest == hashed_npz.file_sha256(path)
  assert (tmp_path / "w.npz.sha256").read_text() == f"{digest}  w.npz\n"
  assert hashed_npz.read_sidecar(path) == digest
  loaded = hashed_npz.load(path)
  assert set(loaded) == set(arrays)
  for key, value in arrays.items():
    assert loaded[key].dtype == value.dtype
    np.testing.assert_array_equal(loaded[key], value)
  assert hashed_npz.load(str(path), digest.upper())["__meta__"] == '{"a": 1}'
  assert sorted(os.listdir(tmp_path)) == ["w.npz", "w.npz.sha256"]
  if shutil.which("sha256sum"):
    subprocess.run(["sha256sum", "--check", "--quiet", "w.npz.sha256"],
                   cwd=tmp_path, check=True)


def test_bytes_are_reproducible(tmp_path):
  arrays = _arrays()
  reordered = dict(reversed(list(arrays.items())))
  a = hashed_npz.save(tmp_path / "a.npz", arrays)
  b = hashed_npz.save(tmp_path / "b.npz", reordered, sidecar=False)
  assert a == b
  assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
  assert hashed_npz.npz_bytes(arrays) == (tmp_path / "a.npz").read_bytes()
  with np.load(tmp_path / "a.npz") as data:  # An ordinary .npz.
    np.testing.assert_array_equal(data["config/features"], [8, 16])


def test_refuses_unverifiable_and_altered_files(tmp_path):
  path = tmp_path / "w.npz"
  digest = hashed_npz.save(path, _arrays(), sidecar=False)
  assert not (tmp_path / "w.npz.sha256").exists()
  with pytest.raises(hashed_npz.HashedNpzError,
                     match="No expected sha256.*sha256=.*w.npz.sha256"):
    hashed_npz.load(path)
  hashed_npz.load(path, sha256=digest)  # A pin needs no sidecar.
  with pytest.raises(hashed_npz.HashedNpzError,
                     match=f"has sha256 {digest}, expected {'0' * 64}"):
    hashed_npz.load(path, sha256="0" * 64)
  hashed_npz.save(path, _arrays())
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  path.write_bytes(bytes(data))
  altered = hashlib.sha256(bytes(data)).hexdigest()
  with pytest.raises(hashed_npz.HashedNpzError,
                     match=f"{altered}, expected {digest} .*altered"):
    hashed_npz.load(path)
  (tmp_path / "w.npz.sha256").write_text("not a digest\n")
  with pytest.raises(hashed_npz.HashedNpzError, match="not a sha256sum line"):
    hashed_npz.load(path)
  with pytest.raises(hashed_npz.HashedNpzError, match="not found"):
    hashed_npz.load(tmp_path / "missing.npz", sha256=digest)


def test_corrupt_files_with_matching_pins(tmp_path):
  truncated = tmp_path / "t.npz"
  truncated.write_bytes(hashed_npz.npz_bytes(_arrays())[:300])
  npy = tmp_path / "a.npy"
  np.save(npy, np.zeros(3))
  for path in (truncated, npy):
    with pytest.raises(hashed_npz.HashedNpzError, match="corrupt"):
      hashed_npz.load(path, sha256=hashed_npz.file_sha256(path))


def test_error_class_hint_and_subclasses(tmp_path):
  class MyError(hashed_npz.HashedNpzError):
    pass

  with pytest.raises(MyError, match="Thing .* not found. Do this."):
    hashed_npz.load(tmp_path / "x.npz", error=MyError, what="Thing",
                    hint="Do this.")
  assert issubclass(hashed_npz.HashedNpzError, ValueError)
  for error in (vae.EncoderFileError, classifier.WeightsHashError,
                inception_weights.WeightsError):
    assert issubclass(error, hashed_npz.HashedNpzError)


def test_refuses_object_arrays(tmp_path):
  with pytest.raises(ValueError):
    hashed_npz.save(tmp_path / "o.npz", {"x": np.array([{}, 1], object)})
  assert not os.listdir(tmp_path)  # No temporary file left behind.


def test_overwrite_and_stale_sidecar(tmp_path):
  path = tmp_path / "w.npz"
  hashed_npz.save(path, _arrays(0))
  new = hashed_npz.save(path, _arrays(1))
  assert hashed_npz.read_sidecar(path) == new
  np.testing.assert_array_equal(hashed_npz.load(path)["params/dense/kernel"],
                                _arrays(1)["params/dense/kernel"])
  hashed_npz.save(path, _arrays(2), sidecar=False)  # The old sidecar goes.
  assert not (tmp_path / "w.npz.sha256").exists()


@pytest.mark.parametrize("fail_at", [0, 1, 2, 3])
def test_an_interrupted_save_never_leaves_a_mismatched_pair(
    tmp_path, monkeypatch, fail_at):
  # Overwrite an existing pair and fail at the `fail_at`-th file operation
  # (the unlink of the old .npz, then each os.replace).
  path = tmp_path / "w.npz"
  old = hashed_npz.save(path, _arrays(0))
  calls = []

  def failing(real):
    def op(*args, **kwargs):
      calls.append(args)
      if len(calls) - 1 == fail_at:
        raise OSError("disk gone")
      return real(*args, **kwargs)
    return op

  monkeypatch.setattr(hashed_npz.os, "replace", failing(os.replace))
  real_unlink = hashed_npz.pathlib.Path.unlink
  monkeypatch.setattr(
      hashed_npz.pathlib.Path, "unlink",
      lambda self, *a, **k: failing(real_unlink)(self, *a, **k))
  if fail_at < 3:
    with pytest.raises(OSError, match="disk gone"):
      hashed_npz.save(path, _arrays(1))
  else:
    hashed_npz.save(path, _arrays(1))
  monkeypatch.undo()
  # No temporaries; an .npz present has its own digest in the sidecar.
  assert set(os.listdir(tmp_path)) <= {"w.npz", "w.npz.sha256"}
  if path.exists():
    hashed_npz.load(path)  # Verified against its sidecar.
    assert (fail_at == 3) == (hashed_npz.file_sha256(path) != old)
  else:
    with pytest.raises(hashed_npz.HashedNpzError, match="not found"):
      hashed_npz.load(path)

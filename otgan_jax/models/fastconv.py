"""2-D convolution (NHWC, HWIO) with gradients XLA:CPU runs at matmul speed.

On CPU only: lowered for any other platform (GPU, TPU), `conv2d`'s gradient
is XLA's own (`jax.lax.platform_dependent`).

XLA:CPU differentiates a convolution through other convolutions it runs far
below the machine's matmul rate: the kernel's gradient (batch and features
swapped) and, for a strided layer, the input's (a zero-dilated convolution).
bench/networks.py measured configs/otgan_cifar10.py's critic's training pass
(batch 32, one core) at 2.1 GFLOP/s against 35 for its forward pass, 16x
slower than the same network in PyTorch; with this module, 41 GFLOP/s and
on par with PyTorch. `conv2d` keeps XLA's forward pass (and its input
gradient for stride 1) and computes
- the kernel's gradient as `sum_{b, o} x_pad[b, s o + t]^T dy[b, o]`: for
  each of the kh x kw taps t (a loop, `TAP_LOOP_UNROLL`), one
  `[B Ho Wo, C_in]^T @ [B Ho Wo, C_out]` product over a strided slice of
  the padded input (for layers with at least `MIN_TAP_CHANNELS` input and
  output channels; XLA's own is faster on thinner ones);
- a strided layer's input gradient as one product giving every tap's
  contribution `dy[b, o] @ k[t]^T`; tap `t = s q + p` lands at row
  `s (o + q) + p`, so the taps of each phase p are shifted and summed at
  1/s^2 of the input's size and the s x s phases interleaved (placing each
  tap on the full padded input with interior padding, as before 2026-12-04,
  kept every tap's full-size copy: XLA:CPU's memory analysis of the CIFAR-10
  step at n = 256 said 41.9 GiB then, 19.0 GiB without it, 12.7 GiB with
  the kernel gradient's loop; XLA's own gradients 7.1 GiB).
Values and both gradients equal XLA's (tests/models/test_fastconv.py).

`upsampled_conv2d` is a stride-1 'SAME' convolution of the input upsampled
2x by nearest neighbour (the OT-GAN generator's block) computed without the
upsampled map: each of the four output phases is a convolution of the
original input with taps summed (a 5x5 kernel becomes four 3x3 ones), one
convolution with 4 C_out outputs, interleaved. 36 instead of 100
multiply-adds per input channel and output pixel for a 5x5 kernel.
"""

import functools
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
_DN = ("NHWC", "HWIO", "NHWC")


def same_padding(size: int, k: int, s: int) -> Tuple[int, int]:
  """XLA's 'SAME' padding (the extra pixel after) for one spatial axis."""
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return total // 2, total - total // 2


def _conv(x, k, strides, pads):
  return jax.lax.conv_general_dilated(x, k, strides, pads,
                                      dimension_numbers=_DN)


def conv2d(x: Array, kernel: Array, strides: Sequence[int] = (1, 1),
           padding="SAME") -> Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` (NHWC, HWIO).

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in, C_out].
    strides: (sy, sx).
    padding: 'SAME', 'VALID' or ((lo, hi), (lo, hi)).

  Returns:
    [B, Ho, Wo, C_out]; values and both gradients equal XLA's.
  """
  kh, kw = kernel.shape[:2]
  strides = tuple(int(s) for s in strides)
  if padding == "SAME":
    pads = (same_padding(x.shape[1], kh, strides[0]),
            same_padding(x.shape[2], kw, strides[1]))
  elif padding == "VALID":
    pads = ((0, 0), (0, 0))
  else:
    pads = tuple(tuple(int(v) for v in p) for p in padding)
  return _conv2d(x, kernel, strides, pads)


def _conv2d(x, kernel, strides, pads):
  return _conv2d_vjp(strides, pads)(x, kernel)


# The per-tap kernel gradient pays only for wide layers: below this many
# input or output channels XLA's own kernel gradient is faster or level
# (`bench/conv_passes.py --dk_sweep`, one core, batch 32, 5x5 at 32x32:
# 128 -> 3, 35 ms against 396 ms per tap; 128 -> 64, 223 against 468;
# 3 -> 128, 17 against 23; 16 -> 128 and 64 -> 128 level); above it the
# per-tap products win by up to 3.2x (the generator's 3x3 phase convs,
# 256 -> 512 stride 2 at 32x32: 2.2x) and lose by at most 1.5x
# (bench/RESULTS.md).
MIN_TAP_CHANNELS = 128
# The kernel gradient's taps run as a loop, one tap's strided input slice
# live at a time: unrolled, XLA:CPU kept all kh x kw slices (the CIFAR-10
# step at n = 256: 19.0 GiB by XLA's memory analysis, 12.7 GiB rolled; with
# XLA's own kernel gradients 11.8 GiB) at the same speed (the critic's
# training pass, bench/networks.py). True unrolls it (bench/networks.py
# counts flops so: XLA's cost analysis counts a loop's body once).
TAP_LOOP_UNROLL = 1

_CACHE = {}


def _strided_input_grad(dy, kernel, strides, pads, x_shape):
  """The input gradient of a strided convolution without XLA's zero-dilated
  form (slow on CPU): one product gives every tap's contribution,
  `dy[b, o] @ k[t]^T`, and tap t = s q + p lands at padded row
  `s (o + q) + p`: for each phase p the taps with that phase are summed,
  shifted by q (`lax.pad`, no interior padding: each phase is a 1/s^2 of
  the input), and the s x s phases interleaved by a reshape."""
  kh, kw, c_in, c_out = kernel.shape
  b, ho, wo, _ = dy.shape
  sy, sx = strides
  taps = jnp.dot(dy.reshape(-1, c_out),
                 jnp.transpose(kernel, (3, 0, 1, 2)).reshape(c_out, -1))
  taps = taps.reshape(b, ho, wo, kh, kw, c_in)
  zero = jnp.zeros((), dy.dtype)
  mh, mw = ho + -(-kh // sy) - 1, wo + -(-kw // sx) - 1
  phases = []
  for p in range(sy):
    row = []
    for r in range(sx):
      total = jnp.zeros((b, mh, mw, c_in), dy.dtype)
      for q in range(-(-(kh - p) // sy)):
        for u in range(-(-(kw - r) // sx)):
          total = total + jax.lax.pad(
              taps[:, :, :, sy * q + p, sx * u + r, :], zero,
              ((0, 0, 0), (q, mh - ho - q, 0), (u, mw - wo - u, 0),
               (0, 0, 0)))
      row.append(total)
    phases.append(jnp.stack(row, axis=3))  # [b, mh, mw, sx, c]
  full = jnp.stack(phases, axis=2)  # [b, mh, sy, mw, sx, c]
  full = full.reshape(b, mh * sy, mw * sx, c_in)
  (ylo, _), (xlo, _) = pads
  h, w = x_shape[1:3]
  full = jnp.pad(full, ((0, 0), (0, max(0, ylo + h - mh * sy)),
                        (0, max(0, xlo + w - mw * sx)), (0, 0)))
  return full[:, ylo:ylo + h, xlo:xlo + w, :]


def _conv2d_vjp(strides, pads):
  """A custom-vjp convolution for static strides and padding."""
  key = (strides, pads)
  if key in _CACHE:
    return _CACHE[key]

  @jax.custom_vjp
  def f(x, kernel):
    return _conv(x, kernel, strides, pads)

  def fwd(x, kernel):
    return _conv(x, kernel, strides, pads), (x, kernel)

  def xla_bwd(x, kernel, dy):
    return jax.vjp(lambda x, k: _conv(x, k, strides, pads), x, kernel)[1](dy)

  def cpu_bwd(x, kernel, dy):
    kh, kw, c_in, c_out = kernel.shape
    sy, sx = strides
    (ylo, yhi), (xlo, xhi) = pads
    xp = jnp.pad(x, ((0, 0), (ylo, yhi), (xlo, xhi), (0, 0)))
    ho, wo = dy.shape[1:3]
    if strides == (1, 1):
      dx = jax.vjp(lambda x: _conv(x, kernel, strides, pads), x)[1](dy)[0]
    else:
      dx = _strided_input_grad(dy, kernel, strides, pads, x.shape)
    if min(c_in, c_out) < MIN_TAP_CHANNELS:
      dk = jax.vjp(lambda k: _conv(x, k, strides, pads), kernel)[1](dy)[0]
      return dx, dk
    dy2 = dy.reshape(-1, c_out)
    span = (xp.shape[0], sy * (ho - 1) + 1, sx * (wo - 1) + 1, c_in)

    def tap(carry, t):
      window = jax.lax.dynamic_slice(xp, (0, t // kw, t % kw, 0), span)
      patch = window[:, ::sy, ::sx, :]
      return carry, jax.lax.dot_general(patch.reshape(-1, c_in), dy2,
                                        (((0,), (0,)), ((), ())))
    _, dk = jax.lax.scan(tap, None, jnp.arange(kh * kw),
                         unroll=TAP_LOOP_UNROLL)
    return dx, dk.reshape(kh, kw, c_in, c_out).astype(kernel.dtype)

  def bwd(res, dy):
    # The products above pay on XLA:CPU only; GPUs and TPUs have fast
    # convolution gradients of their own (cuDNN, the TPU's), so there the
    # gradient is XLA's. Chosen when the program is lowered for a platform.
    x, kernel = res
    return jax.lax.platform_dependent(x, kernel, dy, cpu=cpu_bwd,
                                      default=xla_bwd)

  f.defvjp(fwd, bwd)
  _CACHE[key] = f
  return f


@functools.lru_cache(maxsize=None)
def _phase_taps(k: int) -> Tuple[np.ndarray, Tuple[int, int]]:
  """For one axis of a k-tap stride-1 'SAME' convolution applied after a 2x
  nearest upsampling: `(m, (lo, hi))` with `m[a, j, t] = 1` where tap t of
  output phase a (output row 2 i + a) reads input row i + j - lo, and
  (lo, hi) the input padding of the phase convolutions."""
  lo = (k - 1) // 2  # XLA's 'SAME' padding before, stride 1.
  offsets = [[(a + t - lo) // 2 for t in range(k)] for a in (0, 1)]
  first = min(min(o) for o in offsets)
  last = max(max(o) for o in offsets)
  m = np.zeros((2, last - first + 1, k), np.float32)
  for a in (0, 1):
    for t, o in enumerate(offsets[a]):
      m[a, o - first, t] = 1.0
  return m, (-first, last)


def upsampled_conv2d(x: Array, kernel: Array) -> Array:
  """`conv2d(upsample_nearest_2x(x), kernel, (1, 1), 'SAME')` on `x` itself.

  Output pixel (2 i + a, 2 j + b) sums kernel taps that read the same input
  pixel, so phase (a, b) is a convolution of `x` with those taps summed
  (in float32, whatever `x.dtype`); the four phases run as one convolution
  with 4 C_out outputs (`conv2d`, fast gradients) and are interleaved.

  Args:
    x: [B, H, W, C_in], before upsampling.
    kernel: [kh, kw, C_in, C_out].

  Returns:
    [B, 2 H, 2 W, C_out]; equal to the upsample-then-convolve form up to
    float rounding (the taps are summed before the product).
  """
  kh, kw, c_in, c_out = kernel.shape
  my, pad_y = _phase_taps(kh)
  mx, pad_x = _phase_taps(kw)
  phases = jnp.einsum("ayt,bxs,tsio->yxiabo", my, mx,
                      kernel.astype(jnp.float32),
                      precision=jax.lax.Precision.HIGHEST)
  phases = phases.reshape(my.shape[1], mx.shape[1], c_in, 4 * c_out)
  y = conv2d(x, phases.astype(x.dtype), (1, 1), (pad_y, pad_x))
  b, h, w, _ = y.shape
  y = y.reshape(b, h, w, 2, 2, c_out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h, 2 * w, c_out)

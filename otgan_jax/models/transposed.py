"""Strided transposed convolution as one stride-1 convolution (sub-pixel form).

`flax.linen.ConvTranspose` lowers to `lax.conv_transpose`: a convolution of
the input dilated with zeros (`lhs_dilation`). XLA:CPU has no fast kernel for
that form; on the 2-core CPU VM the assignment method's generator ran at
about 4 GFLOP/s per core through it (bench/networks.py measures it).

A stride-s transposed convolution with a k x k kernel is the same linear map
as s^2 ordinary stride-1 convolutions with ceil(k/s) x ceil(k/s) sub-kernels,
one per output phase, whose outputs are interleaved ("depth to space"). Here
the s^2 sub-kernels are stacked along the output channels, so the whole layer
is ONE stride-1 convolution (which XLA runs on its fast path) and a reshape;
the taps a sub-kernel lacks (when s does not divide k) are zeros, so it does
(ceil(k/s) s / k)^2 times the dense work (1.44x for k=5, s=2; 1x for k=4,
s=2) and no zero-dilated input.

`ConvTranspose` has the same parameters (`kernel` [kh, kw, in, out], `bias`
[out]), initialisers and output as `flax.linen.ConvTranspose` with
`transpose_kernel=False` for 'SAME' and 'VALID' padding and any strides
(tests/models/test_transposed.py checks equality, values and gradients), so
checkpoints of either load in the other.
"""

import math
from typing import Any, Callable, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from otgan_jax.models import fastconv

Array = jax.Array

# Below this many phase channels (s^2 * C_out) the sub-pixel form's products
# are too thin to pay (a 64 -> 1 layer: XLA's own conv_transpose is 4x faster
# forward), and `lax.conv_transpose` is used as is.
MIN_PHASE_CHANNELS = 32


def _padding(k: int, s: int, padding: str) -> Tuple[int, int]:
  """`lax.conv_transpose`'s (low, high) padding of the dilated input."""
  if padding == "SAME":
    total = k + s - 2
    low = k - 1 if s > k - 1 else int(math.ceil(total / 2))
  elif padding == "VALID":
    total = k + s - 2 + max(k - s, 0)
    low = k - 1
  else:
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
  return low, total - low


def _phase_kernel(kernel: Array, k: int, s: int, axis: int) -> Array:
  """Splits one spatial axis of size k into (q, r): tap k-1-(s q + r).

  Returns the kernel with that axis replaced by two: q (ceil(k/s) taps,
  reversed so the sub-kernel is a correlation) and r (the s phases), with
  zeros where s q + r >= k.
  """
  q_taps = -(-k // s)
  flipped = jnp.flip(kernel, axis)                       # index u = k-1-t
  pad = [(0, 0)] * kernel.ndim
  pad[axis] = (0, q_taps * s - k)
  u = jnp.pad(flipped, pad)                              # u = s q + r
  shape = kernel.shape[:axis] + (q_taps, s) + kernel.shape[axis + 1:]
  u = u.reshape(shape)
  return jnp.flip(u, axis)                               # q -> q_taps-1-q


def conv_transpose(x: Array, kernel: Array, strides: Sequence[int],
                   padding: str = "SAME") -> Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` (NHWC, HWIO) as one
  stride-1 convolution plus an interleave.

  Args:
    x: [B, H, W, C_in].
    kernel: [kh, kw, C_in, C_out] (flax's layout, not transposed).
    strides: (sy, sx).
    padding: 'SAME' or 'VALID', as `lax.conv_transpose`.

  Returns:
    [B, H_out, W_out, C_out], equal to `lax.conv_transpose`'s output.
  """
  kh, kw, c_in, c_out = kernel.shape
  sy, sx = (int(s) for s in strides)
  b, h, w, _ = x.shape
  if sy * sx * c_out < MIN_PHASE_CHANNELS:
    return jax.lax.conv_transpose(x, kernel, (sy, sx), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
  qy, qx = -(-kh // sy), -(-kw // sx)
  # [qy, sy, kw, in, out] -> [qy, sy, qx, sx, in, out]
  sub = _phase_kernel(_phase_kernel(kernel, kh, sy, 0), kw, sx, 2)
  sub = jnp.transpose(sub, (0, 2, 4, 1, 3, 5)).reshape(
      qy, qx, c_in, sy * sx * c_out)
  # Phase (ry, rx) of the full (unpadded) output at row s m + r sums
  # x[m - q] * tap(q, r) over q: a correlation over q_taps rows, m from 0 to
  # size + q_taps - 2. lax's output row o is the full output's row
  # o + (k - 1) - low; only the m those rows need are computed (the phase
  # convolution padded less: at k=5, s=2 'SAME', 5 x 5 of 6 x 6 positions
  # from 4 x 4, 9 x 9 of 10 x 10 from 8 x 8), and the gradients skip the
  # border too.
  pads, spans = [], []
  for size, k, s, q in ((h, kh, sy, qy), (w, kw, sx, qx)):
    low, high = _padding(k, s, padding)
    first = k - 1 - low                       # the full output's first row
    length = (size - 1) * s + 1 + low + high - k + 1
    lo = min(max(first // s, 0), q - 1)       # pads stay >= 0
    hi = max(min((first + length - 1) // s, size + q - 2), size - 1)
    pads.append((q - 1 - lo, hi - size + 1))
    spans.append((first - s * lo, length, hi - lo + 1))
  # fastconv: XLA's forward pass and input gradient, the kernel gradient as
  # one product per tap (XLA:CPU's own took 45 s where these take 0.4 s).
  g = fastconv.conv2d(x, sub.astype(x.dtype), (1, 1), tuple(pads))
  (y0, hy, m), (x0, wx, n) = spans
  full = g.reshape(b, m, n, sy, sx, c_out).transpose(0, 1, 3, 2, 4, 5)
  full = full.reshape(b, m * sy, n * sx, c_out)
  need = ((0, 0), (max(0, -y0), max(0, y0 + hy - m * sy)),
          (max(0, -x0), max(0, x0 + wx - n * sx)), (0, 0))
  if any(p != (0, 0) for p in need):
    full = jnp.pad(full, need)
    y0, x0 = y0 + need[1][0], x0 + need[2][0]
  return full[:, y0:y0 + hy, x0:x0 + wx, :]


class ConvTranspose(nn.Module):
  """Drop-in for `nn.ConvTranspose` (NHWC, 'SAME'/'VALID', no kernel
  transpose) computed by `conv_transpose`."""

  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  padding: str = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Array] = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    kernel = self.param("kernel", self.kernel_init,
                        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    dtype = self.dtype or jnp.result_type(x, kernel)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    y = conv_transpose(x, kernel, self.strides, self.padding)
    if bias is not None:
      y = y + bias.astype(dtype)
    return y

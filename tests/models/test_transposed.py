"""models.transposed: the sub-pixel transposed convolution equals flax's."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.models import transposed

# (kernel, stride, padding, height, width, out channels); every row with
# s^2 * out >= MIN_PHASE_CHANNELS takes the sub-pixel path.
CASES = [
    (5, 2, "SAME", 4, 4, 16),    # the assignment generator's layers
    (4, 2, "SAME", 3, 5, 16),    # the VAE decoder's (k divisible by s)
    (4, 2, "VALID", 3, 3, 8),
    (5, 2, "VALID", 4, 4, 8),
    (3, 2, "SAME", 4, 4, 8),
    (5, 3, "SAME", 3, 4, 4),
    (3, 1, "SAME", 5, 5, 32),
    (2, 2, "VALID", 3, 3, 1),    # thin: lax.conv_transpose itself
]


def _pair(k, s, pad, h, w, out):
  x = jax.random.normal(jax.random.key(1), (2, h, w, 3))
  ref = nn.ConvTranspose(out, (k, k), (s, s), padding=pad)
  ours = transposed.ConvTranspose(out, (k, k), (s, s), padding=pad)
  params = ref.init(jax.random.key(0), x)
  # A non-zero bias, so a misplaced bias would show.
  params = jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.key(2), a.shape),
      params)
  return x, ref, ours, params


@pytest.mark.parametrize("case", CASES, ids=str)
def test_equals_flax_conv_transpose(case):
  x, ref, ours, params = _pair(*case)
  # Same parameter tree: checkpoints of either load in the other.
  assert (jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x))
          == jax.tree.map(jnp.shape, params))
  want, got = ref.apply(params, x), ours.apply(params, x)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES[:3], ids=str)
def test_gradients_equal_flax(case):
  x, ref, ours, params = _pair(*case)
  weights = jax.random.normal(jax.random.key(3), ref.apply(params, x).shape)

  def grads(module):
    return jax.grad(lambda p, x: jnp.sum(module.apply(p, x) * weights),
                    (0, 1))(params, x)

  for want, got in zip(jax.tree.leaves(grads(ref)),
                       jax.tree.leaves(grads(ours))):
    np.testing.assert_allclose(got, want, atol=5e-5, rtol=1e-5)


def test_sub_pixel_path_is_one_stride_one_convolution():
  # No zero-dilated input (lhs_dilation) in the compiled forward pass: the
  # form XLA:CPU runs slowly is gone on the sub-pixel path, kept on the thin.
  def hlo(out):
    x = jnp.ones((2, 4, 4, 8))
    k = jnp.ones((5, 5, 8, out))
    return jax.jit(lambda x, k: transposed.conv_transpose(
        x, k, (2, 2), "SAME")).lower(x, k).as_text()
  assert "lhs_dilate = [1, 1]" in hlo(16)
  assert "lhs_dilate = [2, 2]" not in hlo(16)
  assert "lhs_dilate = [2, 2]" in hlo(1)

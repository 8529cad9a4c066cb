"""models.fastconv: the convolution with fast gradients equals XLA's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.models import fastconv

# (height, width, kernel, stride, padding): the critic's 5x5 stride-1 and
# stride-2 SAME layers, odd sizes, kernels not dividing the stride, VALID and
# explicit padding.
CASES = [(8, 8, 5, 1, "SAME"), (8, 8, 5, 2, "SAME"), (7, 9, 5, 2, "SAME"),
         (6, 6, 3, 2, "SAME"), (5, 5, 4, 2, "SAME"), (9, 9, 3, 3, "VALID"),
         (8, 6, 3, 2, ((1, 0), (2, 1)))]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_values_and_both_gradients_equal_xla(case):
  h, w, k, s, padding = case
  x = jax.random.normal(jax.random.key(0), (2, h, w, 3))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 3, 4))

  def ref(x, kernel):
    return jax.lax.conv_general_dilated(
        x, kernel, (s, s), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def ours(x, kernel):
    return fastconv.conv2d(x, kernel, (s, s), padding)

  want = ref(x, kernel)
  np.testing.assert_allclose(ours(x, kernel), want, atol=1e-5, rtol=1e-5)
  weights = jax.random.normal(jax.random.key(2), want.shape)
  for fn_grads in zip(*(jax.grad(lambda x, kk, f=f: jnp.sum(f(x, kk) * weights),
                                 (0, 1))(x, kernel) for f in (ref, ours))):
    np.testing.assert_allclose(fn_grads[1], fn_grads[0], atol=2e-5, rtol=1e-5)


def test_strided_input_gradient_avoids_the_zero_dilated_convolution():
  # XLA:CPU runs the lhs-dilated form slowly (bench/networks.py): the
  # backward pass of a stride-2 layer must not contain one.
  x = jnp.ones((2, 8, 8, 3))
  kernel = jnp.ones((5, 5, 3, 4))
  hlo = jax.jit(jax.grad(lambda x, k: jnp.sum(fastconv.conv2d(
      x, k, (2, 2)) ** 2), (0, 1))).lower(x, kernel).as_text()
  assert "lhs_dilate = [2, 2]" not in hlo

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


@pytest.mark.parametrize("min_tap_channels", [0, None],
                         ids=["per_tap", "default"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_values_and_both_gradients_equal_xla(case, min_tap_channels,
                                             monkeypatch):
  # Both kernel gradients: the per-tap products (forced for these thin test
  # layers) and XLA's own (the default below MIN_TAP_CHANNELS).
  if min_tap_channels is not None:
    monkeypatch.setattr(fastconv, "MIN_TAP_CHANNELS", min_tap_channels)
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


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_other_platforms_get_xla_s_own_gradient(platform):
  # The per-tap products and the phased input gradient are for XLA:CPU:
  # lowered for a GPU or TPU, the backward pass is XLA's convolutions (no
  # products), while on CPU the per-tap form is kept (a layer wide enough
  # for it; lowered only, never run).
  c = fastconv.MIN_TAP_CHANNELS
  x = jnp.ones((1, 8, 8, c))
  kernel = jnp.ones((5, 5, c, c))
  grad = jax.jit(jax.grad(lambda x, k: jnp.sum(fastconv.conv2d(
      x, k, (2, 2)) ** 2), (0, 1)))
  text = {p: jax.export.export(grad, platforms=[p])(x, kernel).mlir_module()
          for p in ("cpu", platform)}
  # One product for the input gradient's taps, one in the loop over the
  # kernel gradient's taps.
  assert text["cpu"].count("dot_general") >= 2 and "while" in text["cpu"]
  assert text[platform].count("dot_general") == 0
  assert text[platform].count("convolution") == 3


# (height, width, kh, kw): the generator's 5x5 blocks, odd, even and 1-tap
# kernels, non-square maps.
UPSAMPLED = [(4, 4, 5, 5), (3, 5, 5, 5), (4, 3, 3, 3), (3, 3, 4, 2),
             (2, 2, 1, 1), (5, 4, 7, 5)]


@pytest.mark.parametrize("case", UPSAMPLED, ids=str)
def test_upsampled_conv_equals_upsample_then_convolve(case):
  h, w, kh, kw = case
  x = jax.random.normal(jax.random.key(0), (2, h, w, 3))
  kernel = jax.random.normal(jax.random.key(1), (kh, kw, 3, 4))

  def ref(x, kernel):
    up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return jax.lax.conv_general_dilated(
        up, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  want = ref(x, kernel)
  got = fastconv.upsampled_conv2d(x, kernel)
  assert got.shape == (2, 2 * h, 2 * w, 4)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  weights = jax.random.normal(jax.random.key(2), want.shape)
  for grads in zip(*(jax.grad(lambda x, kk, f=f: jnp.sum(f(x, kk) * weights),
                              (0, 1))(x, kernel)
                     for f in (ref, fastconv.upsampled_conv2d))):
    np.testing.assert_allclose(grads[1], grads[0], atol=5e-5, rtol=1e-5)


def test_upsampled_conv_in_bfloat16_stays_close_and_keeps_the_dtype():
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
  kernel = jax.random.normal(jax.random.key(1), (5, 5, 8, 4))
  want = fastconv.upsampled_conv2d(x, kernel)
  got = fastconv.upsampled_conv2d(x.astype(jnp.bfloat16),
                                  kernel.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  scale = float(jnp.max(jnp.abs(want)))
  assert float(jnp.max(jnp.abs(got.astype(jnp.float32) - want))) < 0.03 * scale


def test_the_cpu_gradients_keep_the_step_s_memory_near_xla_s(monkeypatch):
  # The default config's train step, compiled (not run): XLA's memory
  # analysis of its temporaries with this module's CPU gradients against
  # XLA's own. The one-product forms hold every tap's contribution (a few
  # times a layer's input); placing each tap on the full input with
  # interior padding (before 2026-12-04) held 12x XLA's temporaries here
  # (111 against 9 MiB; the paper's CIFAR-10 step at n = 256: 41.9 GiB,
  # 12.7 GiB now, XLA's own 7.1 GiB), 2.3x now.
  from configs import otgan_digits  # pylint: disable=g-import-not-at-top
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top

  def temp_bytes():
    c = otgan_digits.get_config()
    exp = experiment.Experiment(c, devices=jax.devices()[:1])
    spec = exp.batch_spec
    shape = (spec.num_updates, spec.draws, c.batch_size) + exp.info.shape
    batch = {"x": jax.ShapeDtypeStruct(shape, jnp.float32,
                                       sharding=exp.batch_sharding())}
    compiled = exp.jit_train_step().lower(
        exp.abstract_state(), batch, jax.random.key(0), None).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  monkeypatch.setattr(fastconv, "_CACHE", {})
  ours = temp_bytes()
  monkeypatch.setattr(fastconv, "_CACHE", {})
  monkeypatch.setattr(jax.lax, "platform_dependent",
                      lambda *args, cpu, default: default(*args))
  xla = temp_bytes()
  assert ours < 4 * xla, (ours / 2**20, xla / 2**20)

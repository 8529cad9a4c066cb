"""Tests of DatasetInfo and the [-1, 1] scaling."""

import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax import data

_MNIST = data.DatasetInfo("mnist", (28, 28, 1), 0.0, 255.0, 60000, 10)
_DIGITS = data.DatasetInfo("digits", (8, 8, 1), 0.0, 16.0, 1797, 10)
_VECTORS = data.DatasetInfo("gaussians", (2,), None, None, None, 8)


def test_is_image():
  assert _MNIST.is_image
  assert not _VECTORS.is_image


def test_info_rejects_half_set_range():
  with pytest.raises(ValueError, match="both"):
    data.DatasetInfo("bad", (2,), 0.0, None, 10, None)
  with pytest.raises(ValueError, match="high > low"):
    data.DatasetInfo("bad", (2,), 1.0, 1.0, 10, None)


@pytest.mark.parametrize("info", [_MNIST, _DIGITS])
def test_normalize_maps_range_to_minus_one_one(info):
  x = np.array([info.low, (info.low + info.high) / 2, info.high]).astype(
      np.uint8)
  y = data.normalize(x, info)
  assert y.dtype == np.float32
  np.testing.assert_allclose(y, [-1.0, (x[1] - info.low) / (
      info.high - info.low) * 2 - 1, 1.0], atol=1e-6)


@pytest.mark.parametrize("info", [_MNIST, _DIGITS])
def test_round_trip_numpy(info):
  x = np.arange(int(info.high) + 1, dtype=np.uint8).reshape(-1, 1)
  y = data.normalize(x, info)
  assert y.min() == -1.0 and y.max() == 1.0
  back = data.denormalize(y, info)
  assert back.dtype == np.float32
  np.testing.assert_allclose(back, x, atol=1e-4)


def test_round_trip_jax():
  x = jnp.arange(256, dtype=jnp.uint8).reshape(16, 16, 1)
  y = data.normalize(x, _MNIST)
  assert isinstance(y, type(x)) and y.dtype == jnp.float32
  np.testing.assert_allclose(data.denormalize(y, _MNIST), x, atol=1e-4)


def test_unbounded_is_float32_identity():
  x = np.array([[-3.5, 7.25]], dtype=np.float64)
  y = data.normalize(x, _VECTORS)
  assert y.dtype == np.float32
  np.testing.assert_array_equal(y, x.astype(np.float32))
  np.testing.assert_array_equal(data.denormalize(y, _VECTORS), y)
  assert data.denormalize(jnp.asarray(x), _VECTORS).dtype == jnp.float32

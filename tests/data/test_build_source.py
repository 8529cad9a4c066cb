"""Tests of config validation in build_source."""

import ml_collections
import pytest

from otgan_jax import data


def _config(**overrides):
  config = ml_collections.ConfigDict({
      "name": "digits", "source": "embedded", "data_dir": "", "split": "train",
      "gaussians": {"num_modes": 8, "radius": 2.0, "std": 0.2,
                    "num_examples": 0}})
  config.update(overrides)
  return config


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as info:
    data.build_source(_config(name="imagenet"), seed=0)
  for name in ("digits", "gaussians", "mnist", "fashion_mnist", "cifar10"):
    assert name in str(info.value)


def test_unknown_source_lists_valid_sources():
  with pytest.raises(ValueError, match="'files', 'tfds'"):
    data.build_source(_config(name="mnist", source="http"), seed=0)
  with pytest.raises(ValueError, match="'embedded'"):
    data.build_source(_config(name="digits", source="files"), seed=0)


def test_unknown_split():
  with pytest.raises(ValueError, match="'train', 'test'"):
    data.build_source(_config(split="validation"), seed=0)


def test_negative_seed():
  with pytest.raises(ValueError, match="seed"):
    data.build_source(_config(), seed=-1)


def test_plain_dict_config_works():
  source = data.build_source(
      {"name": "gaussians", "source": "embedded", "split": "train",
       "gaussians": {"num_modes": 3}}, seed=0)
  assert source.info.num_classes == 3
  assert source.sample(0, 6)["x"].shape == (6, 2)

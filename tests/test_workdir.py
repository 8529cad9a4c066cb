"""A run's folder: older config.json files load with today's keys."""

import json

import pytest

from configs import test as test_config
from otgan_jax import workdir as workdir_lib


def _old_style(config) -> dict:
  """`config` as a run written before the methods' sections existed."""
  d = json.loads(config.to_json_best_effort())
  otgan = d.pop("otgan")
  d["optim"]["n_gen"] = otgan["n_gen"]
  d["optim"]["freeze_critic_at_step"] = otgan["freeze_critic_at_step"]
  d["optim"]["chunk_size"] = otgan["chunk_size"]
  d["data"]["random_flip"] = otgan["random_flip"]
  d["model"]["critic"]["head"] = "features"
  return d


def test_an_older_config_json_maps_to_the_new_keys(tmp_path):
  c = test_config.get_config()
  c.otgan.n_gen = 4
  c.otgan.freeze_critic_at_step = 7
  c.otgan.random_flip = True
  (tmp_path / "config.json").write_text(json.dumps(_old_style(c)))
  loaded = workdir_lib.load_config(str(tmp_path))
  assert loaded.otgan.n_gen == 4
  assert loaded.otgan.freeze_critic_at_step == 7
  assert loaded.otgan.random_flip is True
  assert "head" not in loaded.model.critic
  assert "n_gen" not in loaded.optim and "random_flip" not in loaded.data


def test_a_folder_without_config_json_says_what_it_must_be(tmp_path):
  with pytest.raises(FileNotFoundError, match="--workdir must be the folder"):
    workdir_lib.load_config(str(tmp_path))

"""The assignment method trains in the shared loop and balances its shares."""

import jax
import numpy as np
import pytest

from configs import assignment_gaussians
from otgan_jax import experiment
from otgan_jax import train
from otgan_jax.evaluation import transport


def test_assignment_method_learns_the_ring_and_balances_the_shares(tmp_path):
  c = assignment_gaussians.get_config()
  c.assignment.count_samples = 2500
  exp = experiment.Experiment(c, devices=jax.devices()[:1])
  constants = exp.prepare(str(tmp_path))
  state = exp.init_state()
  real = exp.source.sample(10**6, 1000)["x"]

  def w1(params):
    return transport.exact_w1(exp.sample(params, 1000, jax.random.key(5)),
                              real)

  before = w1(state.gen_params)
  step = exp.jit_train_step()
  assert exp.batch_spec is None  # All reals are a constant: no batches.
  history = []
  for _ in range(150):
    state, metrics = step(state, None, jax.random.key(0), constants)
    history.append(jax.device_get(metrics))
  after = w1(state.gen_params)
  assert after < 0.25 * before, (before, after)
  # psi spreads the generated points over the reals: far fewer reals are
  # left without a generated point than at the start.
  first = history[0]["assign/unassigned_fraction"]
  last = np.mean([h["assign/unassigned_fraction"] for h in history[-10:]])
  assert last < 0.5 * first, (first, last)


@pytest.mark.slow  # ~85 s on 8 fake devices and 2 cores (14 s on one device).
def test_assignment_smoke_config_on_real_mnist(shared_data_dir, tmp_path):
  from configs import assignment_mnist  # pylint: disable=g-import-not-at-top
  c = assignment_mnist.get_config("smoke")
  c.data.data_dir = str(shared_data_dir / "mnist")
  c.total_steps = 2
  c.evals.every_steps = 2
  c.assignment.num_reals = 200
  c.assignment.count_samples = 960
  c.assignment.chunk_size = 240
  c.evals.num_samples = 400
  c.evals.num_reference = 200
  c.evals.metrics = "w1,assignment_variance,classifier_score"
  train.train_and_evaluate(c, str(tmp_path / "run"))
  import json  # pylint: disable=g-import-not-at-top
  m = json.load(open(tmp_path / "run" / "eval" / "step_0000002.json"))
  assert m["metrics"]["w1/exact"] > 0
  assert 1.0 <= m["metrics"]["classifier_score"] <= 10.0

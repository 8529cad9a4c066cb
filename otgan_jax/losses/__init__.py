"""Pure loss functions."""

from otgan_jax.losses.otgan import conditional_energy_distance
from otgan_jax.losses.otgan import cost_matrix
from otgan_jax.losses.otgan import inner_iterations
from otgan_jax.losses.otgan import minibatch_energy_distance
from otgan_jax.losses.otgan import PRECISIONS
from otgan_jax.losses.otgan import random_plan
from otgan_jax.losses.otgan import SOLVERS
from otgan_jax.losses.otgan import sinkhorn_plan
from otgan_jax.losses.otgan import transport_cost

__all__ = ["conditional_energy_distance", "cost_matrix", "inner_iterations",
           "minibatch_energy_distance", "PRECISIONS", "random_plan", "SOLVERS",
           "sinkhorn_plan", "transport_cost"]

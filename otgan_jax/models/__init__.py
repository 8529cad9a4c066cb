"""OT-GAN networks: the convolutional family and the toy MLPs.

`build_models` turns a model config into a (generator, critic) pair:

  model_config.name         'otgan_conv' | 'toy_mlp' | 'assignment_deconv'
  model_config.z_dim        latent dimension (used by the sampler, not here)
  model_config.num_classes  0 for unconditional, else number of labels
  model_config.generator    {base_size, widths, out_init_scale, hidden}
  model_config.critic       {widths, strides, hidden, features}
  model_config.dtype        'float32' | 'bfloat16': the layers' computation
                            dtype; parameters, generated samples and critic
                            outputs are float32 either way

'otgan_conv' reads base_size / widths / out_init_scale and widths / strides;
'toy_mlp' reads the two ``hidden`` entries and ``critic.features``;
'assignment_deconv' (paper 004's networks, `assignment_nets`) reads
base_size / widths and critic.widths. The
critic's ``head`` is the training method's to choose (`build_models(...,
head=)`): 'features' (OT-GAN's feature map) or 'scalar' (one output, for the
GAN / WGAN baselines; the toy critic then has one linear output). Sequences
may be tuples or lists. Missing keys take the module defaults.
"""

from typing import Any, Mapping, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from otgan_jax.models import assignment_nets
from otgan_jax.models.assigner import Assigner
from otgan_jax.models.layers import WNConv
from otgan_jax.models.layers import WNDense
from otgan_jax.models.layers import crelu
from otgan_jax.models.layers import glu
from otgan_jax.models.layers import upsample_nearest_2x
from otgan_jax.models.otgan import Critic
from otgan_jax.models.otgan import Generator
from otgan_jax.models.otgan import feature_dim
from otgan_jax.models.otgan import l2_normalise
from otgan_jax.models.otgan import output_size
from otgan_jax.models.otgan import sample_latent
from otgan_jax.models.toy import MLPCritic
from otgan_jax.models.toy import MLPGenerator

__all__ = [
    'Assigner',
    'Critic',
    'Generator',
    'MLPCritic',
    'MLPGenerator',
    'WNConv',
    'WNDense',
    'build_models',
    'crelu',
    'feature_dim',
    'glu',
    'l2_normalise',
    'output_size',
    'sample_latent',
    'upsample_nearest_2x',
]

MODEL_NAMES = ('otgan_conv', 'toy_mlp', 'assignment_deconv')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(model_config: Any) -> Any:
  """`model.dtype` ('float32' | 'bfloat16') as a jnp dtype."""
  name = str(_get(model_config, 'dtype', 'float32'))
  if name not in DTYPES:
    raise ValueError(f'model.dtype must be one of {tuple(DTYPES)}, got '
                     f'{name!r}.')
  return DTYPES[name]


def _get(config: Any, key: str, default: Any = None) -> Any:
  """Reads ``key`` from a ConfigDict, a Mapping or None, else ``default``."""
  if config is None:
    return default
  if isinstance(config, Mapping) or hasattr(config, 'get'):
    value = config.get(key, default)
  else:
    value = getattr(config, key, default)
  return default if value is None else value


def _ints(values: Sequence[Any]) -> Tuple[int, ...]:
  """Converts a tuple or list (or ConfigDict-held sequence) to int tuple."""
  return tuple(int(v) for v in values)


def _build_conv(
    model_config: Any, data_shape: Sequence[int], num_classes: int, head: str
) -> Tuple[nn.Module, nn.Module]:
  """Builds the OT-GAN conv generator and critic for images of data_shape."""
  if len(data_shape) != 3:
    raise ValueError(
        "model.name='otgan_conv' needs image data of shape (height, width, "
        f'channels); got data shape {tuple(data_shape)}.'
    )
  height, width, channels = _ints(data_shape)
  gen_cfg = _get(model_config, 'generator')
  critic_cfg = _get(model_config, 'critic')
  gen_defaults = Generator()
  critic_defaults = Critic()
  base_size = int(_get(gen_cfg, 'base_size', gen_defaults.base_size))
  gen_widths = _ints(_get(gen_cfg, 'widths', gen_defaults.widths))
  out_init_scale = float(
      _get(gen_cfg, 'out_init_scale', gen_defaults.out_init_scale)
  )
  if height != width:
    raise ValueError(
        f'The OT-GAN generator makes square images; data is {height}x{width}.'
    )
  size = output_size(base_size, gen_widths)
  if size != height:
    factor = 2 ** (len(gen_widths) - 1)
    hint = (
        f'set model.generator.base_size={height // factor}'
        if height % factor == 0
        else 'change model.generator.widths (its length sets the number of '
        '2x upsamplings) so that the data size is a multiple of '
        '2**(len(widths)-1)'
    )
    raise ValueError(
        'Generator output size does not match the data: base_size * '
        f'2**(len(widths)-1) = {base_size} * 2**{len(gen_widths) - 1} = '
        f'{size}, but the images are {height}x{width}. Change '
        'model.generator.base_size or model.generator.widths '
        f'(e.g. {hint}).'
    )
  critic_widths = _ints(_get(critic_cfg, 'widths', critic_defaults.widths))
  critic_strides = _ints(_get(critic_cfg, 'strides', critic_defaults.strides))
  if len(critic_widths) != len(critic_strides):
    raise ValueError(
        f'model.critic.widths {critic_widths} and model.critic.strides '
        f'{critic_strides} must have the same length.'
    )
  generator = Generator(
      base_size=base_size,
      widths=gen_widths,
      out_channels=channels,
      out_init_scale=out_init_scale,
      num_classes=num_classes,
      dtype=compute_dtype(model_config),
  )
  critic = Critic(
      widths=critic_widths, strides=critic_strides, num_classes=num_classes,
      head=head, dtype=compute_dtype(model_config),
  )
  return generator, critic


def _build_toy(
    model_config: Any, data_shape: Sequence[int], num_classes: int, head: str
) -> Tuple[nn.Module, nn.Module]:
  """Builds the toy MLP generator and critic for vectors of data_shape."""
  if len(data_shape) != 1:
    raise ValueError(
        "model.name='toy_mlp' needs vector data of shape (dim,); got data "
        f'shape {tuple(data_shape)}.'
    )
  gen_cfg = _get(model_config, 'generator')
  critic_cfg = _get(model_config, 'critic')
  generator = MLPGenerator(
      hidden=_ints(_get(gen_cfg, 'hidden', MLPGenerator().hidden)),
      out_dim=int(data_shape[0]),
      num_classes=num_classes,
      dtype=compute_dtype(model_config),
  )
  features = int(_get(critic_cfg, 'features', MLPCritic().features))
  critic = MLPCritic(
      hidden=_ints(_get(critic_cfg, 'hidden', MLPCritic().hidden)),
      features=1 if head == 'scalar' else features,
      num_classes=num_classes,
      dtype=compute_dtype(model_config),
  )
  return generator, critic


def build_models(
    model_config: Any, data_shape: Sequence[int], head: str = 'features'
) -> Tuple[nn.Module, nn.Module]:
  """Builds the (generator, critic) pair named by a model config.

  Args:
    model_config: ml_collections ConfigDict (or Mapping) with keys ``name``,
      ``z_dim``, ``num_classes``, ``generator`` and ``critic`` (see module
      docstring).
    head: the critic's output: 'features' (OT-GAN) or 'scalar'.
    data_shape: shape of one example without the batch axis: (H, W, C) for
      'otgan_conv', (dim,) for 'toy_mlp'. Sets the generator's output
      channels / dimension.

  Returns:
    (generator, critic) Flax modules. Call ``generator(z[, labels])`` with z
    [B, z_dim] and ``critic(x[, labels])`` with x [B, *data_shape].

  Raises:
    ValueError: on an unknown name, a data shape of the wrong rank, or an
      'otgan_conv' generator whose output size differs from the data size.
  """
  if head not in ('features', 'scalar'):
    raise ValueError(f'head must be "features" or "scalar", got {head!r}.')
  name = _get(model_config, 'name')
  num_classes = int(_get(model_config, 'num_classes', 0))
  if num_classes < 0:
    raise ValueError(f'model.num_classes must be >= 0, got {num_classes}.')
  if name == 'otgan_conv':
    return _build_conv(model_config, data_shape, num_classes, head)
  if name == 'toy_mlp':
    return _build_toy(model_config, data_shape, num_classes, head)
  if name == 'assignment_deconv':
    return assignment_nets.build(model_config, data_shape, head, get=_get,
                                 dtype=compute_dtype(model_config))
  raise ValueError(
      f'Unknown model.name {name!r}; expected one of {MODEL_NAMES}.'
  )

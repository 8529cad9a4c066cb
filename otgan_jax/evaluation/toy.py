"""Mode metrics for 2-D mixtures (VEEGAN's definitions, as used by PacGAN).

A sample is *high quality* if it lies within `num_std` standard deviations of
its nearest mode; a mode is *covered* if at least one high-quality sample is
nearest to it. The mode layout (centres) and the std are parameters: name them
beside every number reported.
"""

from __future__ import annotations

import numpy as np


def mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float, *,
                 num_std: float = 3.0) -> dict[str, object]:
  """Modes covered and the share of high-quality samples.

  Args:
    samples: `[n, 2]` generated points.
    centers: `[k, 2]` mode centres.
    std: standard deviation of each mode.
    num_std: radius of "high quality", in stds (3 in VEEGAN and PacGAN).

  Returns:
    `modes_covered` (int), `high_quality_fraction` (float in [0, 1]) and
    `counts` (high-quality samples per mode, `[k]` ints).
  """
  samples = np.asarray(samples, np.float64)
  centers = np.asarray(centers, np.float64)
  dist = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
  nearest = dist.argmin(axis=1)
  good = dist[np.arange(len(samples)), nearest] <= num_std * std
  counts = np.bincount(nearest[good], minlength=len(centers))
  return {"modes_covered": int((counts > 0).sum()),
          "high_quality_fraction": float(good.mean()),
          "counts": counts}

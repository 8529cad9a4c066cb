"""Sample grids (images) and scatter plots (2-D vectors) as PNG files."""

from __future__ import annotations

import math
import os

import numpy as np


def image_grid(images: np.ndarray, *, low: float, high: float,
               pad: int = 1) -> np.ndarray:
  """Tiles `[n, H, W, C]` images in `[low, high]` into a `[h, w, 3]` uint8 grid."""
  n, h, w, c = images.shape
  cols = math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  x = np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)
  x = (x * 255.0 + 0.5).astype(np.uint8)
  if c == 1:
    x = np.repeat(x, 3, axis=-1)
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255,
                 np.uint8)
  for i in range(n):
    r, k = divmod(i, cols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + k * (w + pad):pad + k * (w + pad) + w] = x[i]
  return grid


def save_image_grid(path: str, images: np.ndarray, *, low: float, high: float,
                    min_size: int = 256) -> np.ndarray:
  """Writes an upscaled PNG grid (nearest neighbour) and returns the grid."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  grid = image_grid(images, low=low, high=high)
  scale = max(1, math.ceil(min_size / max(grid.shape[:2])))
  img = Image.fromarray(grid)
  if scale > 1:
    img = img.resize((grid.shape[1] * scale, grid.shape[0] * scale),
                     Image.NEAREST)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  img.save(path)
  return grid


def save_scatter(path: str, points: np.ndarray, *,
                 reference: np.ndarray | None = None,
                 centers: np.ndarray | None = None, title: str = "") -> None:
  """Scatter plot of `[n, 2]` samples, optionally over reference points."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=2, c="tab:blue", alpha=0.3,
               label="data")
  ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:red", alpha=0.6,
             label="samples")
  if centers is not None:
    ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", c="k",
               label="modes")
  ax.set_aspect("equal")
  ax.legend(loc="upper right", fontsize=7)
  if title:
    ax.set_title(title, fontsize=9)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, bbox_inches="tight")
  plt.close(fig)

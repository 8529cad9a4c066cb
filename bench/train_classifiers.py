r"""Trains the pinned classifiers of evaluation/classifier.py.

  python bench/train_classifiers.py --data_dir=../shared/data
  python bench/train_classifiers.py --data_dir=../shared/data \
      --datasets=mnist --epochs=3 --out_dir=/tmp/weights
  python bench/train_classifiers.py --datasets=digits --epochs=60 \
      --batch_size=50

The embedded 8x8 digits need no `--data_dir`: trained on the first 1,500
(`data.holdout=297`'s train split), tested on the last 297 (its test split);
the pinned file: 60 epochs of batch 50, seed 0.

`--data_dir` holds `mnist/` and `fashion_mnist/` with the official IDX files.
Trains on the 60,000 training images, reports the accuracy on the official
10,000 test images, writes `<name>_classifier.npz` to `--out_dir` (default:
the package's `otgan_jax/evaluation/weights/`) and prints the sha256 and
accuracy to pin in `classifier.PRETRAINED`. About 3 minutes per data set on
two busy CPU cores (3 epochs). The pinned files: MNIST 0.9925, Fashion-MNIST
0.9076 test accuracy, 526,858 bytes each. The same sha256 needs bit-identical
weights, i.e. the same jax/XLA versions and CPU; elsewhere expect a similar
accuracy (2 epochs gave 0.9919 / 0.9012 here) and pin the new hashes.
"""

import os
import sys
import time

import numpy as np

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from otgan_jax.data import readers  # pylint: disable=g-import-not-at-top
from otgan_jax.data import sources  # pylint: disable=g-import-not-at-top
from otgan_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top

DIGITS_HOLDOUT = 297
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Folder with mnist/ and fashion_mnist/.")
_DATASETS = flags.DEFINE_list("datasets", ["mnist", "fashion_mnist"],
                              "Data sets to train on.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs per data set.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", os.path.join(os.path.dirname(classifier.__file__), "weights"),
    "Where to write <name>_classifier.npz.")


def main(argv):
  del argv
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  rows = []
  for name in _DATASETS.value:
    if name == "digits":
      (train_x, train_y), (test_x, test_y) = (
          sources.digits_split(DIGITS_HOLDOUT, split)
          for split in ("train", "test"))
      # 0..16 -> 0..255, as the evaluation's conversion to uint8 does.
      train_x, test_x = (np.rint(x * (255 / 16)).astype(np.uint8)
                         for x in (train_x, test_x))
    else:
      if not _DATA_DIR.value:
        raise app.UsageError(f"{name} needs --data_dir.")
      train_x, train_y = readers.load_idx_dataset(_DATA_DIR.value, name,
                                                  "train")
      test_x, test_y = readers.load_idx_dataset(_DATA_DIR.value, name, "test")
    shape = tuple(train_x.shape[1:3]) + (1,)
    start = time.perf_counter()
    model = classifier.Classifier()
    params = classifier.train_classifier(
        train_x, train_y, epochs=_EPOCHS.value, batch_size=_BATCH_SIZE.value,
        seed=_SEED.value, model=model, shape=shape)
    seconds = time.perf_counter() - start
    probs, _ = classifier.predict(model, params, test_x, shape=shape)
    accuracy = float((probs.argmax(1) == test_y).mean())
    path = os.path.join(_OUT_DIR.value, f"{name}_classifier.npz")
    digest = classifier.save(path, model, params, sidecar=False)
    rows.append((name, accuracy, seconds, os.path.getsize(path), digest))
    print(f"{name}: test accuracy {accuracy:.4f} after {_EPOCHS.value} epochs "
          f"({seconds:.0f} s), {os.path.getsize(path)} bytes, sha256 {digest}",
          flush=True)
  print("\nPin in otgan_jax/evaluation/classifier.py PRETRAINED:")
  for name, accuracy, _, _, digest in rows:
    print(f'  "{name}": sha256 "{digest}", test_accuracy {accuracy:.4f}')


if __name__ == "__main__":
  app.run(main)

#!/usr/bin/env bash
# Downloads, here, the wheels bench/accelerator.sh installs on an accelerator
# image that has jax, flax and optax but not these (Python 3.12, x86-64).
set -eu
mkdir -p .whl
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
# The image has lineax and equinox (bench/accelerator.sh imports no POT).
for pkg in ott-jax==0.6.0 jaxopt==0.8.5 ml-collections==1.1.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "$pkg" || python3 -m pip download -q --no-deps -d .whl "$pkg"
done
ls -la .whl

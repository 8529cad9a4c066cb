#!/bin/bash
# Any training config on a Cloud TPU pod slice: the same command on every host (worker);
# jax.distributed detects the slice (--distributed) and the mesh spans all of
# its chips.
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh \
#       --config=configs/otgan_cifar10.py:one_gpu --config.batch_size=4000
#
# Before the first run, on every worker: clone this repository to ~/otgan_jax
# and `pip install -e . "jax[tpu]"` (SETUP=1 below does both, from REPO_URL).
# WORKDIR and DATA_DIR must be paths every worker sees (a shared disk or a
# gcsfuse mount): checkpoints are written by all hosts, logs by host 0.
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME}"
: "${ZONE:?set ZONE}"
CONFIG="${CONFIG:-configs/otgan_cifar10.py}"
WORKDIR="${WORKDIR:-/mnt/shared/runs/otgan_cifar10}"
DATA_DIR="${DATA_DIR:-/mnt/shared/data/cifar-10-batches-bin}"
REPO_DIR="${REPO_DIR:-\$HOME/otgan_jax}"

ssh_all() {
  gcloud compute tpus tpu-vm ssh "${TPU_NAME}" --zone="${ZONE}" \
    --worker=all --command="$1"
}

if [[ "${SETUP:-0}" == "1" ]]; then
  : "${REPO_URL:?set REPO_URL to clone from}"
  ssh_all "git clone ${REPO_URL} ${REPO_DIR} || true; cd ${REPO_DIR} && \
    pip install -e . 'jax[tpu]'"
fi

# Quote the extra arguments for the remote shell.
extra=""
for a in "$@"; do extra+=" $(printf '%q' "$a")"; done
ssh_all "cd ${REPO_DIR} && python -m launch.train --distributed \
  --config=${CONFIG} --workdir=${WORKDIR} \
  --config.data.data_dir=${DATA_DIR}${extra}"

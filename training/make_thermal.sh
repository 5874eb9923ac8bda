#!/usr/bin/env bash
# The thermal data set as committed (training/data/thermal/): the six training glasses minimized
# and at 300/500/700 K, snapshots at 1.0 and 1.5 ps (training augmentation); the validation glass
# minimized, at 600/300 K for 10 ps (snapshots at 5 and 10 ps, as the held-out protocol: minimize,
# then 10 ps NVT) and at 500/700 K for 5 ps (selection and the MODEL_CARD numbers).
# Resumable: rerun after a kill (finished files are skipped). About 45 min on 2 cores.
#   nohup bash training/make_thermal.sh > training/data/thermal/log.txt 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH="$PWD/.venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=1
py=.venv/bin/python
$py training/make_thermal.py --glasses train0 train1 train2 train3 train4 train5 \
  --temps 300 500 700 --time-ps 1.5 --snapshots 1.0 1.5
$py training/make_thermal.py --glasses valid --temps 600 300 --time-ps 10 --snapshots 5 10
$py training/make_thermal.py --glasses valid --temps 500 700 --time-ps 5 --snapshots 5

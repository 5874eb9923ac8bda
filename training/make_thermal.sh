#!/usr/bin/env bash
# The thermal data set as committed (training/data/thermal/): training glasses at 300/500/700 K,
# snapshots at 1.0 and 1.5 ps (training augmentation); the validation glass at 300/500/600/700 K
# for 10 ps, snapshots at 5 and 10 ps (selection and the MODEL_CARD numbers, like the held-out
# protocol: minimize, then 10 ps NVT). Resumable: rerun after a kill.
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

#!/usr/bin/env bash
# Label a few atoms of a new glass, fine-tune the bundled model on them, run it in LAMMPS.
#
#   examples/label_and_finetune/run.sh [WORKDIR]      (default: examples/label_and_finetune/out)
#
# Environment: ATOMS (default random:12), SEARCHES (3), WORKERS (2), EPOCHS (30), CELLS (10),
# MELT_STEPS (2000), QUENCH_STEPS (4000), LABEL_ARGS (default: --set active_radius=6).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV_BIN="${VENV_BIN:-$ROOT/.venv/bin}"
PY="$VENV_BIN/python"
SYMGNN="$VENV_BIN/symgnn"
WORK="${1:-$HERE/out}"
mkdir -p "$WORK"
cd "$WORK"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
POTENTIAL="$("$PY" -c 'from symgnn_ase.data.thermal import lammps_potential_path as p; print(p())')"

echo "== 1. a small glass: melt, quench, minimize ($((4 * ${CELLS:-10} ** 3)) atoms)"
[ -f glass.extxyz ] || "$PY" "$HERE/make_glass.py" -o glass.extxyz --cells "${CELLS:-10}" \
    --melt-steps "${MELT_STEPS:-2000}" --quench-steps "${QUENCH_STEPS:-4000}"

echo "== 2. labels: ARTn saddle searches (resumable: run again after a kill)"
# the glass is ~40 Å wide: a 6 Å moving sphere keeps the carve-out (6 + 12 Å shell) inside it
# shellcheck disable=SC2086  # LABEL_ARGS is a list of options
"$SYMGNN" label glass.extxyz --potential CuZr_mm.eam.fs --atoms "${ATOMS:-random:12}" \
    --searches "${SEARCHES:-3}" ${LABEL_ARGS:---set active_radius=6} --workers "${WORKERS:-2}" \
    -o labels

echo "== 3. fine-tune the bundled default model on the labelled atoms"
"$PY" "$HERE/split.py" labels/barriers.extxyz train.extxyz valid.extxyz
INIT="$("$PY" -c 'from symgnn_ase.format import default_model_path as p; print(p())')"
cat > finetune.yaml <<YAML
run_dir: runs/finetune
seed: 0
threads: 1
init: $INIT             # weights and label standardization of the bundled model
data:
  train: [train.extxyz]
  valid: [valid.extxyz]
  label: energy_barrier
  partial_labels: true  # NaN = unlabelled atom, left out of loss and metrics
optim:
  lr: 1.0e-3
  epochs: ${EPOCHS:-30}
  patience: ${EPOCHS:-30}
YAML
"$SYMGNN" train finetune.yaml --no-progress
"$SYMGNN" export runs/finetune -o finetuned.pt

echo "== 4. the fine-tuned model in LAMMPS (compute symgnn)"
"$PY" -c "import ase.io; ase.io.write('glass.data', ase.io.read('labels/relaxed.extxyz'), format='lammps-data', specorder=['Cu', 'Zr'], masses=True)"
"$VENV_BIN/lmp" -in "$HERE/in.barriers" -var potential "$POTENTIAL" -var model finetuned.pt \
    -log lammps.log -screen none
"$PY" - <<'PY'
import ase.io
import numpy as np

labels = ase.io.read("labels/barriers.extxyz").arrays["energy_barrier"]
rows = np.loadtxt("barriers.dump", skiprows=9)
predicted = np.empty(len(rows))
predicted[rows[:, 0].astype(int) - 1] = rows[:, 5]
have = np.isfinite(labels)
print(f"LAMMPS compute symgnn with finetuned.pt: mean barrier {predicted.mean():.3f} eV "
      f"over {predicted.size} atoms")
for i in np.flatnonzero(have):
    print(f"  atom {i}: ARTn {labels[i]:.3f} eV, fine-tuned model {predicted[i]:.3f} eV")
PY
echo "done: $WORK"

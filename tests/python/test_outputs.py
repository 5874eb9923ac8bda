"""The output helper (symgnn_ase.outputs): unique temporary file, fsync, atomic rename; refused
targets (not a regular file, one of the inputs) before any work; nothing left behind on error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from symgnn_ase.outputs import (
    OutputError,
    atomic_output,
    atomic_path,
    check_output,
    write_bytes,
    write_text,
)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_and_replaces(tmp_path):
    out = tmp_path / "sub" / "out.txt"
    write_text(out, "one\n")  # the folder is created
    assert out.read_text() == "one\n"
    write_text(out, "two\n")
    assert out.read_text() == "two\n"
    assert _listing(out.parent) == ["out.txt"]
    write_bytes(out, b"\x00\x01")
    assert out.read_bytes() == b"\x00\x01"


def test_mode_of_a_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640  # not mkstemp's 0o600


def test_mode_of_a_replaced_file_is_kept(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    out.chmod(0o604)
    write_text(out, "new")
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o604


def test_user_file_named_like_a_temporary_is_untouched(tmp_path):
    """The old writer used the fixed name OUT.tmp and deleted the user's file of that name."""
    mine = tmp_path / "out.xyz.tmp"
    mine.write_text("mine")
    write_text(tmp_path / "out.xyz", "result")
    assert mine.read_text() == "mine"
    assert _listing(tmp_path) == ["out.xyz", "out.xyz.tmp"]


def test_error_leaves_target_and_no_temporary(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("precious")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(out) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert out.read_text() == "precious"
    assert _listing(tmp_path) == ["out.txt"]
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.bin") as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert _listing(tmp_path) == ["out.txt"]


def test_atomic_path_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.exists()
        tmp.write_bytes(b"png")
    assert (tmp_path / "fig.png").read_bytes() == b"png"


@pytest.mark.parametrize("kind", ["directory", "symlink", "dangling symlink", "fifo", "device"])
def test_non_regular_targets_are_refused(tmp_path, kind):
    target = tmp_path / "out"
    real = tmp_path / "real.txt"
    real.write_text("kept")
    if kind == "directory":
        target.mkdir()
        words = "is a directory"
    elif kind == "symlink":
        target.symlink_to(real)
        words = "is a symbolic link"
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere")
        words = "is a symbolic link"
    elif kind == "fifo":
        os.mkfifo(target)
        words = "is a FIFO"
    else:
        target = Path("/dev/null")
        words = "is a device"
    with pytest.raises(OutputError, match=words) as err:
        write_text(target, "x")
    assert str(target) in str(err.value)
    assert isinstance(err.value, ValueError)
    assert real.read_text() == "kept"
    if kind == "device":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    else:
        assert sorted(_listing(tmp_path)) == ["out", "real.txt"]
        assert not stat.S_ISREG(os.lstat(target).st_mode)


def test_output_equal_to_an_input_is_refused(tmp_path):
    src = tmp_path / "in.xyz"
    src.write_text("input")
    with pytest.raises(OutputError, match="is also an input"):
        check_output(src, [src])
    # another spelling of the same file, and a hard link
    with pytest.raises(OutputError, match="is also an input"):
        check_output(tmp_path / "." / "in.xyz", [str(src)])
    os.link(src, tmp_path / "hard.xyz")
    with pytest.raises(OutputError, match="is also an input"):
        check_output(tmp_path / "hard.xyz", [src])
    # an input reached through a symlinked folder
    (tmp_path / "alias").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="is also an input"):
        check_output(tmp_path / "alias" / "in.xyz", [src])
    assert src.read_text() == "input"
    assert check_output(tmp_path / "other.xyz", [src, None]) == tmp_path / "other.xyz"


def test_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        check_output(tmp_path / "f" / "out.txt")

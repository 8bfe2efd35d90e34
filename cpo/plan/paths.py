"""Paths the user writes in manifests and task files: they must stay inside the parallel dir."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def inside(root_real: str, rel: str) -> tuple[Path | None, str | None]:
    """Resolve `rel` against the parallel directory `root_real` (already realpath'd).

    Returns (path, None), or (None, why) when the path is empty, absolute, or escapes
    the directory (by `..` or through a symlink). Existence is not checked here.
    """
    if not rel or not rel.strip():
        return None, "is empty"
    if "\x00" in rel:
        return None, "contains a NUL character"
    try:
        os.fsencode(rel)
    except UnicodeError:
        return None, f"{rel!r} contains characters that cannot be in a file name"
    if os.path.isabs(rel) or rel.startswith("~") or (len(rel) > 1 and rel[1] == ":"):
        return None, f"{rel!r} is absolute; use a path relative to the parallel directory"
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith(".." + os.sep):
        return None, f"{rel!r} escapes the parallel directory"
    joined = os.path.join(root_real, norm)
    try:
        real = _realpath(joined)
    except (OSError, ValueError):
        return None, f"{rel!r} cannot be resolved"
    if real != root_real and not real.startswith(root_real + os.sep):
        return None, f"{rel!r} escapes the parallel directory through a symlink"
    return Path(joined), None


# realpath of directories, shared by the many files of one directory (tasks/, prompts/):
# a 5,000-task plan would otherwise lstat every path component of every file.
_dir_cache: dict[str, str] = {}


def clear_cache() -> None:
    """Forget resolved directories; called at the start of each load."""
    _dir_cache.clear()


def _realpath(path: str) -> str:
    parent, name = os.path.split(path)
    real_parent = _dir_cache.get(parent)
    if real_parent is None:
        real_parent = _dir_cache[parent] = os.path.realpath(parent)
    candidate = os.path.join(real_parent, name)
    if name in ("", ".", "..") or os.path.islink(candidate):
        return os.path.realpath(candidate)
    return candidate


def exists(path: Path) -> bool:
    """`path.exists()`, but False (not an exception) for names the OS refuses."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def read_text(path: Path) -> tuple[str | None, str | None]:
    """Read a UTF-8 text file: (text, None) or (None, why).

    Only regular files are read: opening a FIFO would wait for a writer forever, and a
    device could be endless. O_NONBLOCK makes the open itself return at once; the type is
    then checked on the open file, so it cannot change in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None, "file not found"
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return None, "is a directory, not a file"
        if not stat.S_ISREG(mode):
            return None, f"is {_kind(mode)}, not a regular file; cpo reads only files"
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, f"line {line}: not valid UTF-8 (byte {exc.start}); save it as UTF-8"
    return text, None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"

"""Paths the user writes in manifests and task files: they must stay inside the parallel dir."""

from __future__ import annotations

import os
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


def read_text(path: Path) -> tuple[str | None, bytes, str | None]:
    """Read a UTF-8 text file: (text, raw bytes, None) or (None, b"", why)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, b"", "file not found"
    except IsADirectoryError:
        return None, b"", "is a directory, not a file"
    except OSError as exc:
        return None, b"", f"cannot be read: {exc.strerror or exc}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, data, f"line {line}: not valid UTF-8 (byte {exc.start}); save it as UTF-8"
    return text, data, None

"""Files named by the user are read only when they are regular files inside the directory."""

from __future__ import annotations

import os
from pathlib import Path

from plandirs import cpo_manifest, write_dir
from runkit import cpo

from cpo.plan.paths import read_text


def test_read_text_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    (tmp_path / "ok.txt").write_text("\ufeffhello\n")
    (tmp_path / "bad.txt").write_bytes(b"a\n\xff\n")
    assert read_text(fifo) == (
        None,
        "is a FIFO (named pipe), not a regular file; cpo reads only files",
    )
    assert read_text(tmp_path / "dir") == (None, "is a directory, not a file")
    assert read_text(tmp_path / "none") == (None, "file not found")
    assert read_text(tmp_path / "ok.txt") == ("hello\n", None)
    assert (
        read_text(tmp_path / "bad.txt")[1] == "line 2: not valid UTF-8 (byte 2); save it as UTF-8"
    )


def test_prompt_file_and_task_file_fifos_do_not_block_validate(tmp_path: Path) -> None:
    """Before: opening a FIFO waited for a writer forever."""
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "t1", "prompt_file": "prompts/t1.fifo"}, "t2"]),
        tasks={"t1.md": {"id": "t1"}},
        prompts={"t2.txt": "Do t2."},
    )
    os.mkfifo(root / "prompts" / "t1.fifo")
    os.mkfifo(root / "tasks" / "t2.md")
    # The timeout only keeps a regression from hanging the suite; nothing here times cpo.
    done = cpo("validate", str(root), cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "prompts/t1.fifo is a FIFO (named pipe), not a regular file" in done.stderr
    assert "tasks/t2.md: is a FIFO (named pipe), not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_manifest_symlinked_from_outside_is_refused(tmp_path: Path) -> None:
    outside = write_dir(tmp_path / "elsewhere", manifest=cpo_manifest(["t1"]))
    root = write_dir(tmp_path / "p", prompts={"t1.txt": "Do t1."})
    (root / "manifest.json").symlink_to(outside / "manifest.json")
    done = cpo("validate", str(root), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert (
        "manifest.json: 'manifest.json' escapes the parallel directory through a symlink; "
        "copy the file into the directory instead" in done.stderr
    )
    # a symlink that stays inside the directory is fine
    (root / "manifest.json").unlink()
    (root / "real.json").write_text((outside / "manifest.json").read_text())
    (root / "manifest.json").symlink_to("real.json")
    assert cpo("validate", str(root), cwd=tmp_path).returncode == 0

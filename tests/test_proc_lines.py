"""proc.run_streaming's reading of lines too long to take whole, with real processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from cpo.proc import MAX_LINE_BYTES, run_streaming
from cpo.secrets import Masker

SECRET = "Zq8wX1vB7nM3kL5jH9gFdS2aP4oI6uY8"


def _pieces(tmp_path: Path, script: str, split: Callable[[str], int] = len) -> list[str]:
    pieces: list[str] = []
    run_streaming(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=os.environ,
        on_stdout=pieces.append,
        split=split,
    )
    return pieces


def test_a_secret_across_the_line_limit_reaches_the_masker_whole(tmp_path: Path) -> None:
    masker = Masker({"MY_API_KEY": SECRET})
    before = MAX_LINE_BYTES - len(SECRET) // 2  # the limit falls in the middle of the key
    script = (
        f"import sys; sys.stdout.write('a' * {before} + {SECRET!r} + ' b' * 1000 + '\\n');"
        f"sys.stdout.write('next line\\n')"
    )
    pieces = _pieces(tmp_path, script, masker.safe_split)
    assert "".join(pieces[:-1]) == "a" * before + SECRET + " b" * 1000  # nothing lost
    assert pieces[-1] == "next line"
    assert all(len(p.encode()) <= MAX_LINE_BYTES + 64 * 1024 for p in pieces)
    masked = [masker.mask(p) for p in pieces]
    assert not any(SECRET[:8] in p or SECRET[-8:] in p for p in masked)


def test_a_character_across_the_line_limit_is_kept_whole(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.buffer.write(b'a' * (1048576 - 1) + 'é'.encode() + b'z')"
    pieces = _pieces(tmp_path, script)
    assert "".join(pieces) == "a" * (MAX_LINE_BYTES - 1) + "éz"


def test_a_last_line_without_newline_comes_whole(tmp_path: Path) -> None:
    assert _pieces(tmp_path, "import sys; sys.stdout.write('one\\ntwo')") == ["one", "two"]


def test_a_callback_that_fails_does_not_stop_the_reading(tmp_path: Path) -> None:
    # 4,000 lines (more than a pipe holds): a reader that died on the first would leave the
    # child blocked on a full pipe until the timeout
    seen: list[str] = []

    def fragile(line: str) -> None:
        if line == "0":
            raise ValueError("a handler's bug")
        seen.append(line)

    result = run_streaming(
        [sys.executable, "-c", "for i in range(4000): print(i, 'x' * 100 if i else '')"],
        cwd=tmp_path,
        env=os.environ,
        on_stdout=lambda line: fragile(line.strip()),
        timeout=60,
    )
    assert not result.timed_out and result.returncode == 0
    assert len(seen) == 3999

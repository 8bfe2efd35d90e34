"""The benchmarks' load judgement (bench/_load.py) on recorded numbers: no timing.

/proc/stat counts in 10 ms ticks, so a 17 ms round's share of others' CPU is noise; short
rounds are judged pooled into windows of at least a second, never alone as quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import _common
import _load
from _load import RoundLoad, Rule, judge, pool

RULE = Rule(limit=0.10, window=1.0, cores=2, tick=0.01, margin_ticks=3)
MS = 0.001


def rounds(
    walls_ms: Sequence[float], others_ms: Sequence[float], name: str = "r"
) -> list[RoundLoad]:
    return [
        RoundLoad(f"{name} {i + 1}", 0.5, 0.5, w * MS, o * MS)
        for i, (w, o) in enumerate(zip(walls_ms, others_ms, strict=True))
    ]


def test_quiet_short_rounds_are_quiet_pooled() -> None:
    """60 `python -c pass` rounds of 17 ms on a quiet machine: /proc/stat's busy reading
    moves in ticks while our own CPU is exact, so others read as -7 ms or +3 ms, and now
    and then +13 ms (a kernel thread's tick): 38 % of the machine in that round."""
    pattern = [3, -7, -7, 3, 13, -7, 3, -7, 3, -7]
    rs = rounds([17] * 60, pattern * 6)
    share = [RULE.share(r.others_cpu, r.wall) for r in rs]
    assert max(share) > RULE.limit  # judged round by round, these rounds were "loaded"
    verdicts = judge(rs, RULE)
    assert [v.round for v in verdicts] == rs
    assert not any(v.loaded for v in verdicts)
    assert all(v.judged for v in verdicts)
    assert all(v.window.wall >= 1.0 for v in verdicts)


def test_loaded_short_rounds_are_loaded_pooled() -> None:
    """The same rounds while a neighbour takes about a fifth of the machine: no round is
    over the limit beyond its reading's error, but their windows are."""
    rs = rounds([17] * 60, [13, 13, -7] * 20)
    verdicts = judge(rs, RULE)
    assert not any(RULE.over(r.others_cpu, r.wall) for r in rs)
    assert all(v.loaded for v in verdicts)


def test_a_long_loaded_round_is_not_diluted_by_a_short_quiet_one() -> None:
    rs = rounds([500, 1500], [0, 360])  # the pool: 9 %; the long round alone: 12 %
    assert [v.loaded for v in judge(rs, RULE)] == [False, True]


def test_a_burst_in_a_short_round_is_not_averaged_away() -> None:
    rs = rounds([300, 5000], [300, 0])  # half the machine for 0.3 s, then quiet
    assert [v.loaded for v in judge(rs, RULE)] == [True, False]


def test_windows_close_at_a_second_and_the_rest_joins_the_last() -> None:
    rs = rounds([400, 400, 400, 2000, 300, 300], [0] * 6)
    assert [(w.first, w.last) for w in pool(rs, RULE)] == [(0, 2), (3, 5)]
    assert [(w.first, w.last) for w in pool(rs, RULE, final=False)] == [(0, 2), (3, 3), (4, 5)]


def test_rounds_shorter_than_a_window_together_are_not_judged() -> None:
    verdicts = judge(rounds([17, 17], [13, -7]), RULE)
    assert not any(v.loaded for v in verdicts)
    assert not any(v.judged for v in verdicts)


@pytest.fixture
def recorded() -> Iterator[list[RoundLoad]]:
    saved = list(_load.ROUNDS)
    _load.ROUNDS.clear()
    yield _load.ROUNDS
    _load.ROUNDS[:] = saved


@pytest.mark.parametrize(
    ("others_ms", "written", "note"),
    [
        ([3, -7, -7, 3, 13] * 12, True, "all 60 rounds quiet"),
        ([13, 13, -7] * 20, False, "rounds under load"),
        ([3, 13], False, "rounds too short to judge the load"),
    ],
)
def test_update_readme_writes_quiet_figures_only(
    recorded: list[RoundLoad],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    others_ms: list[float],
    written: bool,
    note: str,
) -> None:
    recorded.extend(rounds([17] * len(others_ms), others_ms, "python -c pass, run"))
    monkeypatch.setattr(_load, "Rule", lambda: RULE)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:x -->\nold\n<!-- /results:x -->\n")
    monkeypatch.setattr(_common, "README", readme)
    _common.update_readme("x", "new figures")
    text = readme.read_text()
    assert ("new figures" in text) == written
    assert note in (text if written else capsys.readouterr().out)


def test_a_running_child_is_counted_as_ours_not_as_another_process() -> None:
    """bench_serve's `cpo serve` runs through its rounds and is waited for only at the end:
    its CPU was read as other processes' (the rounds marked loaded by our own server).
    Before: a child busy for 0.3 s and not yet waited for added nothing to ours."""
    import subprocess

    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    before = _load._our_seconds()
    child = subprocess.Popen(
        [sys.executable, "-c", spin + "\nimport sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        for _ in range(500):  # until it has spun (it then waits on its stdin)
            if _load._our_seconds() - before >= 0.3:
                break
            __import__("time").sleep(0.01)
        assert _load._our_seconds() - before >= 0.3
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()

"""Plan files: parsing real-world shapes, writing statuses back byte for byte, checking."""

from __future__ import annotations

import tempfile
import threading
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpo.cli import main
from cpo.errors import PlanError
from cpo.planfile.check import check_plan
from cpo.planfile.doc import DEFAULT_STREAM, PlanDoc, parse_plan
from cpo.planfile.edit import set_status, without_statuses
from cpo.planfile.load import load_plan_file
from cpo.planfile.sample import SAMPLE_PLAN
from cpo.planfile.writer import PlanWriter

ISSUE_PLAN = """# Title
...
## Progress Tracking

| Task | Stream | Name | Status | Date |
|------|--------|------|--------|------|
| F3   | AMD    | Build QEMU amd64 | TASK:PENDING | |
| F4   | Jetson | Build QEMU arm64 | TASK:PENDING | |
| R2   |        | Evaluate options | TASK:COMPLETE | 2026-01-12 |

## Task F3: Build QEMU amd64
**Status**: TASK:PENDING
...the instructions for this task...

## Task F4: Build QEMU arm64
**Status**: TASK:PENDING
build it

## Task R2: Evaluate options
**Status**: TASK:COMPLETE
"""


def test_the_issue_plan_parses_into_rows_streams_and_sections() -> None:
    doc = parse_plan(ISSUE_PLAN)
    assert [(r.task_id, r.stream, r.status) for r in doc.rows] == [
        ("F3", "AMD", "TASK:PENDING"),
        ("F4", "Jetson", "TASK:PENDING"),
        ("R2", DEFAULT_STREAM, "TASK:COMPLETE"),
    ]
    assert doc.prompt("F3") == (
        "## Task F3: Build QEMU amd64\n**Status**: TASK:PENDING\n"
        "...the instructions for this task...\n\n"
    )
    assert check_plan(doc, "PLAN.md") == []


def test_without_a_stream_column_the_plan_is_one_stream_in_table_order(tmp_path: Path) -> None:
    text = (
        "## Progress Tracking\n| Status | Task | Name |\n|---|---|---|\n"
        "| TASK:PENDING | T1 | one |\n| TASK:COMPLETE | T2 | two |\n| TASK:PENDING | T3 | x |\n"
        "## Task T1\nfirst\n## Task T2\nsecond\n## Task T3\nthird\n"
    )
    path = tmp_path / "PLAN.md"
    path.write_text(text)
    plan = load_plan_file(path)
    assert list(plan.tasks) == ["T1", "T3"]  # the complete row is not run again
    assert plan.tasks["T3"].deps == ("T1",)
    assert plan.spec_id == "PLAN" and plan.root == tmp_path / "PLAN.cpo"
    assert set_status(text, "T1", "TASK:FAILED").count("TASK:FAILED") == 1  # no status line


def test_extra_columns_any_order_and_case_are_kept() -> None:
    text = (
        "## progress tracking\n"
        "| Owner | STATUS | task | Notes | date | Stream |\n"
        "|:------|:------:|------|-------|------|-------:|\n"
        "| ann | TASK:PENDING | X1 | keep `a \\| b` | | s1 |\n"
        "#### Task X1 — deep heading\n**Status:** TASK:PENDING\nbody\n"
    )
    doc = parse_plan(text)
    assert doc.rows[0].values == {
        "task": "X1",
        "stream": "s1",
        "status": "TASK:PENDING",
        "date": "",
    }
    assert "X1" in doc.sections  # any heading level, `**Status:**` form too
    new = set_status(text, "X1", "TASK:COMPLETE", "2026-02-03")
    assert "| ann | TASK:COMPLETE | X1 | keep `a \\| b` | 2026-02-03 | s1 |\n" in new
    assert "**Status:** TASK:COMPLETE\n" in new


def test_crlf_unicode_and_a_padded_status_cell_change_only_their_bytes() -> None:
    text = (
        "## Progress Tracking\r\n"
        "| Task | Name          | Status            | Date       |   \r\n"
        "|------|---------------|-------------------|------------|\r\n"
        "| Ü1   | Größe ändern  |   TASK:PENDING    |            |   \r\n"
        "| Ü2   | 日本語         | TASK:PENDING      |            |\r\n"
        "\r\n"
        "## Task Ü1: Größe\r\n**Status**:   TASK:PENDING  \r\nx\r\n"
        "## Task Ü2\r\n**Status**: TASK:PENDING\r\n"
    )
    new = set_status(text, "Ü1", "TASK:COMPLETE", "2026-02-03")
    assert new == text.replace(
        "|   TASK:PENDING    |            |   \r\n", "|   TASK:COMPLETE   | 2026-02-03 |   \r\n"
    ).replace("**Status**:   TASK:PENDING  \r\n", "**Status**:   TASK:COMPLETE  \r\n")


def test_headings_and_tables_inside_code_fences_are_not_tasks() -> None:
    text = ISSUE_PLAN + "```\n## Task Z9\n| Task | Status |\n```\n"
    doc = parse_plan(text)
    assert "Z9" not in doc.sections
    assert check_plan(doc, "PLAN.md") == []


def test_validate_lists_every_problem_with_its_line() -> None:
    text = (
        "## Progress Tracking\n"
        "| Task | Stream | Status | Depends |\n|---|---|---|---|\n"
        "| A | s | TASK:PENDING | C |\n"  # line 4
        "| A | t | TASK:DONE | |\n"  # line 5
        "| B | s | TASK:PENDING | Aa |\n"  # line 6
        "| C | t | TASK:PENDING | B |\n"  # line 7
        "## Task A\n## Task B\n## Task C\n## Task D\n"
    )
    problems = [str(p) for p in check_plan(parse_plan(text), "PLAN.md")]
    assert "PLAN.md: line 5: task A is already in the table (line 4)" in problems
    assert any(p.startswith("PLAN.md: line 5: A: unknown status 'TASK:DONE'") for p in problems)
    assert "PLAN.md: line 6: B depends on 'Aa', which is not a task of the table" in problems
    assert "PLAN.md: line 11: section of task D has no row in the table" in problems
    assert any(p.startswith("PLAN.md: line 4: dependency cycle:") for p in problems)
    missing = check_plan(parse_plan("# nothing\n"), "PLAN.md")
    assert len(missing) == 1 and "no Progress Tracking table" in str(missing[0])
    no_section = check_plan(parse_plan(ISSUE_PLAN.split("## Task F4")[0]), "PLAN.md")
    assert [str(p) for p in no_section] == [
        "PLAN.md: line 8: F4 has no section: add a heading '## Task F4'",
        "PLAN.md: line 9: R2 has no section: add a heading '## Task R2'",
    ]


def test_load_refuses_a_plan_with_problems(tmp_path: Path) -> None:
    path = tmp_path / "PLAN.md"
    path.write_text(ISSUE_PLAN.replace("| F4   | Jetson |", "| F3   | Jetson |"))
    with pytest.raises(PlanError) as exc:
        load_plan_file(path)
    assert any("already in the table" in line for line in exc.value.lines())


def test_a_plan_edited_by_hand_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "PLAN.md"
    path.write_text(ISSUE_PLAN)
    writer = PlanWriter(path)
    assert writer.set("F3", "TASK:IN_PROGRESS")
    edited = path.read_text().replace("build it", "build it twice")
    path.write_text(edited)
    assert not writer.set("F3", "TASK:COMPLETE", dated=True)
    assert path.read_text() == edited
    assert writer.edited is not None and "edited while cpo was running" in writer.edited.message
    assert not writer.set("F4", "TASK:COMPLETE")  # and it stays stopped


def test_parallel_writers_lose_no_update(tmp_path: Path) -> None:
    rows = "".join(f"| T{i} | s{i} | TASK:PENDING | |\n" for i in range(20))
    sections = "".join(f"## Task T{i}\n**Status**: TASK:PENDING\n" for i in range(20))
    path = tmp_path / "PLAN.md"
    path.write_text("| Task | Stream | Status | Date |\n|--|--|--|--|\n" + rows + sections)
    writer = PlanWriter(path)
    threads = [
        threading.Thread(target=writer.set, args=(f"T{i}", "TASK:COMPLETE"), kwargs={"dated": True})
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in parse_plan(path.read_text()).rows} == {"TASK:COMPLETE"}


# -- random plans, random completion orders ---------------------------------------------------

_ID = st.from_regex(r"[A-Z][0-9]{1,2}", fullmatch=True)
_PAD = st.sampled_from(["", " ", "  ", "   "])
_WORDS = st.sampled_from(["Build", "Größe", "日本", "x", "a long task name", ""])


@st.composite
def plans(draw: st.DrawFn) -> tuple[str, list[str]]:
    ids = draw(st.lists(_ID, min_size=1, max_size=8, unique=True))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    stream_col = draw(st.booleans())
    head = ["Task", "Name", "Status", "Date"] + (["Stream"] if stream_col else [])
    head = draw(st.permutations(head)) + draw(st.sampled_from([[], ["Owner"]]))

    def cell(col: str, tid: str) -> str:
        value = {
            "Task": tid,
            "Name": draw(_WORDS),
            "Status": draw(st.sampled_from(["TASK:PENDING", "TASK:BLOCKED"])),
            "Date": "",
            "Stream": draw(st.sampled_from(["a", "b", ""])),
            "Owner": draw(_WORDS),
        }[col]
        return draw(_PAD) + value + draw(_PAD)

    lines = ["# Plan", "", "## Progress Tracking", ""]
    lines.append("| " + " | ".join(head) + " |" + draw(_PAD))
    lines.append("|" + "|".join("---" for _ in head) + "|")
    lines += ["|" + "|".join(cell(c, t) for c in head) + "|" + draw(_PAD) for t in ids]
    for tid in ids:
        level = "#" * draw(st.integers(2, 4))
        lines += ["", f"{level} Task {tid}: {draw(_WORDS)}"]
        if draw(st.booleans()):
            lines.append(f"**Status**:{draw(_PAD)}TASK:PENDING{draw(_PAD)}")
        lines.append(draw(_WORDS))
    return eol.join(lines) + eol, ids


@given(plans(), st.data())
@settings(max_examples=60, deadline=None)
def test_random_completion_orders_change_exactly_the_expected_cells(
    plan: tuple[str, list[str]], data: st.DataObject
) -> None:
    text, ids = plan
    original = parse_plan(text)
    order = data.draw(st.permutations(ids))
    outcome = {t: data.draw(st.sampled_from(["TASK:COMPLETE", "TASK:FAILED"])) for t in ids}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "PLAN.md"
        path.write_bytes(text.encode("utf-8"))
        writer = PlanWriter(path, today=date(2026, 3, 4))
        for tid in order:
            assert writer.set(tid, "TASK:IN_PROGRESS")
        for tid in order:
            assert writer.set(tid, outcome[tid], dated=outcome[tid] == "TASK:COMPLETE")
        new = path.read_bytes().decode("utf-8")
    assert without_statuses(new) == without_statuses(text)
    doc = parse_plan(new)
    for row, before in zip(doc.rows, original.rows, strict=True):
        assert row.status == outcome[row.task_id]
        assert row.values["date"] == (
            "2026-03-04" if outcome[row.task_id] == "TASK:COMPLETE" else ""
        )
        kept = [c.text for i, c in enumerate(row.cells) if i not in _written(doc)]
        assert kept == [c.text for i, c in enumerate(before.cells) if i not in _written(doc)]
    for tid, section in doc.sections.items():
        if section.status_line is not None:
            assert f"TASK:{outcome[tid].split(':')[1]}" in doc.lines[section.status_line]


def _written(doc: PlanDoc) -> set[int]:
    return {doc.columns[k] for k in ("status", "date")}


# -- through the command line -----------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_init_plan_writes_a_sample_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "PLAN.md"
    code, out, _ = _cli(capsys, "init", "--plan", str(path))
    assert code == 0 and path.read_text() == SAMPLE_PLAN
    code, out, err = _cli(capsys, "validate", str(path))
    assert code == 0, err
    assert "4 tasks" in out
    doc = parse_plan(SAMPLE_PLAN)
    assert {r.stream for r in doc.rows} == {"api", "docs"}
    code, _, err = _cli(capsys, "init", str(tmp_path / "dir"))
    assert code == 2 and "--tech-spec-id and --name" in err


def test_validate_a_plan_file_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "PLAN.md"
    path.write_text(ISSUE_PLAN.replace("| F4   | Jetson |", "| F3   | Jetson |"))
    code, _, err = _cli(capsys, "validate", str(path))
    assert code == 1
    assert "PLAN.md: line 8: task F3 is already in the table (line 7)" in err
    assert "PLAN.md: line 15: section of task F4 has no row in the table" in err
    assert "Traceback" not in err


def test_task_overview_and_tasks_headings_are_not_task_sections() -> None:
    text = ISSUE_PLAN.replace(
        "## Task F3: Build QEMU amd64\n",
        "## Task overview\nF3 and F4 build QEMU.\n## Tasks\n### Task List\n"
        "## Task F3: Build QEMU amd64\n",
    ).replace("build it\n", "build it\n### Task notes\nstill F4's\n")
    doc = parse_plan(text)
    assert set(doc.sections) == {"F3", "F4", "R2"}
    assert check_plan(doc, "PLAN.md") == []
    assert "still F4's" in doc.prompt("F4")  # a `Task notes` heading does not end F4
    # An id the table does not have still counts when it looks like one: it is reported.
    problems = check_plan(parse_plan(text + "## Task Z9\n## Task QA\n"), "PLAN.md")
    assert [p.message for p in problems] == [
        "section of task Z9 has no row in the table",
        "section of task QA has no row in the table",
    ]


def test_frontmatter_validation_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "PLAN.md"
    # A YAML comment in the frontmatter is not a Markdown heading.
    path.write_text("---\n# Task X1\nvalidation: make test\n---\n" + ISSUE_PLAN)
    plan = load_plan_file(path)
    assert [(s.kind, s.source) for s in plan.waves[0].validation] == [("shell", "make test")]
    assert load_plan_file(path, "exit 0").waves[0].validation[0].source == "exit 0"
    path.write_text("---\nvalidation: [make, test]\n---\n" + ISSUE_PLAN)
    with pytest.raises(PlanError) as info:
        load_plan_file(path)
    assert [str(p) for p in info.value.problems] == [
        "PLAN.md: validation: must be a string (one shell command, or Python source "
        "starting with 'from' or 'import'), not a list"
    ]


def test_streams_get_branch_and_folder_names_and_depends_may_name_a_later_row(
    tmp_path: Path,
) -> None:
    text = (
        "## Progress Tracking\n| Task | Stream | Status | Depends |\n|---|---|---|---|\n"
        "| A1 | Jetson Nano | TASK:PENDING | B1 |\n| B1 | amd | TASK:PENDING | |\n"
        "## Task A1\n## Task B1\n"
    )
    path = tmp_path / "My Plan.md"
    path.write_text(text)
    plan = load_plan_file(path)
    assert list(plan.tasks) == ["B1", "A1"]  # what a task waits for comes first
    a1 = plan.tasks["A1"]
    assert a1.branch.startswith("stream/My-Plan/Jetson-Nano-") and a1.deps == ("B1",)
    assert a1.worktree == "stream-" + a1.branch.rsplit("/", 1)[1]
    assert plan.tasks["B1"].branch == "stream/My-Plan/amd"

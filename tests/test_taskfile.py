"""Task files read through python-frontmatter: lines kept in errors, aliases bounded."""

from __future__ import annotations

from pathlib import Path

from plandirs import write_dir
from runkit import cpo

from cpo.errors import Problem
from cpo.plan.taskfile import MAX_VALUES, RawTaskFile, expands_past, parse_task_file


def parsed(text: str) -> RawTaskFile:
    result = parse_task_file("tasks/a.md", text)
    assert isinstance(result, RawTaskFile), result
    return result


def problem(text: str) -> str:
    result = parse_task_file("tasks/a.md", text)
    assert isinstance(result, Problem), result
    return str(result)


def test_frontmatter_and_body() -> None:
    raw = parsed("---\nid: t1\ndeps: [a, b]\nwave: 2\n---\n# Title\n\nbody\n---\nmore\n")
    assert raw.meta == {"id": "t1", "deps": ["a", "b"], "wave": 2}
    assert raw.body == "# Title\n\nbody\n---\nmore\n"


def test_blank_lines_before_the_frontmatter_and_crlf() -> None:
    raw = parsed("\n\n---\r\nid: t1\r\n---\r\nbody\r\n")
    assert raw.meta == {"id": "t1"} and raw.body == "body\r\n"


def test_yaml_error_line_counts_from_the_top_of_the_file() -> None:
    assert "line 5, column 7: invalid YAML" in problem("\n---\nid: t1\nx: 1\nbad: a: b\n---\nb\n")
    assert "line 3, column 7: invalid YAML" in problem("---\nid: t1\nwave: : :\n---\nbody\n")
    # an unclosed bracket is found where the frontmatter ends: the closing line
    assert "line 4, column 1: invalid YAML" in problem("---\nid: t1\nbad: [\n---\nb\n")


def test_missing_or_unclosed_frontmatter() -> None:
    assert "no YAML frontmatter" in problem("# just markdown\n")
    assert "line 2: frontmatter is not closed" in problem("\n---\nid: t1\n")


def test_frontmatter_must_be_a_mapping_with_string_keys() -> None:
    assert "not a list" in problem("---\n- a\n- b\n---\nbody\n")
    assert "keys must be strings" in problem("---\n1: a\n---\nbody\n")
    assert parsed("---\n---\nbody\n").meta == {}


def test_yaml_is_read_safely() -> None:
    assert "invalid YAML" in problem("---\nid: !!python/object:os.system x\n---\nb\n")


def test_a_few_aliases_are_fine() -> None:
    raw = parsed("---\nid: t1\nbase: &deps [a, b]\ndeps: *deps\n---\nbody\n")
    assert raw.meta["deps"] == ["a", "b"]


def bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "---\nid: t1\n" + "\n".join(lines) + f"\ndeps: *a{levels}\n---\nbody\n"


def test_alias_bomb_is_refused_in_one_line() -> None:
    msg = problem(bomb())
    assert msg.startswith("tasks/a.md: frontmatter: YAML aliases (*name) expand to more than")


def test_recursive_alias_is_refused() -> None:
    assert "YAML aliases" in problem("---\nid: t1\ndeps: &a [*a]\n---\nbody\n")


def test_expands_past_counts_shared_values_each_time() -> None:
    shared = list(range(10))
    assert not expands_past({"a": shared}, 13)  # the dict, its key, the list, 10 items
    assert expands_past({"a": shared, "b": shared}, 13)
    assert not expands_past([[1]] * (MAX_VALUES // 3), MAX_VALUES)


def test_alias_bomb_in_a_real_validate_finishes(tmp_path: Path) -> None:
    """Before the bound, `cpo validate` ran for minutes (and ~1 GB) quoting the bomb."""
    root = write_dir(tmp_path / "p", tasks={"t1.md": bomb()})
    # The timeout only keeps a regression from hanging the suite; nothing here times cpo.
    done = cpo("validate", str(root), cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "tasks/t1.md: frontmatter: YAML aliases" in done.stderr
    assert "Traceback" not in done.stderr

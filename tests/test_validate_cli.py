"""`cpo validate`, `cpo init`, `cpo schema` through the real entry point and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from plandirs import cpo_manifest, write_dir

from cpo.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def cpo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_validate_valid_prints_compact_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cpo(capsys, "validate", str(EXAMPLES / "cpo-style"))
    assert code == 0
    assert "TS-0101 greeting-service (cpo-style manifest): 3 tasks in 2 waves" in out
    assert "wave 2:" in out and "prompt: prompts/task-001.txt" in out
    assert "deps: task-001, task-002" in out and "validation (shell): test -f greet/cli.py" in out
    assert out.rstrip().endswith("valid")


def test_validate_invalid_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dir(
        tmp_path / "p", tasks={"a.md": {"id": "t1", "deps": ["ghost"]}, "b.md": {"id": "bad id"}}
    )
    code, out, err = cpo(capsys, "validate", str(root))
    assert code == 1
    assert "error: tasks/a.md: deps: unknown dependency 'ghost'" in err
    assert "error: tasks/b.md: id: id 'bad id' cannot be a git branch" in err
    assert "invalid: 2 problems" in err
    assert "Traceback" not in err + out


def test_validate_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cpo(capsys, "validate", str(tmp_path / "nope"))
    assert code == 2 and "no such directory" in err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cpo(capsys, "validate", "--json", str(EXAMPLES / "legacy-style"))
    data = json.loads(out)
    assert code == 0 and data["valid"] is True and data["manifest_style"] == "legacy"
    assert [w["tasks"] for w in data["waves"]] == [["task-001"], ["task-002", "task-003"]]
    assert data["tasks"][1]["deps"] == ["task-001"]
    assert data["tasks"][0]["prompt_source"] == "tasks/task-001-model.md (body)"

    root = write_dir(tmp_path / "p", manifest=cpo_manifest([{"id": "t1", "promt_file": "x.txt"}]))
    code, out, _ = cpo(capsys, "validate", "--json", str(root))
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    assert data["problems"][0]["message"].startswith("missing prompt")
    assert data["warnings"][0]["field"] == "waves[0].tasks[0].promt_file"

    code, out, _ = cpo(capsys, "validate", "--json", str(tmp_path / "nope"))
    assert code == 2 and json.loads(out)["valid"] is False


def test_validate_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": {"id": "t1"}},
        prompts={"t1.txt": "=== OBJECTIVE ===\nDo it.\n"},
    )
    code, _, err = cpo(capsys, "validate", str(root))
    assert code == 0 and "warning: prompts/t1.txt" in err and "IMPORTANT RULES" in err
    code, _, err = cpo(capsys, "validate", "--strict", str(root))
    assert code == 1 and "error: prompts/t1.txt" in err


def test_init_scaffolds_a_valid_directory_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "parallel" / "TS-0042-inventory"
    code, out, _ = cpo(capsys, "init", str(root), "-t", "TS-0042", "-n", "inventory")
    assert code == 0 and out.count("created") == 4
    for rel in ("manifest.json", "tasks/task-001-example.md", "prompts/task-001.txt", "README.md"):
        assert (root / rel).is_file()
    code, out, _ = cpo(capsys, "validate", "--strict", str(root))
    assert code == 0, out
    (root / "manifest.json").write_text('{"mine": true}')
    code, out, _ = cpo(capsys, "init", str(root), "-t", "TS-0042", "-n", "inventory")
    assert code == 0 and "kept" in out and "created" not in out
    assert (root / "manifest.json").read_text() == '{"mine": true}'


def test_init_rejects_bad_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cpo(capsys, "init", str(tmp_path / "x"), "-t", "TS 1", "-n", "a")
    assert code == 2 and "--tech-spec-id 'TS 1'" in err
    assert not (tmp_path / "x").exists()


def test_schema_manifest_accepts_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cpo(capsys, "schema", "manifest")
    assert code == 0
    schema = json.loads(out)
    examples = sorted(EXAMPLES.glob("*/manifest.json"))
    assert len(examples) >= 2
    for path in examples:
        jsonschema.validate(json.loads(path.read_text()), schema)
    # the documented shorthand and every duration form (before: the shorthand was refused)
    task = {"id": "task-003", "timeout": "20m", "estimate": 90, "backend": "codex"}
    ok = {"tech_spec_id": "x", "waves": [{"tasks": ["task-001", "task-002", task]}]}
    jsonschema.validate(ok, schema)
    for bad in ({"id": 3}, {"id": "t", "timeout": "-5"}, {"id": "t", "backend": "claud"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"tech_spec_id": "x", "waves": [{"tasks": [bad]}]}, schema)


def test_validate_accepts_the_manifest_file_for_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `cpo validate dir/manifest.json` said only "not a directory"."""
    code, out, _ = cpo(capsys, "validate", str(EXAMPLES / "cpo-style" / "manifest.json"))
    assert code == 0 and "TS-0101 greeting-service" in out
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = cpo(capsys, "validate", str(tmp_path / "notes.txt"))
    assert code == 2 and "notes.txt: not a directory" in err
    assert "give the parallel directory" in err


def test_schema_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cpo(capsys, "schema", "nope")
    assert code == 2 and "unknown schema 'nope'" in err

"""load_plan on real parallel directories: each check, with a message naming the culprit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from plandirs import cpo_manifest, task_md, write_dir
from runkit import cpo, make_spec

from cpo.errors import PlanError, UsageError
from cpo.plan.load import load_plan
from cpo.plan.model import ScopeEntry, ValidationStep
from tests.conftest import git


def problems(root: Path, strict: bool = False) -> list[str]:
    with pytest.raises(PlanError) as info:
        load_plan(root, strict=strict)
    return [str(p) for p in info.value.problems]


def one_problem(root: Path, *needles: str) -> str:
    found = problems(root)
    hits = [p for p in found if all(n in p for n in needles)]
    assert hits, f"no problem mentions {needles}: {found}"
    return hits[0]


# ------------------------------------------------------------------ valid inputs


def test_cpo_style_manifest_with_task_files(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(
            [{"id": "task-001-users", "agent": "django-expert"}, {"id": "task-002"}],
            [{"id": "task-003", "model": "opus", "timeout": 60}],
            max_parallel=2,
        ),
        tasks={
            "task-001-users.md": {"id": "task-001", "component": "users", "wave": 1},
            "task-002.md": {"id": "task-002"},
            "task-003.md": {
                "id": "task-003",
                "deps": ["task-001", "task-002"],
                "max_turns": 5,
                "permission_mode": "acceptEdits",
                "backend": "command",
            },
        },
        prompts={"task-001.txt": "Build users."},
    )
    plan = load_plan(root)
    assert plan.spec_id == "TS-0001" and plan.manifest_style == "cpo"
    assert plan.max_parallel == 2
    assert [(w.number, w.task_ids) for w in plan.waves] == [
        (1, ("task-001", "task-002")),
        (2, ("task-003",)),
    ]
    t1, t3 = plan.tasks["task-001"], plan.tasks["task-003"]
    assert t1.agent == "django-expert" and t1.prompt == "Build users."
    assert t1.prompt_source == "prompts/task-001.txt"
    assert t1.branch == "feature/TS-0001/task-001-users"
    assert t3.deps == ("task-001", "task-002") and t3.wave == 2
    assert (t3.model, t3.timeout, t3.max_turns) == ("opus", 60.0, 5)
    assert (t3.permission_mode, t3.backend) == ("acceptEdits", "command")
    assert t3.prompt_source == "tasks/task-003.md (body)"
    assert t1.content_hash.startswith("h2:") and len(t1.content_hash) == 67


def test_manifest_only_tasks_with_prompt_files(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(
            ["task-001-a"],
            [{"id": "task-002", "deps": ["task-001-a"], "prompt_file": "custom/two.txt"}],
        ),
        prompts={"task-001.txt": "one"},
    )
    (root / "custom").mkdir()
    (root / "custom" / "two.txt").write_text("two")
    plan = load_plan(root)
    assert plan.tasks["task-001-a"].prompt_source == "prompts/task-001.txt"
    assert plan.tasks["task-002"].prompt == "two"
    assert plan.tasks["task-002"].deps == ("task-001-a",)


def test_legacy_manifest_takes_waves_from_frontmatter(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest={
            "version": "1.0.0",
            "tech_spec": {"id": "TS-0042", "name": "inv"},
            "tasks": {"total": 2, "waves": 2, "files": ["tasks/b.md", "tasks/a.md"]},
            "metadata": {"max_parallel": 4},
        },
        tasks={
            "b.md": {"id": "task-b", "wave": 1},
            "a.md": {"id": "task-a", "wave": 2, "depends_on": ["task-b"]},
        },
    )
    plan = load_plan(root)
    assert plan.manifest_style == "legacy" and plan.spec_id == "TS-0042" and plan.name == "inv"
    assert plan.max_parallel == 4
    assert [w.task_ids for w in plan.waves] == [("task-b",), ("task-a",)]


def test_waves_computed_from_deps_without_manifest(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "TS-0009-x",
        tasks={
            "c.md": {"id": "task-c", "deps": ["task-a", "task-b"]},
            "b.md": {"id": "task-b", "deps": ["task-a"]},
            "a.md": {"id": "task-a"},
            "d.md": {"id": "task-d"},
        },
    )
    plan = load_plan(root)
    assert plan.manifest_style == "none" and plan.spec_id == "TS-0009-x"
    assert [(w.number, w.task_ids) for w in plan.waves] == [
        (1, ("task-a", "task-d")),
        (2, ("task-b",)),
        (3, ("task-c",)),
    ]
    assert any("inferred" in str(w) for w in plan.warnings)


def test_validation_kinds(tmp_path: Path) -> None:
    m = cpo_manifest(["t1"], ["t2"], ["t3"])
    m["waves"][0]["validation"] = "from app import x; print('ok')"
    m["waves"][1]["validation"] = ["pytest -q", "import app", {"shell": "make"}]
    m["waves"][2]["validation"] = {"python": "print(1)"}
    root = write_dir(tmp_path / "p", manifest=m, prompts={f"t{i}.txt": "x" for i in (1, 2, 3)})
    waves = load_plan(root).waves
    assert waves[0].validation == (ValidationStep("python", "from app import x; print('ok')"),)
    assert waves[1].validation == (
        ValidationStep("shell", "pytest -q"),
        ValidationStep("python", "import app"),
        ValidationStep("shell", "make"),
    )
    assert waves[2].validation == (ValidationStep("python", "print(1)"),)


def test_bad_validation_shape(tmp_path: Path) -> None:
    m = cpo_manifest(["t1"])
    m["waves"][0]["validation"] = {"ruby": "x"}
    root = write_dir(tmp_path / "p", manifest=m, prompts={"t1.txt": "x"})
    one_problem(root, "manifest.json: waves[0].validation", "{'ruby': 'x'}")


def test_python_validation_that_does_not_compile(tmp_path: Path) -> None:
    """Before: validate passed it; the run failed it after a whole wave of agent work."""
    m = cpo_manifest(["t1"], ["t2"])
    m["waves"][0]["validation"] = "from app import x; print('ok'"
    m["waves"][1]["validation"] = ["echo shell (is not compiled", {"python": "def f(:\n  pass"}]
    root = write_dir(tmp_path / "p", manifest=m, prompts={"t1.txt": "x", "t2.txt": "y"})
    found = problems(root)
    assert [p.split(" Python: ")[0] for p in found] == [
        "manifest.json: waves[0].validation: validation command 1 is not valid",
        "manifest.json: waves[1].validation: validation command 2 is not valid",
    ]
    assert all("Python: line 1: " in p for p in found)


@pytest.mark.parametrize("where", ["frontmatter", "manifest"])
def test_unknown_backend(tmp_path: Path, where: str) -> None:
    """Before: validate passed it and `cpo run` then refused it."""
    entry: dict[str, Any] = {"id": "t1"}
    meta: dict[str, Any] = {"id": "t1"}
    (meta if where == "frontmatter" else entry)["backend"] = "claud"
    root = write_dir(tmp_path / "p", manifest=cpo_manifest([entry]), tasks={"t1.md": meta})
    file = (
        "tasks/t1.md: backend"
        if where == "frontmatter"
        else "manifest.json: waves[0].tasks[0].backend"
    )
    msg = one_problem(root, file)
    assert msg.endswith(
        "unknown backend 'claud'; did you mean 'claude'? (choose one of: claude, command, codex, "
        "gemini)"
    )


def test_extra_keys_are_accepted(tmp_path: Path) -> None:
    m = cpo_manifest(
        [{"id": "t1", "estimated_minutes": 30, "owner": {"x": [1]}}],
        created_by="other-tool",
        metadata={"critical_path": ["t1"], "x": 1},
    )
    m["waves"][0]["parallel"] = True
    root = write_dir(
        tmp_path / "p",
        manifest=m,
        prompts={"t1.txt": "x"},
        tasks={"t1.md": {"id": "t1", "priority": "high", "estimate": 3}},
    )
    plan = load_plan(root)
    assert list(plan.tasks) == ["t1"] and plan.warnings == ()


def test_misspelt_key_gets_did_you_mean(tmp_path: Path) -> None:
    m = cpo_manifest([{"id": "t1", "promt_file": "prompts/t1.txt"}], max_paralel=3)
    root = write_dir(
        tmp_path / "p",
        manifest=m,
        prompts={"t1.txt": "x"},
        tasks={"t1.md": {"id": "t1", "dependencies": [], "depends_om": []}},
    )
    warnings = [str(w) for w in load_plan(root).warnings]
    assert (
        "manifest.json: max_paralel: unknown key 'max_paralel'; did you mean "
        "'max_parallel'?" in warnings
    )
    assert any("waves[0].tasks[0].promt_file" in w and "'prompt_file'" in w for w in warnings)
    assert any("tasks/t1.md: depends_om" in w and "'depends_on'" in w for w in warnings)


def test_content_hash_follows_what_the_agent_is_asked(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "t1"}], ["t2"]),
        tasks={"t1.md": {"id": "t1"}, "t2.md": {"id": "t2", "deps": ["t1"]}},
    )
    h0 = {t.id: t.content_hash for t in load_plan(root).tasks.values()}
    (root / "tasks" / "t1.md").write_text(task_md({"id": "t1"}, "# other body\n"))
    h1 = {t.id: t.content_hash for t in load_plan(root).tasks.values()}
    assert h1["t1"] != h0["t1"] and h1["t2"] == h0["t2"]
    write_dir(root, manifest=cpo_manifest([{"id": "t1", "model": "opus"}], ["t2"]))
    h2 = {t.id: t.content_hash for t in load_plan(root).tasks.values()}
    assert h2["t1"] != h1["t1"]
    write_dir(root, prompts={"t2.txt": "new prompt"})
    h3 = {t.id: t.content_hash for t in load_plan(root).tasks.values()}
    assert h3["t2"] != h2["t2"]


def test_content_hash_ignores_keys_that_only_schedule(tmp_path: Path) -> None:
    """Before: editing `estimate` (launch order only) made --resume redo merged work."""
    body = "# t1\n\nDo it.\n"
    root = write_dir(tmp_path / "p", tasks={"t1.md": task_md({"id": "t1"}, body)})
    before = load_plan(root).tasks["t1"].content_hash
    meta = {"id": "t1", "estimate": "20m", "timeout": "2h", "wave": 3, "skills": ["x"], "note": 1}
    write_dir(root, tasks={"t1.md": task_md(meta, body)})
    assert load_plan(root).tasks["t1"].content_hash == before
    for key, value in [("agent", "reviewer"), ("backend", "codex"), ("max_turns", 9)]:
        write_dir(root, tasks={"t1.md": task_md({**meta, key: value}, body)})
        assert load_plan(root).tasks["t1"].content_hash != before, key


def test_resume_does_not_rerun_a_merged_task_whose_estimate_changed(git_repo: Path) -> None:
    calls = git_repo.parent / "calls"
    agent = (
        f'echo $CPO_TASK_ID >> "{calls}" && echo x > "$CPO_TASK_ID.txt" && git add -A && '
        "git commit -qm work && touch .claude-task-complete"
    )
    run = ("--backend", "command", "--agent-command", agent)
    root = make_spec(git_repo, [{"t1": "Do t1."}], estimates={"t1": "5m"})
    assert cpo("run", str(root), *run, cwd=git_repo).returncode == 0
    task_file = root / "tasks" / "t1.md"
    task_file.write_text(task_file.read_text().replace("estimate: 5m", "estimate: 20m"))
    git(git_repo, "commit", "-qam", "t1 takes longer than thought")
    done = cpo("run", str(root), "--resume", *run, cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed since it ran" not in done.stdout + done.stderr
    assert calls.read_text().split() == ["t1"]


def test_scope_entries_are_parsed(tmp_path: Path) -> None:
    body = "# t\n## Scope\nCREATE: a.py, b/*.py\nMODIFY: c.py::C.m\nBOUNDARY: d/\n## Other\n"
    root = write_dir(tmp_path / "p", tasks={"t.md": task_md({"id": "t1"}, body)})
    assert load_plan(root).tasks["t1"].scope == (
        ScopeEntry("CREATE", "a.py"),
        ScopeEntry("CREATE", "b/*.py"),
        ScopeEntry("MODIFY", "c.py", "C.m"),
        ScopeEntry("BOUNDARY", "d/"),
    )


# ------------------------------------------------------------------ one test per check


def test_unknown_dependency(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": {"id": "task-001"}, "b.md": {"id": "task-002", "deps": ["task-010"]}},
    )
    msg = one_problem(root, "tasks/b.md: deps", "'task-010'")
    assert "unknown" in msg and "did you mean 'task-001'" in msg


def test_unknown_dependency_in_manifest(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest([{"id": "t1", "deps": ["nope"]}]),
        prompts={"t1.txt": "x"},
    )
    one_problem(root, "manifest.json: waves[0].tasks[0].deps", "unknown", "'nope'")


def test_dependency_cycle_names_every_task(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={
            "a.md": {"id": "alpha", "deps": ["gamma"]},
            "b.md": {"id": "beta", "deps": ["alpha"]},
            "c.md": {"id": "gamma", "deps": ["beta"]},
            "d.md": {"id": "delta", "deps": ["delta"]},
        },
    )
    msg = one_problem(root, "cycle")
    for name in ("alpha", "beta", "gamma"):
        assert name in msg
    one_problem(root, "tasks/d.md: deps", "delta depends on itself")


def test_wave_not_after_dependency(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": {"id": "t1", "wave": 2}, "b.md": {"id": "t2", "wave": 2, "deps": ["t1"]}},
    )
    one_problem(root, "tasks/b.md: wave", "t2 is in wave 2", "t1 in wave 2")


def test_wave_not_after_dependency_in_manifest(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(["t1", {"id": "t2", "deps": ["t1"]}]),
        prompts={"t1.txt": "x", "t2.txt": "y"},
    )
    one_problem(root, "manifest.json: waves[0].tasks[1]", "t2 is in wave 1", "t1 in wave 1")


def test_duplicate_ids_in_task_files(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1"}, "b.md": {"id": "t1"}})
    one_problem(root, "tasks/b.md: id", "duplicate id 't1'", "tasks/a.md")


def test_duplicate_ids_in_manifest(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", manifest=cpo_manifest(["t1"], ["t1"]), prompts={"t1.txt": "x"})
    one_problem(
        root, "manifest.json: waves[1].tasks[0].id", "duplicate id 't1'", "waves[0].tasks[0]"
    )


def test_blocks_contradicting_deps(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p", tasks={"a.md": {"id": "t1", "blocks": ["t2"]}, "b.md": {"id": "t2"}}
    )
    one_problem(root, "tasks/a.md: blocks", "t1 blocks t2", "t2 does not depend on t1")


def test_blocks_agreeing_with_deps_is_fine(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": {"id": "t1", "blocks": ["t2"]}, "b.md": {"id": "t2", "deps": ["t1"]}},
    )
    assert load_plan(root).tasks["t2"].wave == 2


def test_manifest_and_frontmatter_disagree_on_wave(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p", manifest=cpo_manifest(["t1"]), tasks={"a.md": {"id": "t1", "wave": 3}}
    )
    one_problem(root, "manifest.json: waves[0].tasks[0]", "wave 1", "tasks/a.md says wave: 3")


def test_manifest_and_frontmatter_disagree_on_option_and_deps(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(["t0"], [{"id": "t1", "model": "opus", "deps": []}]),
        tasks={"z.md": {"id": "t0"}, "a.md": {"id": "t1", "model": "haiku", "deps": ["t0"]}},
    )
    one_problem(root, "waves[1].tasks[0].model", "'opus'", "tasks/a.md: model: 'haiku'")
    one_problem(root, "waves[1].tasks[0].deps", "tasks/a.md: deps: ['t0']")


def test_task_file_missing_from_manifest_waves(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest=cpo_manifest(["t1"]),
        tasks={"a.md": {"id": "t1"}, "b.md": {"id": "t2"}},
    )
    one_problem(root, "tasks/b.md: id", "'t2' is in no wave")


def test_missing_prompt(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", manifest=cpo_manifest(["task-007-x"]))
    one_problem(root, "missing prompt", "task-007-x", "prompts/task-007.txt")


def test_missing_prompt_file(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1", "prompt_file": "p/none.txt"}})
    one_problem(root, "tasks/a.md: prompt_file", "missing prompt", "p/none.txt", "not found")


def test_empty_body_and_no_prompt(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": task_md({"id": "t1"}, "\n  \n")})
    one_problem(root, "tasks/a.md", "missing prompt", "body is empty")


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/passwd", "prompts/../../x.txt"])
def test_prompt_path_escaping(tmp_path: Path, bad: str) -> None:
    root = write_dir(tmp_path / "p", manifest=cpo_manifest([{"id": "t1", "prompt_file": bad}]))
    msg = one_problem(root, "manifest.json: waves[0].tasks[0].prompt_file", repr(bad))
    assert "escapes" in msg or "absolute" in msg


def test_symlink_escaping(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1"}})
    (root / "prompts").mkdir()
    os.symlink(tmp_path / "secret.txt", root / "prompts" / "t1.txt")
    one_problem(root, "prompts/t1.txt", "escapes the parallel directory through a symlink")


def test_task_file_and_contract_paths_escaping(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest={"tech_spec": {"id": "TS-1"}, "tasks": {"files": ["tasks/a.md", "../b.md"]}},
        tasks={"a.md": {"id": "t1", "contracts": ["../../c.py"]}},
    )
    one_problem(root, "manifest.json: tasks.files[1]", "'../b.md' escapes")
    one_problem(root, "tasks/a.md: contracts[0]", "'../../c.py' escapes")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("task 1", "' '"),
        ("a..b", "'..'"),
        ("-x", "'-'"),
        (".x", "'.'"),
        ("x.lock", ".lock"),
        ("a~b", "'~'"),
        ("a^b", "'^'"),
        ("a:b", "':'"),
        ("a?b", "'?'"),
        ("a*b", "'*'"),
        ("a[b", "'['"),
        ("a\\b", "'\\\\'"),
        ("a/b", "'/'"),
        ("a\tb", "'\\t'"),
        ("a@{b", "@{"),
        ("x.", "ends with '.'"),
    ],
)
def test_bad_ids(tmp_path: Path, bad: str, why: str) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": bad}})
    msg = one_problem(root, "tasks/a.md: id", "cannot be a git branch or folder name")
    assert repr(bad) in msg and why in msg


def test_bad_component_breaks_branch_name(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1", "component": "my comp"}})
    one_problem(root, "tasks/a.md: component", "feature/t1-my comp", "' '")


def test_bad_spec_id(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        manifest={"tech_spec_id": "TS 1", "waves": [{"tasks": ["t1"]}]},
        prompts={"t1.txt": "x"},
    )
    one_problem(root, "manifest.json: tech_spec_id", "integration/TS 1")


def test_scope_conflict_in_plan(tmp_path: Path) -> None:
    body = "# t\n## Scope\nCREATE: app/models.py\n"
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": task_md({"id": "t1"}, body), "b.md": task_md({"id": "t2"}, body)},
    )
    one_problem(root, "tasks/b.md: Scope", "CREATE app/models.py", "t1 (tasks/a.md)")


def test_malformed_json_has_line_and_column(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", manifest='{\n  "tech_spec_id": "TS-1",\n  "waves": [,]\n}')
    one_problem(root, "manifest.json", "line 3, column 13", "invalid JSON")


def test_malformed_yaml_has_line_and_column(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": "---\nid: t1\ndeps: [a, b\n---\nbody\n"})
    msg = one_problem(root, "tasks/a.md", "invalid YAML")
    assert "line 4" in msg and "column" in msg


def test_yaml_wrong_types_named(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", tasks={"a.md": "---\nid: 12\nwave: first\n---\nbody\n"})
    one_problem(root, "tasks/a.md: id", "valid string", "12")
    one_problem(root, "tasks/a.md: wave", "'first'")


def test_missing_frontmatter_and_required_keys(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": "# no frontmatter\n", "b.md": "---\ncomponent: x\n---\nbody\n"},
    )
    one_problem(root, "tasks/a.md", "no YAML frontmatter")
    one_problem(root, "tasks/b.md: id", "required key is missing")


def test_manifest_missing_required_and_not_object(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "p", manifest={"waves": []})
    one_problem(root, "manifest.json: tech_spec_id", "required key is missing")
    write_dir(root, manifest="[1, 2]")
    one_problem(root, "manifest.json", "must be a JSON object")


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={
            "a.md": {"id": "t1", "deps": ["nope"]},
            "b.md": {"id": "bad id"},
            "c.md": "---\nid: [\n---\n",
        },
    )
    found = problems(root)
    assert any("nope" in p for p in found)
    assert any("'bad id'" in p for p in found)
    assert any("tasks/c.md" in p and "invalid YAML" in p for p in found)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        load_plan(tmp_path / "nope")


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no manifest\.json and no tasks/\*\.md"):
        load_plan(tmp_path / "empty")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        load_plan(tmp_path / "f")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_directory(tmp_path: Path) -> None:
    root = tmp_path / "locked"
    root.mkdir()
    root.chmod(0)
    try:
        with pytest.raises(UsageError, match="cannot be read"):
            load_plan(root)
    finally:
        root.chmod(0o755)


SECTIONS = [
    "CONTEXT",
    "OBJECTIVE",
    "CONTRACTS",
    "FILES TO CREATE",
    "FILES TO MODIFY",
    "DO NOT MODIFY",
    "IMPLEMENTATION REQUIREMENTS",
    "ACCEPTANCE CRITERIA",
    "EXECUTION INSTRUCTIONS",
    "IMPORTANT RULES",
]


def test_missing_prompt_sections_warn_then_fail_when_strict(tmp_path: Path) -> None:
    text = "\n".join(f"=== {s} ===\nx\n" for s in SECTIONS if s != "IMPORTANT RULES")
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1"}}, prompts={"t1.txt": text})
    plan = load_plan(root)
    assert any(
        "prompts/t1.txt" in str(w) and "=== IMPORTANT RULES ===" in str(w) for w in plan.warnings
    )
    found = problems(root, strict=True)
    assert any("prompts/t1.txt" in p and "IMPORTANT RULES" in p for p in found)


def test_complete_prompt_sections_no_warning(tmp_path: Path) -> None:
    text = "\n".join(f"=== {s} ===\nx\n" for s in SECTIONS) + "=== OUTPUT FORMAT (REQUIRED) ===\n"
    root = write_dir(tmp_path / "p", tasks={"a.md": {"id": "t1"}}, prompts={"t1.txt": text})
    assert load_plan(root, strict=True).warnings[1:] == ()


def test_duplicate_wave_numbers(tmp_path: Path) -> None:
    m = cpo_manifest(["t1"], ["t2"])
    m["waves"][1]["number"] = 1
    root = write_dir(tmp_path / "p", manifest=json.dumps(m), prompts={"t1.txt": "x", "t2.txt": "y"})
    one_problem(root, "manifest.json: waves[1].number", "wave 1 appears twice")


def test_unscoped_modify_twice_in_a_wave_on_files(tmp_path: Path) -> None:
    body = "# t\n## Scope\nMODIFY: config/urls.py\n"
    root = write_dir(
        tmp_path / "p",
        tasks={"a.md": task_md({"id": "t1"}, body), "b.md": task_md({"id": "t2"}, body)},
    )
    one_problem(
        root, "tasks/b.md: Scope", "MODIFY config/urls.py conflicts with t1", "wave 1", "whole file"
    )


def test_nested_scoped_modify_on_files(tmp_path: Path) -> None:
    root = write_dir(
        tmp_path / "p",
        tasks={
            "a.md": task_md({"id": "t1"}, "## Scope\nMODIFY: app/views.py::View\n"),
            "b.md": task_md({"id": "t2"}, "## Scope\nMODIFY: app/views.py::View.get\n"),
            "c.md": task_md({"id": "t3", "deps": ["t1"]}, "## Scope\nMODIFY: app/views.py\n"),
        },
    )
    found = problems(root)
    assert len(found) == 1 and "tasks/b.md: Scope" in found[0]
    assert "::View and ::View.get overlap" in found[0]


def test_resume_after_an_upgrade_does_not_rerun_merged_work(git_repo: Path) -> None:
    # A report written by a cpo whose content hash had another recipe (plain sha256 hex).
    calls = git_repo.parent / "calls"
    agent = (
        f'echo $CPO_TASK_ID >> "{calls}" && echo x > "$CPO_TASK_ID.txt" && git add -A && '
        "git commit -qm work && touch .claude-task-complete"
    )
    run = ("--backend", "command", "--agent-command", agent)
    root = make_spec(git_repo, [{"t1": "Do t1."}, {"t2": "Do t2."}])
    assert cpo("run", str(root), "--wave", "1", *run, cwd=git_repo).returncode == 0
    data = json.loads((root / "report.json").read_text())
    data["tasks"]["t1"]["content_hash"] = "ab" * 32
    (root / "report.json").write_text(json.dumps(data))
    done = cpo("run", str(root), "--resume", *run, cwd=git_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls.read_text().split() == ["t1", "t2"]

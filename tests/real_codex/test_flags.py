"""Every flag cpo passes to `codex`, accepted by the real CLI; no model needed.

`codex exec` parses its arguments (clap) and loads its configuration, `-c` overrides
included, before it starts a thread: a run that prints `turn.started` has accepted all of
them. Each run is stopped there (its provider points at a closed port). Usage errors are
run to the end: their exit codes and texts are what cpo's parser reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpo.agents.base import AgentRequest
from cpo.agents.codex import BACKEND, CodexParser
from cpo.agents.modes import APPROVAL_MODES, SANDBOX_MODES
from tests.realcli import CliRun, run_cli, run_until

from .conftest import SPEC, locate

pytestmark = pytest.mark.real_codex

PROTOCOL = 'Write the marker.\nIt holds "JSON" with a \\ backslash and ünïcode.'


def request(repo: Path, **fields: str | None) -> AgentRequest:
    return AgentRequest(
        task_id="task-001", wave=1, prompt="go", worktree=repo, parallel_dir=repo, **fields
    )


def real_argv(codex_bin: str, req: AgentRequest) -> list[str]:
    """What cpo's codex backend runs, with the real binary as argv[0]."""
    return [codex_bin, *BACKEND.argv(req)[1:]]


def outcome(run: CliRun) -> tuple[str | None, str | None]:
    parser = CodexParser()
    for line in run.stdout.splitlines():
        parser.feed(line)
    result = parser.finish(run.returncode, run.stderr)
    return result.error_class, result.error_text


def accepted(run: CliRun) -> bool:
    return any(e.get("type") == "turn.started" for e in run.events)


def test_version_is_the_pinned_one(codex_bin: str) -> None:
    _, version = locate()
    print(f"codex CLI version: {version}")
    assert re.fullmatch(r"codex-cli \d+\.\d+\.\d+\S*", version), version
    assert version.split()[1] == SPEC.pinned


def test_exec_help_lists_every_flag_cpo_uses(
    codex_bin: str, git_repo: Path, offline_env: dict[str, str]
) -> None:
    """cpo's preflight reads `codex exec --help` for the flags of this run's argv."""
    reqs = [
        request(git_repo, model="gpt-x", system_prompt="p", approval_mode=a, sandbox_mode=s)
        for a in APPROVAL_MODES
        for s in SANDBOX_MODES
    ]
    assert BACKEND.preflight(reqs, dict(offline_env, CPO_CODEX_BIN=codex_bin)) == []


@pytest.mark.parametrize(
    ("approval", "sandbox"),
    [(a, "default") for a in APPROVAL_MODES] + [("default", s) for s in SANDBOX_MODES[1:]],
)
def test_every_mode_cpo_maps_is_accepted(
    codex_bin: str, git_repo: Path, offline_env: dict[str, str], approval: str, sandbox: str
) -> None:
    req = request(
        git_repo,
        model="gpt-5.5",
        system_prompt=PROTOCOL,
        approval_mode=approval,
        sandbox_mode=sandbox,
    )
    run = run_until(
        real_argv(codex_bin, req), cwd=git_repo, env=offline_env, line_has="turn.started"
    )
    assert accepted(run), run.describe()
    assert not BACKEND.unsupported(req) or approval == "always"


def test_outside_a_git_repository(
    codex_bin: str, tmp_path: Path, offline_env: dict[str, str]
) -> None:
    """`cpo parallel` may run in any folder: --skip-git-repo-check lets codex start."""
    folder = tmp_path / "plain"
    folder.mkdir()
    run = run_until(
        real_argv(codex_bin, request(folder)), cwd=folder, env=offline_env, line_has="turn.started"
    )
    assert accepted(run), run.describe()
    without = [a for a in real_argv(codex_bin, request(folder)) if a != "--skip-git-repo-check"]
    refused = run_cli(without, cwd=folder, env=offline_env)
    assert refused.returncode == 1 and "--skip-git-repo-check" in refused.stderr


# -- usage errors: exit codes and what cpo makes of them ----------------------------------
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--no-such-flag"], "unexpected argument '--no-such-flag'"),
        # the interactive TUI's approval flag: `codex exec` has none (hence cpo's `-c`)
        (["-a", "never"], "unexpected argument '-a'"),
        # cpo always passes --sandbox: one more (in extra_args) is refused, not an override
        (["--sandbox", "read-only"], "'--sandbox <SANDBOX_MODE>' cannot be used multiple times"),
    ],
)
def test_usage_errors_exit_2_and_are_bad_flags(
    codex_bin: str, git_repo: Path, offline_env: dict[str, str], extra: list[str], says: str
) -> None:
    argv = real_argv(codex_bin, request(git_repo))
    run = run_cli([*argv[:-1], *extra, "-"], cwd=git_repo, env=offline_env)
    assert run.returncode == 2 and says in run.stderr, run.describe()
    assert run.stdout == ""
    error_class, text = outcome(run)
    assert error_class == "bad_flag" and text is not None and says in text


def test_a_sandbox_codex_does_not_know_exits_2(
    codex_bin: str, git_repo: Path, offline_env: dict[str, str]
) -> None:
    argv = real_argv(codex_bin, request(git_repo))
    argv[argv.index("--sandbox") + 1] = "everything"
    run = run_cli(argv, cwd=git_repo, env=offline_env)
    says = "invalid value 'everything' for '--sandbox <SANDBOX_MODE>'"
    assert run.returncode == 2 and says in run.stderr, run.describe()
    assert outcome(run)[0] == "bad_flag"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"sometimes"', "unknown variant `sometimes`"),
        # what cpo passed for approval_mode `always` before codex dropped it
        ('"untrusted"', '"untrusted" is no longer supported'),
    ],
)
def test_a_refused_config_value_exits_1_and_is_a_bad_flag(
    codex_bin: str, git_repo: Path, offline_env: dict[str, str], value: str, says: str
) -> None:
    argv = real_argv(codex_bin, request(git_repo))
    run = run_cli(
        [*argv[:-1], "-c", f"approval_policy={value}", "-"], cwd=git_repo, env=offline_env
    )
    assert run.returncode == 1 and says in run.stderr, run.describe()
    error_class, text = outcome(run)
    assert error_class == "bad_flag" and text is not None and says in text

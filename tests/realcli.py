"""What the real-CLI contract suites share (tests/real_codex, tests/real_gemini).

Finding a pinned CLI (or saying why not, never silently), the session summary line,
running a CLI or `cpo` as a real process, and the check that no agent process is left
behind. The scripted API's plumbing is in tests/realcli_api.py, the `cpo run`/`cpo
parallel` scenarios in tests/realcli_cpo.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import git
from tests.realcli_api import ScriptedApi

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_BIN = REPO_ROOT / ".cpo-tools" / "node_modules" / ".bin"
# A test never waits on a CLI longer than this; a hang is a failure, not a stuck CI.
CLI_TIMEOUT = 90.0


# -- finding the CLI -------------------------------------------------------------------
@dataclass(frozen=True)
class CliSpec:
    """One pinned npm CLI: `name` in .cpo-tools, or the path in `env_var`."""

    name: str  # the executable, e.g. "codex"
    package: str  # the npm package, e.g. "@openai/codex"
    pinned: str  # the version in the suite's VERSION file
    env_var: str  # e.g. CPO_REAL_CODEX
    marker: str  # e.g. real_codex

    def locate(self, env: Mapping[str, str]) -> tuple[str | None, str]:
        """(path, `--version` output) of a working CLI, or (None, why not)."""
        configured = os.environ.get(self.env_var)
        path = Path(configured) if configured else LOCAL_BIN / self.name
        where = (
            f"${self.env_var}"
            if configured
            else f".cpo-tools (run .ci/run or `npm install --prefix .cpo-tools "
            f"{self.package}@{self.pinned}`)"
        )
        if not path.exists():
            return None, f"real {self.name} CLI not found at {path} ({where})"
        try:
            out = subprocess.run(
                [str(path), "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                env=dict(env),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"real {self.name} CLI at {path} does not run: {exc}"
        if out.returncode != 0:
            first = (out.stderr.strip().splitlines() or ["(no stderr)"])[0]
            return (
                None,
                f"real {self.name} CLI at {path} --version exited {out.returncode}: {first}",
            )
        return str(path), out.stdout.strip()

    def status_line(self, found: tuple[str | None, str]) -> str:
        path, info = found
        if path is None:
            return f"{self.marker} suite SKIPPED: {info}"
        note = "" if self.pinned in info.split() else f" (pinned {self.pinned})"
        return f"{self.marker} suite: {self.name} CLI {info}{note} at {path}"


def summary_hooks(
    spec: CliSpec, status: Callable[[], str]
) -> tuple[Callable[..., str], Callable[..., None], Callable[..., None]]:
    """pytest_report_header, pytest_collection_finish and pytest_terminal_summary for a
    suite: its CLI version, or why it was skipped, is printed at the end of every run
    (`pytest -q` shows no header), so a skipped contract suite is never silent."""
    selected = pytest.StashKey[bool]()

    def header(config: pytest.Config) -> str:
        return status()

    def collection_finish(session: pytest.Session) -> None:
        session.config.stash[selected] = any(
            item.get_closest_marker(spec.marker) for item in session.items
        )

    def terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
        if config.stash.get(selected, False):
            terminalreporter.write_sep("-", status())
        else:
            terminalreporter.write_sep(
                "-", f"{spec.marker} suite not selected (`pytest -m {spec.marker}` or .ci/run)"
            )

    return header, collection_finish, terminal_summary


def read_pin(suite_dir: Path, file_name: str) -> str:
    return (suite_dir / file_name).read_text().strip()


# -- processes -----------------------------------------------------------------------------
@dataclass
class CliRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def describe(self) -> str:
        return (
            f"argv: {self.argv}\nexit: {self.returncode}\nstdout (tail): {self.stdout[-3000:]}"
            f"\nstderr (tail): {self.stderr[-2000:]}"
        )


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    events = []
    for line in stdout.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            events.append(data)
    return events


def run_cli(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    prompt: str = "do the task",
    timeout: float = CLI_TIMEOUT,
) -> CliRun:
    """Run a CLI to completion in its own process group; the prompt goes on stdin."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(prompt, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, err = proc.communicate()
        pytest.fail(f"{argv[0]} did not finish in {timeout}s\nstdout: {out[-2000:]}\n{err[-2000:]}")
    return CliRun(argv, proc.returncode, out, err, parse_lines(out))


def run_until(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], line_has: str, prompt: str = "go"
) -> CliRun:
    """Run a CLI until a stdout line contains `line_has` (then kill its group) or it exits:
    for flags that are checked before the CLI ever calls a model."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(prompt)
    proc.stdin.close()
    timer = threading.Timer(CLI_TIMEOUT, kill_group, [proc.pid])
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line_has in line:
                kill_group(proc.pid)
                break
        rest = proc.stdout.read()
        err = proc.stderr.read()
        code = proc.wait()
    finally:
        timer.cancel()
    out = "".join(lines) + rest
    return CliRun(argv, code, out, err, parse_lines(out))


def kill_group(pgid: int, grace: float = 0.3) -> None:
    """SIGTERM to the group, then SIGKILL after `grace` seconds if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(grace)


def leftover_processes(under: Path) -> list[str]:
    """Live processes whose cwd is inside `under` (an agent cpo should have killed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if state != "Z" and (cwd == str(under) or cwd.startswith(f"{under}/")):
            found.append(f"{entry.name} [{cwd}] {cmd[:200]}")
    return found


# -- cpo -------------------------------------------------------------------------------------
def run_cpo(
    *args: str, cwd: Path, env: Mapping[str, str], timeout: float = 240
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`cpo ARGS --json` as a real process; its exit and its JSON summary."""
    proc = subprocess.run(
        [sys.executable, "-m", "cpo", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(
            f"cpo {args[0]} --json printed no JSON (exit {proc.returncode})\n"
            f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
        )
    return proc, summary


def make_spec(
    repo: Path,
    spec_id: str,
    waves: list[dict[str, dict[str, Any]]],
    validation: dict[int, str] | None = None,
    agent: str = "claude",
) -> Path:
    """A cpo parallel dir (README, The parallel directory) committed in `repo`; every task
    prompt carries the `[script:<task id>]` tag of its script. `waves`: per wave, task id ->
    {"body": prompt text, plus frontmatter fields}."""
    root = repo / "parallel" / spec_id
    (root / "tasks").mkdir(parents=True)
    manifest: dict[str, Any] = {"tech_spec_id": spec_id, "name": f"real-{agent}", "waves": []}
    for number, tasks in enumerate(waves, start=1):
        entry: dict[str, Any] = {"number": number, "tasks": [{"id": t} for t in tasks]}
        if validation and number in validation:
            entry["validation"] = validation[number]
        manifest["waves"].append(entry)
        for tid, spec in tasks.items():
            meta = {"id": tid, "wave": number, "deps": [], **spec}
            if agent != "claude":
                meta.setdefault("backend", agent)
            body = meta.pop("body")
            (root / "tasks" / f"{tid}.md").write_text(
                f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n# {tid}\n\n"
                f"## Requirements\n[script:{tid}] {body}\n"
            )
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"spec {spec_id}")
    return root


def tasks_by_id(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in summary["tasks"]}


def report(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "report.json").read_text())
    return data


def describe(proc: subprocess.CompletedProcess[str], api: ScriptedApi) -> str:
    return (
        f"exit {proc.returncode}\nstdout: {proc.stdout[-4000:]}\n"
        f"stderr: {proc.stderr[-3000:]}\nAPI requests:\n{api.debug_log()}"
    )


def on_path(tmp_path: Path, name: str, target: str, env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the real CLI linked as `name` first on PATH (how cpo finds a user's)."""
    bin_dir = tmp_path / f"{name}-bin"
    bin_dir.mkdir()
    (bin_dir / name).symlink_to(target)
    return dict(env, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")


def fresh_repos(tmp_path: Path, *names: str) -> dict[str, Path]:
    """Empty git repositories (for `cpo parallel`'s workdirs)."""
    out = {}
    for name in names:
        d = tmp_path / name
        d.mkdir()
        git(d, "init", "-q", "-b", "main")
        out[name] = d
    return out

"""What reaches a run's logs, report and terminal from a chatty agent: no secret, and no
more than the log cap. End to end: a real `cpo run` with `--backend command`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cpo.proc import MAX_LINE_BYTES
from tests.executorkit import EXECUTORS, executor_flags
from tests.runkit import cpo, make_spec, report
from tests.test_secrets import SHAPED

ENV = {
    "GH_PAT": "0123456789abcdefQWERTYuiop",  # a name that does not say KEY or TOKEN
    "DATABASE_URL": "postgres://app:Db-Passw0rd-4711@db.example.com:5432/app",
    "MY_API_KEY": "Zq8wX1vB7nM3kL5jH9gFdS2aP4oI6uY8",
}
ORDINARY = (
    "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "session 123e4567-e89b-12d3-a456-426614174000",
    "ordinary words: scikit-learn, task-001, feature/TS-0042/task-001",
)
SECRETS = (ENV["GH_PAT"], "Db-Passw0rd-4711", ENV["MY_API_KEY"], *SHAPED.values())

CHATTY_AGENT = f"""
import json, os, sys
env, shaped, ordinary = os.environ, {list(SHAPED.values())!r}, {list(ORDINARY)!r}
limit = {MAX_LINE_BYTES}
if env["CPO_TASK_ID"] == "task-002":
    print("working with " + env["GH_PAT"])
    print("fatal: auth failed for " + shaped[2], file=sys.stderr)
    sys.exit(3)
for line in ordinary:
    print(line)
print("pat", env["GH_PAT"], "url", env["DATABASE_URL"])
for token in shaped:
    print("found a key in a file:", token)
    print("stderr says", token, file=sys.stderr)
# the line limit falls in the middle of a secret, twice
key = env["MY_API_KEY"]
print("a" * (limit - len(key) // 2) + key + " and more")
print("b" * (limit - 8) + " " + shaped[2] + " and more")
with open(".claude-task-complete", "w") as f:
    json.dump({{"task_completed": True, "summary": "used " + shaped[0] + " " + env["GH_PAT"]}}, f)
print("done with " + shaped[1])
"""


def _everything_written(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.parametrize("executor", EXECUTORS)
def test_no_secret_reaches_logs_report_or_terminal(
    executor: str, git_repo: Path, tmp_path: Path
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(CHATTY_AGENT)
    root = make_spec(git_repo, [{"task-001": "talk", "task-002": "fail"}])
    done = cpo(
        "run",
        str(root),
        "--backend",
        "command",
        "--agent-command",
        f"{sys.executable} {agent}",
        *executor_flags(executor, git_repo),
        cwd=git_repo,
        env=ENV,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # task-002 fails on purpose
    tasks = report(root)["tasks"]
    assert tasks["task-001"]["status"] == "completed"
    assert tasks["task-002"]["status"] == "failed"
    written = _everything_written(root)
    shown = done.stdout + done.stderr
    # neither whole, nor either half of a secret cut in two at the line limit
    parts = [part for secret in SECRETS for part in (secret, secret[:12], secret[-12:])]
    assert [p for p in parts if p in written] == [], "in the parallel dir"
    assert [p for p in parts if p in shown] == [], "printed"
    log = (root / "logs" / "task-001.log").read_text()
    assert all(line in log for line in ORDINARY)
    assert "url postgres://app:****@db.example.com:5432/app" in log
    assert "error=" in done.stdout and "****" in done.stdout


def test_a_flood_of_output_stops_at_the_log_cap(git_repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "home" / ".config" / "cpo" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("logs: {max_size: 200kB}\n")
    agent = tmp_path / "agent.py"
    agent.write_text(
        "for i in range(50_000):\n"
        "    print(f'{i:08d} ' + 'lorem ipsum ' * 8)\n"
        "print('the last line')\n"
        "open('.claude-task-complete', 'w').close()\n"
    )
    root = make_spec(git_repo, [{"task-001": "flood"}])
    done = cpo(
        "run",
        str(root),
        "--backend",
        "command",
        "--agent-command",
        f"{sys.executable} {agent}",
        cwd=git_repo,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert report(root)["tasks"]["task-001"]["status"] == "completed"
    log = root / "logs" / "task-001.log"
    raw = root / "logs" / "task-001.jsonl"
    for path in (log, raw):
        assert 200_000 <= path.stat().st_size <= 200_000 * 1.2  # the agent printed ~5 MB
    text = log.read_text()
    assert "[cpo] log cap reached: output past 200000 bytes is not logged" in text
    assert "the last line" in text
    notices = [json.loads(line) for line in raw.read_text().splitlines() if '"cpo"' in line]
    assert notices and notices[0]["message"].startswith("log cap reached")

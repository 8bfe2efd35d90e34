"""Which `@script` directives of its prompt a scripted run follows (cpo.scripted.agent)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# One directive a line: `@script VERB [ARGS]`.
DIRECTIVE = re.compile(r"^\s*@script\s+([\w-]+)[ \t]*(.*?)\s*$", re.MULTILINE)


def directives_for(prompt: str, cwd: Path) -> list[tuple[str, str]]:
    """The (verb, rest) directives this run follows, in order.

    A conflict resolver (started in a worktree in the middle of a merge) follows only
    `resolve VERB ARGS` directives, as `VERB ARGS`; any other run ignores them. The
    resolver's prompt quotes the tasks' prompts, whose own directives are not for it.
    """
    directives: list[tuple[str, str]] = DIRECTIVE.findall(prompt)
    if not any(verb == "resolve" for verb, _ in directives):
        merging = False  # no resolver script: whatever runs, plain directives only
    else:
        probe = ["git", "rev-parse", "-q", "--verify", "MERGE_HEAD"]
        merging = subprocess.run(probe, cwd=cwd, capture_output=True).returncode == 0
    if not merging:
        return [(verb, rest) for verb, rest in directives if verb != "resolve"]
    found = (rest.split(None, 1) for verb, rest in directives if verb == "resolve" and rest)
    return [(words[0], words[1] if len(words) > 1 else "") for words in found]

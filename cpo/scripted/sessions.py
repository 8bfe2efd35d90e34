"""The scripted claude's sessions: kept where the real CLI keeps them, so `--resume` works.

Each run appends its prompt to `<$CLAUDE_CONFIG_DIR or ~/.claude>/projects/<cwd as a
slug>/<session id>.jsonl`; `--resume <id>` goes on in that session (same id) and fails as
Claude Code 2.1.197 does when the project has no such session.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path

from cpo.scripted import messages as msgs
from cpo.scripted.cli import Stop


def _write(line: str) -> None:
    sys.stdout.buffer.write(line.encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def session_file(cwd: Path, session_id: str) -> Path:
    """Where the real CLI keeps a session's transcript: per project (the cwd, every
    character but letters and digits made `-`), under $CLAUDE_CONFIG_DIR or ~/.claude."""
    config = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    return config / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(cwd)) / f"{session_id}.jsonl"


def open_session(cwd: Path, session_id: str, fmt: str, prompt: str, *, resumed: bool) -> None:
    """Record the prompt in the session's transcript; a resumed session must exist there."""
    path = session_file(cwd, session_id)
    if resumed and not path.is_file():
        known = re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", session_id)
        message = (
            f"No conversation found with session ID: {session_id}"
            if known
            else "Error: --resume requires a valid session ID or session title when used with "
            "--print. Usage: claude -p --resume <session-id|title>. Provided value "
            f'"{session_id}" is not a UUID and does not match any session title.'
        )
        sys.stderr.write(message + "\n")
        if fmt != "text":  # not a UUID: the record carries a new session's id
            sid = session_id if known else str(uuid.uuid4())
            _write(json.dumps(msgs.no_conversation_record(sid, message), separators=(",", ":")))
        raise Stop(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "user", "message": {"role": "user", "content": prompt}}))
        fh.write("\n")

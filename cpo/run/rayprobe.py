"""The preflight probe on a Ray worker (`--executor ray`; `cpo.run.raycheck` submits it).

It runs each backend's own preflight here (the CLI on PATH, the root rule for
bypassPermissions...) for the agent settings it is given, checks git, and prints one JSON
line: `{"host": ..., "problems": [...]}`. Project agent files (`.claude/agents/`) are not
checked: they come with the task's checkout, which the probe does not have.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from cpo.agents.base import AgentRequest
from cpo.executors.rayentry import decode_spec
from cpo.run.preflight import backend_problems


def probe(spec: str) -> dict[str, Any]:
    """Worker side: each backend's preflight here, and git."""
    here = Path.cwd()
    requests = []
    for item in decode_spec(spec):
        backend = item.pop("backend")
        item["extra_args"] = tuple(item["extra_args"])
        requests.append((backend, AgentRequest("probe", 1, "", here, here, **item)))
    problems = backend_problems(requests, os.environ)
    if shutil.which("git") is None:
        problems.append("git is not installed (the workers fetch and push the task branches)")
    return {"host": socket.gethostname(), "problems": problems}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])), flush=True)

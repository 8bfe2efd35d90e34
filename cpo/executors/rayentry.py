"""A Ray job's entrypoint: `python -m cpo.executors.rayentry SPEC [--env SUBMISSION_ID]`.

SPEC is the task launch as zlib-compressed, URL-safe base64 JSON (the launch holds no
secret: `cpo.executors.spec`); prompts compress well, so even a long one stays far below
the kernel's limit on one argument. With `--env`, the values of `executors.ray.env` are
taken from the cluster's key-value store (`raysecrets`) into the environment. Then this
process becomes `cpo worker run-task` (exec: same pid, so Ray's `stop_job` signals reach
the worker itself), reading the launch from an unlinked temporary file through
/dev/fd, so nothing is left on the node.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import zlib
from typing import Any


def encode_spec(launch_json: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(launch_json.encode(), 9)).decode()


def decode_spec(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(zlib.decompress(base64.urlsafe_b64decode(text)))
    return data


def entrypoint(python: str, launch_json: str, env_key: str | None) -> str:
    """The job's shell command (Ray runs entrypoints through a shell)."""
    words = [python, "-m", "cpo.executors.rayentry", encode_spec(launch_json)]
    if env_key:
        words += ["--env", env_key]
    return " ".join(words)


def main(argv: list[str]) -> int:
    spec = argv[0]
    if len(argv) == 3 and argv[1] == "--env":
        from cpo.executors import raysecrets

        os.environ.update(raysecrets.take(os.environ["RAY_ADDRESS"], argv[2]))
    launch = json.dumps(decode_spec(spec))
    holder = tempfile.TemporaryFile("w+")
    holder.write(launch)
    holder.flush()
    os.set_inheritable(holder.fileno(), True)
    argv_out = [sys.executable, "-m", "cpo", "worker", "run-task", f"/dev/fd/{holder.fileno()}"]
    sys.stdout.flush()
    os.execv(sys.executable, argv_out)
    return 127  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A Ray job's entrypoint: `python -m cpo.executors.rayentry SPEC [--env SUBMISSION_ID] [--probe]`.

SPEC is the task launch as zlib-compressed, URL-safe base64 JSON (the launch holds no
secret: `cpo.executors.spec`); prompts compress well, so even a long one stays far below
the kernel's limit on one argument. With `--env`, the values of `executors.ray.env` are
taken from the cluster's key-value store (`raysecrets`) into the environment. Then this
process becomes `cpo worker run-task` (exec: same pid, so Ray's `stop_job` signals reach
the worker itself), reading the launch from an unlinked temporary file through
/dev/fd, so nothing is left on the node. With `--probe` it becomes the preflight's probe
(`cpo.run.rayprobe`), with the same variables a task would get.
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


def decode_spec(text: str) -> Any:
    return json.loads(zlib.decompress(base64.urlsafe_b64decode(text)))


def entrypoint(python: str, spec_json: str, env_key: str | None, *, probe: bool = False) -> str:
    """The job's shell command (Ray runs entrypoints through a shell; every word here is
    shell-safe: a path-free program name, a module, URL-safe base64, a submission id)."""
    words = [python, "-m", "cpo.executors.rayentry", encode_spec(spec_json)]
    if env_key:
        words += ["--env", env_key]
    if probe:
        words.append("--probe")
    return " ".join(words)


def main(argv: list[str]) -> int:
    spec, options = argv[0], argv[1:]
    if "--env" in options:
        from cpo.executors import raysecrets

        key = options[options.index("--env") + 1]
        os.environ.update(raysecrets.take(os.environ["RAY_ADDRESS"], key))
    sys.stdout.flush()
    if "--probe" in options:
        os.execv(sys.executable, [sys.executable, "-m", "cpo.run.rayprobe", spec])
    launch = json.dumps(decode_spec(spec))
    # Left open on purpose: exec passes the descriptor on, and the file dies with it.
    holder = tempfile.TemporaryFile("w+")  # noqa: SIM115
    holder.write(launch)
    holder.flush()
    os.set_inheritable(holder.fileno(), True)
    argv_out = [sys.executable, "-m", "cpo", "worker", "run-task", f"/dev/fd/{holder.fileno()}"]
    os.execv(sys.executable, argv_out)
    return 127  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

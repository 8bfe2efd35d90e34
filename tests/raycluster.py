"""A real local Ray cluster for the `ray` suites (tests/ray_executor): one head per pytest session.

`ray start --head --num-cpus=2 --resources='{"agent_slot": 2}'`, dashboard and every port
on 127.0.0.1 (free ports, so it never meets another cluster), token auth on (the Ray 2.5x
default for clusters that have a token, so the client's token path is always exercised),
the scripted `claude` first on the workers' PATH: jobs inherit the head's environment,
which is how a real cluster's workers find the agent CLI. Every process of the cluster,
and everything its jobs start, carries `CPO_TEST_RAY_HEAD=<id>` in its environment; the
head is stopped by signalling exactly those processes (never `ray stop`, which stops every
Ray cluster of the user on the machine).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import GIT_ENV

TAG = "CPO_TEST_RAY_HEAD"


@dataclass(frozen=True)
class RayHead:
    address: str  # the dashboard: what `--ray-address` takes
    gcs_address: str  # HOST:PORT, what `ray start --address` and the GCS client take
    token: str
    bin_dir: Path  # first on the workers' PATH (the scripted claude is there)
    home: Path  # the workers' HOME
    tag: str

    def client_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` for a coordinator that talks to this cluster."""
        return {**environ, "RAY_ADDRESS": self.address, "RAY_AUTH_TOKEN": self.token}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port where nothing answers for as long as the block lasts: bound, never listened
    on, so connections are refused and no other process (a Ray head another test starts,
    which binds ports at random) can take it meanwhile, as it can a `free_port`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries `TAG=tag`."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def tagged_processes(head: RayHead, name: str) -> list[int]:
    """Processes of the cluster's jobs whose command line contains `name`."""
    out = []
    for pid in _tagged(head.tag):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if name.encode() in cmd:
            out.append(pid)
    return out


def stop_processes(tag: str, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _tagged(tag)
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = _tagged(tag)
        if not pids:
            return


def head_env(bin_dir: Path, home: Path, token: str, tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "CPO_"))}
    env.pop("CLAUDECODE", None)
    env.update(GIT_ENV)
    env.update(
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
        HOME=str(home),
        IS_SANDBOX="1",
        CPO_FAKE_STATE=str(home / "fake-state"),
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        **{TAG: tag},
    )
    return env


@contextmanager
def ray_head(agent_slots: int = 2) -> Iterator[RayHead]:
    """A started head (stopped on exit, whatever happened)."""
    from cpo.scripted.agent import install_shim

    # Short: Ray puts unix sockets under it, and their paths are limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cpo-ray-", dir="/tmp"))
    bin_dir, home = root / "bin", root / "home"
    home.mkdir()
    install_shim(bin_dir)
    token, tag = secrets.token_hex(16), secrets.token_hex(8)
    dashboard, gcs = free_port(), free_port()
    argv = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        "--num-cpus=2",
        f'--resources={{"agent_slot": {agent_slots}}}',
        f"--temp-dir={root / 'ray'}",
        "--disable-usage-stats",
    ]
    head = RayHead(f"http://127.0.0.1:{dashboard}", f"127.0.0.1:{gcs}", token, bin_dir, home, tag)
    try:
        proc = subprocess.run(
            argv,
            env=head_env(bin_dir, home, token, tag),
            capture_output=True,
            text=True,
            timeout=180,
            start_new_session=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        yield head
    finally:
        stop_processes(tag)
        shutil.rmtree(root, ignore_errors=True)

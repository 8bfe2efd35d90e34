"""The real `claude` CLI on the Ray workers, against the scripted Messages API: the
two-wave scenario of tests/realcli_cpo.py through `--executor ray`. The CLI, the API's
address and key reach each job by name through `executors.ray.env` (the coordinator's
environment, handed over through the cluster's store), as a user's credentials would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.raycluster import RayHead
from tests.real_claude.conftest import OFFLINE_ENV, cli_env, locate_cli
from tests.real_claude.server import ScriptedServer, bash, write
from tests.realcli_cpo import Kit, two_wave_spec_merged
from tests.workerkit import bare_remote

pytestmark = pytest.mark.real_claude

HANDED_OVER = ["CPO_CLAUDE_BIN", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", *OFFLINE_ENV]


@pytest.fixture
def api() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    yield server
    server.stop()


def test_two_waves_with_the_real_cli_on_the_cluster(
    ray_cluster: RayHead, api: ScriptedServer, git_repo: Path
) -> None:
    claude, why = locate_cli()
    if claude is None:
        pytest.skip(why)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "cpo" / "config.yaml"
    config.parent.mkdir(parents=True)
    ray = {"env": HANDED_OVER, "gcs_address": ray_cluster.gcs_address}
    config.write_text(yaml.safe_dump({"executors": {"ray": ray}}))
    env = ray_cluster.client_env(cli_env(api, CPO_CLAUDE_BIN=claude))
    kit = Kit(
        backend="claude",
        write=lambda path, content: write("{cwd}/" + path, content),
        shell=bash,
        run_flags=("--executor", "ray", "--remote", bare_remote(git_repo)),
    )
    two_wave_spec_merged(kit, git_repo, api, env)

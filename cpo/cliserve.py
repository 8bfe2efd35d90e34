"""The long-running sides: `cpo serve` (the HTTP API) and `cpo worker run-task` (what an
executor other than local runs on the agent's machine). Registered on the app by
cpo/cli.py."""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation (cpo/cli.py; tests/test_startup.py checks).
import sys
from pathlib import Path
from typing import Annotated

import typer

from cpo.quickimport import quick_imports


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            metavar="DIR",
            help="A folder whose parallel directories the API may run and show "
            "(repeatable; default: the current directory).",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and the web dashboard (extra: cpo-orchestrator[serve]).

    Keys come from CPO_API_KEYS (comma-separated) or the config's server.api_keys; with
    keys set, every endpoint but /health needs one (X-API-Key or Authorization: Bearer).
    Without a key only a loopback address is allowed.
    """
    from cpo.serve import require_extra

    require_extra()
    with quick_imports():  # and collection resumes: the server runs for hours
        from cpo.serve.main import serve as run_server
        from cpo.serve.main import server_config

    config = server_config(host, port, root or [])
    typer.echo(
        f"cpo serve: roots {', '.join(str(r) for r in config.roots)}; "
        f"API keys {'required' if config.api_keys else 'off (loopback only)'}",
        err=True,
    )
    run_server(config)


worker_app = typer.Typer(
    help="The worker side of executors other than local (run on the machine of the agent).",
    no_args_is_help=True,
)


@worker_app.command("run-task")
def worker_run_task(
    spec: Annotated[str, typer.Argument(metavar="SPEC.json", help="The task launch; - for stdin.")],
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the working directory (to look into it).")
    ] = False,
) -> None:
    """Run one attempt of one task from its launch (what `cpo run --executor` sends):
    clone its branch from the git remote, run the agent, push the branch; one JSON event
    per line on stdout (started, log, agent_event, exited)."""
    with quick_imports():  # and collection resumes: an agent may run for hours
        from cpo.worker.runtask import read_launch, run_task

    raise typer.Exit(run_task(read_launch(spec), sys.stdout, keep=keep))

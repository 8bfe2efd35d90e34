"""`cpo serve`: check the settings, then serve the app with uvicorn until Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

from cpo.config import load_settings
from cpo.serve.security import ServerConfig, api_keys, check_config


def server_config(host: str, port: int, roots: list[Path]) -> ServerConfig:
    """The settings, or a one-line UsageError (no key on a public address, bad root)."""
    settings = load_settings(None, cwd=Path.cwd())
    keys = api_keys(os.environ, settings.api_keys)
    return check_config(host, port, roots, keys)


def serve(config: ServerConfig) -> None:
    import uvicorn

    from cpo.serve.app import create_app

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="info",
        # Uvicorn's access log shows method, path and status: never a header, so no key.
        access_log=True,
        timeout_graceful_shutdown=3,  # open event streams must not hold Ctrl-C
    )

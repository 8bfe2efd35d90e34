"""`cpo serve`: the HTTP API (clinvk-compatible `/api/v1/parallel`, runs, live events) and
the web dashboard, on FastAPI + uvicorn (the optional extra `cpo-orchestrator[serve]`).

`security` holds the keys, the bind check and the path rules (no FastAPI: the command line
checks them before the server starts); `errors` the clinvk error bodies; `runs` finds runs
under the roots (from report.json and the lock, so runs started in a terminal show too) and
starts, cancels and resumes them as real `cpo run` processes; `events` turns report.json
changes into numbered events; `backends` finds the agent CLIs; `models` the request and
response bodies; `common` what every route shares (state, body limit, key check);
`runs_api` and `parallel_api` the routes; `app` puts them together; `main` starts uvicorn.
`static/` is the dashboard (plain HTML, CSS and JS: no build step, no CDN), in the wheel.

May import: `cpo.commands.status`, `cpo.run.report`, `cpo.run.lock`, `cpo.run.states`,
`cpo.adhoc`, `cpo.agents`, `cpo.config`, `cpo.proc`, `cpo.secrets`, `cpo.errors`,
`cpo.duration` and the package `cpo` (for the version). Only `cpo.cliserve` imports it (lazily,
through `require_extra` and `main`); nothing in `cpo.run`, `cpo.plan` or `cpo.adhoc` may.
"""

from __future__ import annotations

import importlib.util

from cpo.errors import UsageError

INSTALL_HINT = "pip install 'cpo-orchestrator[serve]'"


def require_extra() -> None:
    """Fail with the install command when the server's libraries are missing."""
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"cpo serve needs {' and '.join(missing)}, which are not installed: "
            f"install them with {INSTALL_HINT}"
        )

"""Backend-neutral approval and sandbox modes.

`approval_mode` says how much the agent may do without asking; `sandbox_mode` how far
its commands may reach. cpo runs agents unattended: nobody is there to answer a
question, so in every CLI's headless mode "ask" means "refuse". `default` therefore
means cpo's default for an unattended agent that must edit its working tree (claude
`bypassPermissions`, codex exec's never-ask policy in a `workspace-write` sandbox,
gemini `yolo`), not the CLI's interactive default.

Each backend module holds its own mapping (`APPROVAL_FLAGS`, `SANDBOX_FLAGS`) and says,
through `Backend.unsupported(req)`, every requested option its CLI cannot honour, so
nothing is dropped silently; `cpo.agents.modetable` renders the mappings for the README.
"""

from __future__ import annotations

APPROVAL_MODES = ("default", "auto", "none", "always")
SANDBOX_MODES = ("default", "read-only", "workspace", "full")

HEADLESS_ASK = "headless, so a tool that needs approval is refused"

__all__ = ["APPROVAL_MODES", "HEADLESS_ASK", "SANDBOX_MODES"]

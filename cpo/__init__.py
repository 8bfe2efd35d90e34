"""cpo — the Claude Parallel Orchestrator."""

__version__ = "0.1.0"

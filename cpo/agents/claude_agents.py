"""Which `--agent` names Claude Code knows, looked up where it keeps them, so that a
misspelt or missing agent stops the run at preflight rather than when its task starts.

Claude Code accepts its built-in agents; any `*.md` (subfolders too) under the user's
`~/.claude/agents/` (or `$CLAUDE_CONFIG_DIR/agents/`) and the project's
`.claude/agents/` whose frontmatter has a `name` and a `description`; and the agents of
installed plugins, as `<plugin>:<agent>` (a plugin's `agents/` folder; the plugin's name
from its `.claude-plugin/plugin.json`, else its folder). The scripted CLI
(cpo.scripted.cli) models the same lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import frontmatter

from cpo.agents.base import AgentRequest
from cpo.suggest import did_you_mean

BUILTIN_AGENTS = ("claude", "Explore", "general-purpose", "Plan", "statusline-setup")


def config_dir(env: Mapping[str, str]) -> Path:
    explicit = env.get("CLAUDE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return Path(env.get("HOME") or Path.home()) / ".claude"


def project_root(start: Path) -> Path:
    """The repository holding `start` (its worktrees are copies of it: same agents)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def known_agents(project: Path, env: Mapping[str, str]) -> set[str]:
    """Every agent name `claude --agent` accepts for a session in `project`."""
    config = config_dir(env)
    names = set(BUILTIN_AGENTS)
    for folder in (config / "agents", project / ".claude" / "agents"):
        names.update(name for name, _ in _agent_files(folder))
    for plugin, root in _plugins(config / "plugins"):
        names.update(f"{plugin}:{name}" for name, _ in _agent_files(root / "agents", lax=True))
    return names


def _agent_files(folder: Path, *, lax: bool = False) -> Iterator[tuple[str, Path]]:
    """(name, file) of the agent definitions below `folder`. `lax`: a plugin's agent
    may go without frontmatter; its file name is then its name."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.md")):
        try:
            meta = frontmatter.loads(path.read_text(encoding="utf-8")).metadata
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError):
            meta = {}
        name = meta.get("name")
        if isinstance(name, str) and name and (meta.get("description") or lax):
            yield name, path
        elif lax:
            yield path.stem, path


def _plugins(folder: Path) -> Iterator[tuple[str, Path]]:
    """(plugin name, plugin root) of the plugins under Claude Code's plugin folder:
    those named in installed_plugins.json, and any plugin root found below it."""
    roots: set[Path] = set()
    try:
        data = json.loads((folder / "installed_plugins.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    entries = data.get("plugins", data) if isinstance(data, dict) else {}
    for installs in entries.values() if isinstance(entries, dict) else []:
        for install in installs if isinstance(installs, list) else [installs]:
            path = install.get("installPath") if isinstance(install, dict) else None
            if isinstance(path, str):
                roots.add(Path(path))
    if folder.is_dir():
        roots.update(p.parent.parent for p in folder.rglob(".claude-plugin/plugin.json"))
    for root in sorted(roots):
        yield _plugin_name(root), root


def _plugin_name(root: Path) -> str:
    try:
        name = json.loads((root / ".claude-plugin" / "plugin.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    return name if isinstance(name, str) and name else root.name


def unknown_agent_problems(reqs: Sequence[AgentRequest], env: Mapping[str, str]) -> list[str]:
    """One line per `agent:` name Claude Code would not find, with the tasks naming it."""
    wanted: dict[str, list[str]] = {}
    for req in reqs:
        if req.agent:
            wanted.setdefault(req.agent, []).append(req.task_id)
    if not wanted:
        return []
    project = project_root(reqs[0].parallel_dir)
    known = known_agents(project, env)
    return [
        f"agent {name!r} ({', '.join(tasks)}) is not installed: claude looks in "
        f"{project / '.claude' / 'agents'}, {config_dir(env) / 'agents'} and installed "
        f"plugins (as plugin:agent){did_you_mean(name, known)}; install it, or fix the "
        "task's `agent`"
        for name, tasks in wanted.items()
        if name not in known
    ]

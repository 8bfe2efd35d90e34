"""`cpo templates install`: copy the Claude Code slash commands that call cpo.

The templates ship inside the wheel as `cpo/_templates` (pyproject force-include); an
editable install or a source checkout has them in the repository's `templates/` folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cpo.errors import CpoError, UsageError

PACKAGED = "_templates"


@dataclass
class InstallResult:
    destination: Path
    written: list[Path] = field(default_factory=list)
    overwritten: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def template_files() -> dict[str, str]:
    """Template name -> text, from the installed package, else from the source checkout."""
    packaged = resources.files("cpo").joinpath(PACKAGED)
    if packaged.is_dir():
        found = {
            item.name: item.read_text(encoding="utf-8")
            for item in packaged.iterdir()
            if item.name.endswith(".md")
        }
        if found:
            return dict(sorted(found.items()))
    source = Path(__file__).resolve().parents[2] / "templates"  # cpo/commands/ -> the top
    found = {p.name: p.read_text(encoding="utf-8") for p in sorted(source.glob("*.md"))}
    if not found:
        raise CpoError(
            "cpo's slash command templates are missing from this installation",
            hint="reinstall cpo (pip install --force-reinstall cpo-orchestrator)",
        )
    return found


def destination(user: bool, cwd: Path) -> Path:
    """`~/.claude/commands` with --user, else `.claude/commands` at the repository's top."""
    if user:
        return Path.home() / ".claude" / "commands"
    from cpo.git import find_repo

    try:
        return find_repo(cwd) / ".claude" / "commands"
    except CpoError:
        raise UsageError(
            f"{cwd} is not inside a git repository",
            hint="run it from your project, or install for your user with --user",
        ) from None


def install_templates(dest: Path, *, force: bool = False) -> InstallResult:
    """Write each template into `dest`; an existing file is kept unless `force`."""
    result = InstallResult(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in template_files().items():
        path = dest / name
        if path.exists():
            if not force:
                result.skipped.append(path)
                continue
            result.overwritten.append(path)
        else:
            result.written.append(path)
        path.write_text(text, encoding="utf-8")
    return result


def install_lines(result: InstallResult) -> list[str]:
    lines = [f"installed   {p}" for p in result.written]
    lines += [f"overwrote   {p}" for p in result.overwritten]
    lines += [f"skipped     {p} (exists; --force to overwrite)" for p in result.skipped]
    names = [f"/{p.stem}" for p in result.written + result.overwritten]
    if names:
        lines.append(f"use them in Claude Code as {', '.join(names)}")
    return lines

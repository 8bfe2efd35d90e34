"""What every backend shares: short action text, the agent environment, error classes from
an error message, where an agent's CLI is (`AgentCli`), the preflight that checks an
installed CLI knows the flags cpo uses, and the notes for claude's options other CLIs lack.

Imports only `cpo.agents.base` (and `cpo.proc`, late, to read a CLI's help), so every
backend module can build on it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cpo.agents.base import AgentRequest, ErrorClass

ACTION_WIDTH = 80
# The last assistant text is kept for the outcome; a runaway agent must not grow it forever.
MAX_FINAL_TEXT = 64 * 1024


# -- text ----------------------------------------------------------------------------------
def shorten(text: str, width: int = ACTION_WIDTH) -> str:
    """One line, at most `width` characters, for the progress table and log."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def path_action(verb: str, path: str, width: int = ACTION_WIDTH) -> str:
    """`Write /very/long/…/src/a.py`: a long path keeps its end, the part that says most."""
    room = width - len(verb) - 2
    return f"{verb} {path}" if len(path) <= room else f"{verb} …{path[-room:]}"


def stderr_lines(stderr_tail: str) -> list[str]:
    """The non-blank lines of an agent's stderr tail, stripped."""
    return [ln.strip() for ln in stderr_tail.splitlines() if ln.strip()]


def usage_error(lines: Sequence[str], markers: Iterable[str]) -> str | None:
    """The first stderr line where the CLI refuses its arguments: one holding one of the
    (lowercase) `markers`, case aside."""
    return next((ln for ln in lines if any(m in ln.lower() for m in markers)), None)


def ended_without(what: str, exit_code: int | None) -> str:
    """The error text of an agent that ended without `what` (e.g. "a final result")."""
    if exit_code is None:
        return f"stopped without {what}"
    return f"exited with code {exit_code} without {what}"


# -- environment ---------------------------------------------------------------------------
def agent_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without CLAUDECODE.

    CLAUDECODE marks "inside a Claude Code session"; a nested claude refuses to start
    when it sees it, and cpo itself may be run from Claude Code. The other CLIs ignore
    it, but a `command` agent may wrap claude, so every backend drops it.
    """
    return {k: v for k, v in base.items() if k != "CLAUDECODE"}


# -- error classes ---------------------------------------------------------------------
# Auth words as words, not inside a path or a name (a crash's "at src/login.ts:12" or
# "auth/authentication.py" says nothing of the credentials, and an auth class stops every
# launch); a leading "/" is claude's command ("/login").
_AUTH = re.compile(
    r"(?<![\w./-])/?(?:unauthorized|not logged in|login|api key|authentication|auth method)"
    r"(?![\w./-])"
)
_RATE_WORDS = (
    "rate limit",
    "rate_limit",
    "too many requests",
    "resource_exhausted",
    "resource has been exhausted",  # gemini's text for a 429 RESOURCE_EXHAUSTED
)
_USAGE_LIMIT_EPOCH = re.compile(r"usage limit reached\|(\d{9,11})", re.IGNORECASE)
_RESET_EPOCH = re.compile(r"reset\w*\D{0,20}?(\d{10})\b", re.IGNORECASE)
_RESET_ISO = re.compile(
    r"reset\w*\D{0,20}?(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
# A clock time, with a date or a zone when the CLI gives one: codex's "Try again at 3:45 PM."
# (or "at Sep 18th, 2025 3:45 PM." when not today), claude's "resets 3pm (Europe/Rome)",
# "resets Oct 9, 5pm", "will reset at 10:30am", gemini's "Access resets at 11:00 AM GMT+2.",
# and "resets at 15:45". The hour needs minutes or am/pm: "resets 3 days" is no time.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOCK = re.compile(
    r"(?:reset\w*|try again)\s+(?:at\s+)?"
    r"(?:(?P<mon>" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    r"(?:,?\s+(?P<year>\d{4}))?,?\s+(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<min>\d\d))?(?!\d)\s*(?P<ampm>[ap]\.?m\b\.?)?"
    r"(?:\s*\(?(?P<zone>(?:utc|gmt)(?:\s*[+-]\d{1,2}(?::?\d\d)?)?|[a-z]+/[a-z_/+-]+)\)?)?",
    re.IGNORECASE,
)
_ZONE_OFFSET = re.compile(r"(?:utc|gmt)\s*([+-])(\d{1,2}):?(\d\d)?", re.IGNORECASE)
# The CLIs print minutes, not seconds, and cpo reads the line a moment after it was
# written: a time this little past is today's (the limit has just lifted), not tomorrow's.
_CLOCK_GRACE = timedelta(minutes=10)
_AGAIN_IN = re.compile(
    r"try again in\s+(?:(\d+)\s*days?)?[\s,]*(?:(\d+)\s*hours?)?[\s,]*(?:(\d+)\s*min\w*)?",
    re.IGNORECASE,
)
# gemini's "Your quota will reset after 12h22m45s." (days and seconds too, any of them).
_RESET_AFTER = re.compile(
    r"reset\w*\s+(?:after|in)\s+(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\b",
    re.IGNORECASE,
)


def classify_error(
    text: str, *, status: int | None = None, code: str | None = None
) -> tuple[ErrorClass, float | None]:
    """An error's class (and when a limit lifts), from its text, HTTP status and error code.

    The words and statuses are those claude, codex and gemini use; a status is taken from
    `status` or, as codex and gemini print it, from the text itself.
    """
    low = text.lower()
    code = (code or "").lower()
    statuses = {int(s) for s in re.findall(r"\b(401|403|429|503|529)\b", low)}
    if status is not None:
        statuses.add(status)
    if statuses & {401, 403} or code.startswith("authentication"):
        return "auth", None
    if (
        "usage limit" in low
        or ("quota exceeded" in low and "per day" in low)
        or "exhausted your capacity" in low  # gemini: "... Your quota will reset after 12h"
    ):
        return "usage_limit", parse_reset(text)
    # Limits before the auth words: gemini ends a quota error with "or switch to another
    # /auth method", and such a task must be retried, not stop every launch.
    if 429 in statuses or code.startswith("rate_limit") or any(w in low for w in _RATE_WORDS):
        return "rate_limited", parse_reset(text)
    if _AUTH.search(low):
        return "auth", None
    if statuses & {503, 529} or "overloaded" in low:
        return "overloaded", None
    return "agent_error", None


# The classes a stderr line can say, most telling first. A limit outranks the auth words
# a limit message may also hold (gemini's "switch to another /auth method", on a line of
# its own once split), and a stray auth word in a stack trace must not hide a limit: a
# limit pauses (or retries) and a real auth failure shows again on the next attempt,
# while a lost limit fails the task.
_STDERR_RANK: tuple[ErrorClass, ...] = ("usage_limit", "rate_limited", "auth", "overloaded")


def classify_stderr(lines: Sequence[str]) -> tuple[ErrorClass | None, str | None, float | None]:
    """(class, the line that says it, when a limit lifts) of an agent that said its error
    on stderr only; (None, the last line, None) when no line names a class.

    Every line of the tail the backend keeps is read, each on its own, and the most telling
    class wins (`_STDERR_RANK`; the first line of that class): the CLI often writes more
    after its error (a trace, "exiting", a progress line), so the last line alone loses it.
    Each line on its own, not the tail as one text, so that words from unrelated lines
    (a path with "login" in it, a ":403" line number) are not read as one message. A reset
    time said on a later line of the same message ("Try again at 3 PM.") is kept too.
    """
    best: int | None = None
    best_class: ErrorClass | None = None
    for i, line in enumerate(lines):
        cls, _ = classify_error(line)
        if cls in _STDERR_RANK and (
            best_class is None or _STDERR_RANK.index(cls) < _STDERR_RANK.index(best_class)
        ):
            best, best_class = i, cls
    if best is None or best_class is None:
        return None, (lines[-1] if lines else None), None
    reset_at = None
    if best_class in ("usage_limit", "rate_limited"):
        reset_at = parse_reset(lines[best]) or parse_reset("\n".join(lines[best:]))
    return best_class, lines[best], reset_at


def parse_reset(text: str, *, now: datetime | None = None) -> float | None:
    """Epoch seconds a limit lifts: `...|<epoch>`, `resets ... <ISO time>`, a clock time
    (`try again at 3:45 PM`, `resets 3pm (Europe/Rome)`, `resets at 15:45`) or
    `try again in 2h`. `now` (naive: local time) is for tests."""
    m = _USAGE_LIMIT_EPOCH.search(text) or _RESET_EPOCH.search(text)
    if m:
        return float(m.group(1))
    iso = _RESET_ISO.search(text)
    if iso:
        try:
            return datetime.fromisoformat(iso.group(1).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    clock = next(filter(None, map(_clock_time, _CLOCK.finditer(text))), None)
    if clock is not None:
        return _next_clock_time(clock, now)
    start = now.timestamp() if now is not None else time.time()
    after = _RESET_AFTER.search(text)
    if after and any(after.groups()):
        days, hours, minutes, seconds = (int(g) if g else 0 for g in after.groups())
        return start + days * 86400 + hours * 3600 + minutes * 60 + seconds
    again = _AGAIN_IN.search(text)
    if not again or not any(again.groups()):
        return None
    days, hours, minutes = (int(g) if g else 0 for g in again.groups())
    return start + days * 86400 + hours * 3600 + minutes * 60


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    date: tuple[int | None, int, int] | None  # (year or None, month, day)
    zone: tzinfo | None  # None: local time


def _clock_time(m: re.Match[str]) -> _Clock | None:
    """The clock time `_CLOCK` matched, or None when it is no valid time."""
    hour, minute, ampm = int(m["hour"]), int(m["min"] or 0), (m["ampm"] or "").lower()
    if (m["min"] is None and not ampm) or minute > 59:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    elif hour > 23:
        return None
    date = None
    if m["mon"]:
        month = _MONTHS.index(m["mon"].lower()[:3]) + 1
        date = (int(m["year"]) if m["year"] else None, month, int(m["day"]))
    return _Clock(hour, minute, date, _zone(m["zone"]))


def _zone(name: str | None) -> tzinfo | None:
    """`UTC`, `GMT+2` or an IANA name; None (local time) for none or one not known here."""
    if not name:
        return None
    offset = _ZONE_OFFSET.fullmatch(name.strip())
    if offset:
        sign = -1 if offset[1] == "-" else 1
        return timezone(sign * timedelta(hours=int(offset[2]), minutes=int(offset[3] or 0)))
    if name.strip().lower() in ("utc", "gmt"):
        return timezone.utc
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _next_clock_time(clock: _Clock, now: datetime | None) -> float | None:
    """Epoch seconds of `clock`: on its date if it has one, else today in its zone, or
    tomorrow (next year for a date without one) when that has passed."""
    current = (now or datetime.now()).astimezone(clock.zone)
    if clock.zone is None:
        current = current.replace(tzinfo=None)  # naive local: wall-clock days across DST
    try:
        if clock.date is None:
            when = current.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
        else:
            year, month, day = clock.date
            when = current.replace(
                year=year or current.year, month=month, day=day,
                hour=clock.hour, minute=clock.minute, second=0, microsecond=0,
            )  # fmt: skip
            if year is None and when < current - _CLOCK_GRACE:
                when = when.replace(year=when.year + 1)
    except ValueError:  # e.g. Feb 30th
        return None
    if clock.date is None and when < current - _CLOCK_GRACE:
        when += timedelta(days=1)
    return when.timestamp()


# -- the CLI: where it is; preflight: is it there, and does this version know our flags? --
@dataclass(frozen=True)
class AgentCli:
    """An agent's CLI: the command (its name, looked up on PATH), the variable that names
    another executable instead, and how to install it (said when it is missing)."""

    name: str
    env_var: str  # CPO_<NAME>_BIN
    install_hint: str

    def bin(self, env: Mapping[str, str]) -> str:
        return env.get(self.env_var) or self.name

    def check(
        self, help_args: Sequence[str], words: Iterable[str], env: Mapping[str, str]
    ) -> list[str]:
        """`check_cli` for the executable `env` names: missing, or `words` unknown to it."""
        return check_cli(self.name, self.bin(env), help_args, words, env,
                         env_var=self.env_var, install_hint=self.install_hint)  # fmt: skip


def claude_options_ignored(cli: str, req: AgentRequest) -> list[str]:
    """`Backend.unsupported` lines for the claude options `cli` has no equivalent of."""
    notes = []
    if req.agent:
        notes.append(f"{cli}: has no --agent option; agent {req.agent} is ignored")
    if req.permission_mode:
        notes.append(
            f"{cli}: permission_mode {req.permission_mode} is a claude option, ignored "
            "(use approval_mode / sandbox_mode)"
        )
    return notes


def not_found(cli: str, exe: str, env_var: str, install_hint: str, *, via_var: bool = False) -> str:
    """`via_var`: `exe` came from `env_var`, which is what to fix."""
    if via_var:
        where = "is not an executable file" if os.sep in exe else "is not found on PATH"
        return (
            f"{env_var}={exe} {where}: point it at the {cli} CLI, or unset it to use "
            f"`{cli}` from PATH"
        )
    return (
        f"the {cli} CLI ({exe!r}) was not found on PATH: install it with "
        f"`{install_hint}`, or set {env_var} to its path"
    )


def check_cli(
    cli: str,
    exe: str,
    help_args: Sequence[str],
    words: Iterable[str],
    env: Mapping[str, str],
    *,
    env_var: str,
    install_hint: str,
) -> list[str]:
    """Problems with the installed CLI: missing, or its `--help` lacks one of `words`."""
    if shutil.which(exe, path=env.get("PATH")) is None:
        return [not_found(cli, exe, env_var, install_hint, via_var=bool(env.get(env_var)))]
    help_argv = [exe, *help_args]
    code, text = read_help(help_argv, env)
    if code != 0:
        return [f"`{shlex.join(help_argv)}` failed (exit {code}): {shorten(text, 200)}"]
    return unknown_flags_problem(cli, shlex.join(help_argv), words, text, install_hint)


def flags_in(argv: Sequence[str]) -> list[str]:
    """The option names in an argv (without values; `--a=b` gives `--a`)."""
    out: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("-") and arg != "-" and not _is_number(arg):
            name = arg.split("=", 1)[0]
            if name not in out:
                out.append(name)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def missing_words(words: Iterable[str], help_text: str) -> list[str]:
    """The words (flags or flag values) that do not appear in `help_text` as whole tokens."""
    missing = []
    for word in words:
        pattern = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
        if not re.search(pattern, help_text):
            missing.append(word)
    return missing


def unknown_flags_problem(
    cli: str, help_command: str, words: Iterable[str], help_text: str, install_hint: str
) -> list[str]:
    """One preflight line naming the words the installed CLI's help does not know."""
    missing = missing_words(dict.fromkeys(words), help_text)
    if not missing:
        return []
    return [
        f"this {cli} version does not know {', '.join(missing)} (checked with "
        f"`{help_command}`): upgrade it with `{install_hint}`"
    ]


def read_help(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int | None, str]:
    """Run a CLI's help (e.g. `codex exec --help`), returning (exit code, output)."""
    from cpo.proc import run_capture  # late: backends are pure and import nothing heavy

    try:
        code, out, _timed_out = run_capture(list(argv), cwd=Path.cwd(), env=env, timeout=30)
    except OSError as exc:
        return None, str(exc)
    return code, out

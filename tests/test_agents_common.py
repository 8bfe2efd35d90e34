"""The helpers every backend shares (cpo.agents.common) and the README's mode table."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cpo.agents.common import classify_error, classify_stderr, parse_reset, shorten
from cpo.agents.modetable import mapping_table


@pytest.mark.parametrize(
    ("text", "status", "klass"),
    [
        ("Invalid API key · Fix external API key", None, "auth"),
        ("API Error: 401 authentication_error", 401, "auth"),
        ("API Error: 403 forbidden", 403, "auth"),
        ("API Error: 429 rate limit exceeded", None, "rate_limited"),
        ("API Error: 429", 429, "rate_limited"),
        ("API Error: Overloaded", None, "overloaded"),
        ("whatever", 529, "overloaded"),
        ("Claude AI usage limit reached|1767225600", None, "usage_limit"),
        ("Something else went wrong", None, "agent_error"),
        # gemini 0.61's persistent 429, word for word: a rate limit despite "/auth method"
        (
            "[API Error: Resource has been exhausted (e.g. check quota).]\nPlease wait and try "
            "again later. To increase your limits, request a quota increase through AI Studio, "
            "or switch to another /auth method",
            None,
            "rate_limited",
        ),
        ("[API Error: API key not valid. Please pass a valid API key.]", None, "auth"),
    ],
)
def test_classify_error(text: str, status: int | None, klass: str) -> None:
    assert classify_error(text, status=status)[0] == klass


def test_parse_reset_forms() -> None:
    assert parse_reset("usage limit reached, resets at 1767225600") == 1767225600.0
    assert parse_reset("usage limit reached; resets 2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_reset("usage limit reached, resets 3 days") is None  # no clock time
    assert parse_reset("resets 25:00") is None and parse_reset("resets 13pm") is None


# 2026-06-10 14:00 local time: the clock-time phrasings below are read against it.
NOW = datetime(2026, 6, 10, 14, 0)


def local(day: int, hour: int, minute: int = 0, month: int = 6, year: int = 2026) -> float:
    return datetime(year, month, day, hour, minute).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # codex: the reset today, "%-I:%M %p"
        ("You've hit your usage limit. Try again at 3:45 PM.", local(10, 15, 45)),
        ("usage limit reached, resets at 15:45", local(10, 15, 45)),
        ("try again at 4pm", local(10, 16)),
        ("usage limit reached, resets 5pm", local(10, 17)),
        ("Claude usage limit reached. Your limit will reset at 10:30am.", local(11, 10, 30)),
        ("5-hour limit reached ∙ resets 12am", local(11, 0)),  # midnight: tomorrow's
        ("resets 12:30 p.m.", local(11, 12, 30)),
        ("try again at 1pm", local(11, 13)),  # passed today: tomorrow
        ("try again at 13:55", local(10, 13, 55)),  # minutes past: today's (seconds cut)
        # codex, another day: "%b %-d{suffix}, %Y %-I:%M %p"
        ("Try again at Jun 12th, 2026 3:45 PM.", local(12, 15, 45)),
        ("Weekly limit reached ∙ resets Jun 14, 5pm", local(14, 17)),
        ("Weekly limit reached ∙ resets Jan 2, 5pm", local(2, 17, month=1, year=2027)),
        ("resets 5pm (Nowhere/Special)", local(10, 17)),  # a zone not known here: local
    ],
)
def test_parse_reset_clock_times(text: str, expected: float) -> None:
    assert parse_reset(text, now=NOW) == expected


def test_parse_reset_clock_time_in_the_zone_it_names() -> None:
    """A zone said with the time: that zone's clock, and its "today"."""
    rome = ZoneInfo("Europe/Rome")
    plus2 = timezone(timedelta(hours=2))

    def at(zone: tzinfo, day: int, hour: int) -> datetime:
        return datetime(2026, 6, day, hour, tzinfo=zone)

    now = at(rome, 10, 9).astimezone().replace(tzinfo=None)  # 9am in Rome, as local time
    cases = [
        ("resets 3pm (Europe/Rome)", at(rome, 10, 15)),
        ("resets 8am (Europe/Rome)", at(rome, 11, 8)),  # passed in Rome: tomorrow's
        ("Access resets at 11:00 AM GMT+2.", at(plus2, 10, 11)),
        ("You've hit your limit · resets 6am (UTC)", at(timezone.utc, 11, 6)),  # 7am UTC now
        ("You've hit your limit · resets 8am (UTC)", at(timezone.utc, 10, 8)),
    ]
    for text, want in cases:
        assert parse_reset(text, now=now) == want.timestamp(), text


def test_shorten() -> None:
    assert shorten("a\n  b") == "a b"
    long = shorten("x" * 200)
    assert len(long) == 80 and long.endswith("…")


def test_classify_error_reads_statuses_in_the_text() -> None:
    assert classify_error("unexpected status 401 Unauthorized")[0] == "auth"
    assert classify_error("429 Too Many Requests")[0] == "rate_limited"
    assert classify_error("server is overloaded (503)")[0] == "overloaded"
    assert classify_error("something odd")[0] == "agent_error"


def test_readme_mapping_table_is_current() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert mapping_table() in readme


def test_parse_reset_try_again_in() -> None:
    before = time.time()
    reset = parse_reset("You've hit your usage limit. Try again in 2 hours 5 min.")
    assert reset is not None and before + 7500 <= reset <= time.time() + 7500


def test_every_backend_drops_claudecode_through_one_filter() -> None:
    from cpo.agents import backend_names, get_backend
    from cpo.agents.base import AgentRequest

    req = AgentRequest(task_id="t", wave=1, prompt="", worktree=Path(), parallel_dir=Path())
    for name in backend_names():
        env = get_backend(name).env(req, {"CLAUDECODE": "1", "KEEP": "x"})
        assert "CLAUDECODE" not in env and env["KEEP"] == "x", name


def test_check_cli_missing_help_failing_and_unknown_flag(tmp_path: Path) -> None:
    from cpo.agents.common import check_cli

    def cli(body: str) -> dict[str, str]:
        exe = tmp_path / "tool"
        exe.write_text(f"#!/bin/sh\n{body}\n")
        exe.chmod(0o755)
        return {"PATH": str(tmp_path)}

    kw = {"env_var": "CPO_TOOL_BIN", "install_hint": "get tool"}
    assert check_cli("tool", "nope", ["--help"], [], {"PATH": str(tmp_path)}, **kw) == [
        "the tool CLI ('nope') was not found on PATH: install it with `get tool`, "
        "or set CPO_TOOL_BIN to its path"
    ]
    env = cli("echo broken; exit 3")
    assert check_cli("tool", "tool", ["--help"], ["--a"], env, **kw) == [
        "`tool --help` failed (exit 3): broken"
    ]
    env = cli("echo '  --json   print JSON'")
    assert check_cli("tool", "tool", ["--help"], ["--json"], env, **kw) == []
    assert check_cli("tool", "tool", ["--help"], ["--json", "--new"], env, **kw) == [
        "this tool version does not know --new (checked with `tool --help`): "
        "upgrade it with `get tool`"
    ]


def test_classify_stderr_reads_every_line_most_telling_class_first() -> None:
    limit = "ERROR: You've hit your usage limit. Try again in 2 hours."
    cls, text, reset = classify_stderr([limit, "Error: exiting"])
    assert (cls, text) == ("usage_limit", limit) and reset is not None
    # a stray auth word (a path) does not outrank a limit said on another line
    cls, text, _ = classify_stderr(["at src/login.ts:12", "429 Too Many Requests"])
    assert (cls, text) == ("rate_limited", "429 Too Many Requests")
    # gemini's 429 text split over lines stays a rate limit, not auth ("/auth method")
    gemini = [
        "[API Error: Resource has been exhausted (e.g. check quota).]",
        "Please wait and try again later. To increase your limits, request a quota "
        "increase through AI Studio, or switch to another /auth method",
    ]
    assert classify_stderr(gemini)[0] == "rate_limited"
    assert classify_stderr(["panic: boom", "exiting"]) == (None, "exiting", None)
    assert classify_stderr([]) == (None, None, None)


@pytest.mark.parametrize(
    "line",
    [
        "    at Object.<anonymous> (/app/src/login.ts:12:5)",
        'File "/srv/auth/authentication.py", line 40, in check',
        "TypeError: cannot read properties of undefined (reading 'apiKey') in login.js",
        "panic at src/unauthorized_handler.rs:88",
    ],
)
def test_an_auth_word_in_a_path_is_no_auth_error(line: str) -> None:
    """An auth class stops every launch of the run; a crash's trace naming a file called
    login or authentication is no credentials problem. Before: "login" and
    "authentication" matched anywhere, paths included."""
    assert classify_error(line)[0] == "agent_error"
    assert classify_stderr(["Error: boom", line])[0] is None


@pytest.mark.parametrize(
    "line",
    ["Please run /login · API Error: 401", "Not logged in. Run `codex login`.", "login required"],
)
def test_auth_words_as_words_still_say_auth(line: str) -> None:
    assert classify_error(line)[0] == "auth"


def test_gemini_exhausted_capacity_is_a_usage_limit_with_its_reset() -> None:
    """gemini's quota message when a model's capacity is used up. Before: no class (an agent
    error: the task failed instead of waiting) and no reset time."""
    now = datetime(2026, 5, 1, 10, 0, 0)
    text = (
        "[API Error: You have exhausted your capacity on this model. Your quota will reset "
        "after 12h22m45s.]"
    )
    assert classify_error(text)[0] == "usage_limit"
    assert parse_reset(text, now=now) == now.timestamp() + 12 * 3600 + 22 * 60 + 45

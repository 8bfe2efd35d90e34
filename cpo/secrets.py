"""Masking of secrets: keys and tokens never reach logs, reports or the terminal.

Three kinds of text are replaced by `****`:

- the values of environment variables whose names say they hold a secret (`…_KEY`,
  `…_TOKEN`, `GH_PAT`, `DB_PASS` …), and the password of every URL with credentials found
  in any environment variable (`DATABASE_URL=postgres://user:pw@host/db`);
- well-known token shapes (`sk-ant-…`, `ghp_…`, `github_pat_…`, `AKIA…`, `xoxb-…` …)
  wherever they appear, because an agent prints keys it read from files, not only ours;
- the password part of any URL with credentials (`https://user:pw@host`).

Ordinary text (hashes, uuids, words) has none of those shapes: a token must start at a
word boundary with its vendor's prefix, so a hex digest or `task-001` is left alone.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

MASK = "****"
# Values this short are too likely to occur by chance ("1", "true") to be worth masking.
_MIN_LEN = 8
# Secret-looking variable names: these fragments anywhere, or these words between `_`.
_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE"
    r"|(?:^|_)(?:PAT|PASS|PW|PWD|DSN)(?:_|$)",
    re.IGNORECASE,
)
_NOT_SECRET_NAMES = frozenset({"PWD"})  # the shell's current directory, not a password
# How far back a too-long line may be cut before its end to keep a secret whole (see
# `Masker.safe_split`); longer than any token shape below.
MAX_HOLD = 4096

_TOKEN_CHARS = "A-Za-z0-9_\\-"
# The same characters as a set, for `anchored` (it must agree with `_START` exactly).
_TOKEN_SET = frozenset(string.ascii_letters + string.digits + "_-")
_START = f"(?<![{_TOKEN_CHARS}])"  # inside a longer word or a hash, a prefix is no token
_END = "(?![A-Za-z0-9])"
_B64URL = f"[{_TOKEN_CHARS}]{{8,}}"
_URL_CREDENTIALS = (
    r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>`\\]*:(?P<s>[^\s/@\"'<>`\\]+)@"  # scheme://user:pw@
)


@dataclass(frozen=True)
class _Shape:
    """A token shape; the regex runs only on text holding one of its anchors (a cheap
    substring test), so megabytes of ordinary output cost almost nothing."""

    anchors: tuple[str, ...]
    pattern: re.Pattern[str]
    # A token that must start a word (the regex begins with `_START`) is looked for only
    # where its anchor starts one (`anchored`).
    word_start: bool


def _shape(anchors: str, pattern: str) -> _Shape:
    return _Shape(tuple(anchors.split()), re.compile(pattern), pattern.startswith(_START))


# Group `s`, when a shape has one, is the secret part; otherwise the whole match is.
SHAPES: tuple[_Shape, ...] = (
    # Anthropic (sk-ant-…) and OpenAI (sk-…, sk-proj-…): random base62, so it has a
    # digit, a capital and a small letter, which words like `sk-learn-compatible` lack.
    _shape(
        "sk-",
        rf"{_START}sk-(?=[{_TOKEN_CHARS}]*\d)(?=[{_TOKEN_CHARS}]*[A-Z])"
        rf"(?=[{_TOKEN_CHARS}]*[a-z])[{_TOKEN_CHARS}]{{20,}}",
    ),
    _shape("ghp_ gho_ ghu_ ghs_ ghr_", rf"{_START}gh[pousr]_[A-Za-z0-9]{{30,}}"),
    _shape("github_pat_", rf"{_START}github_pat_[A-Za-z0-9_]{{22,}}"),
    _shape("glpat-", rf"{_START}glpat-[{_TOKEN_CHARS}]{{20,}}"),
    _shape("AKIA ASIA ABIA ACCA", rf"{_START}(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}{_END}"),
    _shape("xox", rf"{_START}xox[abeoprs]-[A-Za-z0-9\-]{{10,}}"),
    _shape("xapp-", rf"{_START}xapp-\d-[A-Za-z0-9\-]{{10,}}"),
    _shape("hooks.slack.com/services/", r"hooks\.slack\.com/services/(?P<s>[A-Za-z0-9/]{20,})"),
    _shape("AIza", rf"{_START}AIza[{_TOKEN_CHARS}]{{35}}"),
    _shape("npm_", rf"{_START}npm_[A-Za-z0-9]{{36}}"),
    _shape("pypi-AgE", rf"{_START}pypi-AgE[{_TOKEN_CHARS}]{{50,}}"),
    _shape("hf_", rf"{_START}hf_[A-Za-z0-9]{{30,}}"),
    _shape(
        "rk_live_ sk_live_ rk_test_ sk_test_", rf"{_START}[rs]k_(?:live|test)_[A-Za-z0-9]{{20,}}"
    ),
    # a JSON Web Token: three base64url parts, the first two JSON objects ("eyJ" = '{"')
    _shape(
        "eyJ",
        rf"{_START}eyJ[{_TOKEN_CHARS}]{{8,}}\.eyJ[{_TOKEN_CHARS}]{{8,}}\.[{_TOKEN_CHARS}]{{8,}}",
    ),
    _shape(
        "Bearer bearer BEARER", r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+(?P<s>[A-Za-z0-9._~+/\-]{20,}=*)"
    ),
    _shape("://", _URL_CREDENTIALS),
)
_URL = re.compile(_URL_CREDENTIALS)


def anchored(text: str, anchor: str) -> bool:
    """Whether `anchor` occurs in `text` where a token may start: not inside a longer
    word, so `task-001` does not send every line through the `sk-` regex. Substring
    searches only; the regex's own `_START` stays the rule."""
    pos = text.find(anchor)
    while pos != -1:
        if pos == 0 or text[pos - 1] not in _TOKEN_SET:
            return True
        pos = text.find(anchor, pos + 1)
    return False


def _replace(match: re.Match[str]) -> str:
    if "s" not in match.re.groupindex:
        return MASK
    whole, start = match.group(0), match.start()
    return whole[: match.start("s") - start] + MASK + whole[match.end("s") - start :]


def env_secrets(env: Mapping[str, str]) -> set[str]:
    """The literal values to mask: secret-named variables' values, and the passwords of
    URLs with credentials in any variable."""
    found = {
        value
        for name, value in env.items()
        if name not in _NOT_SECRET_NAMES and _SECRET_NAME.search(name) and len(value) >= _MIN_LEN
    }
    for value in env.values():
        if "://" in value:
            found.update(
                m.group("s") for m in _URL.finditer(value) if len(m.group("s")) >= _MIN_LEN
            )
    # as it appears inside a JSON string (an agent's raw events are JSON lines)
    found.update(json.dumps(v)[1:-1] for v in list(found))
    return found


class Masker:
    """Replaces every secret (see the module's docstring) by `****`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        # longest first, so a secret containing another is masked whole
        self._values = sorted(env_secrets(env), key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, self._values)) or "(?!)")

    def mask(self, text: str) -> str:
        # Plain loops of substring tests before any regex: this runs for every line an
        # agent prints, and nearly every line holds no secret.
        for value in self._values:
            if value in text:
                text = self._literal.sub(MASK, text)
                break
        for shape in SHAPES:
            for anchor in shape.anchors:
                if anchor in text and (not shape.word_start or anchored(text, anchor)):
                    text = shape.pattern.sub(_replace, text)
                    break
        return text

    def safe_split(self, text: str) -> int:
        """Where a too-long line may be cut so that no secret is cut in two.

        Everything from the returned index on is carried over to the next piece: the
        start of the trailing run of non-blank characters (tokens have no blanks), and
        the start of any tail that begins one of the environment's secrets. Never more
        than MAX_HOLD characters are held back.
        """
        floor = max(0, len(text) - MAX_HOLD)
        cut = len(text)
        while cut > floor and not text[cut - 1].isspace():
            cut -= 1
        for start in self._partial_secret_starts(text, floor):
            cut = min(cut, start)
        return max(cut, floor)

    def _partial_secret_starts(self, text: str, floor: int) -> Iterator[int]:
        for value in self._values:
            pos = text.find(value[0], max(floor, len(text) - len(value) + 1))
            while pos != -1:
                if value.startswith(text[pos:]):
                    yield pos
                    break
                pos = text.find(value[0], pos + 1)

from __future__ import annotations

import pytest

from cpo import secrets
from cpo.secrets import Masker, anchored


def test_masks_secret_like_variables_only() -> None:
    m = Masker(
        {
            "ANTHROPIC_API_KEY": "sk-ant-12345678",
            "GITHUB_TOKEN": "ghp_abcdefgh",
            "HOME": "/home/someone-long",
            "SHORT_KEY": "abc",
        }
    )
    text = "key sk-ant-12345678 and ghp_abcdefgh at /home/someone-long abc"
    assert m.mask(text) == "key **** and **** at /home/someone-long abc"


def test_longest_secret_first() -> None:
    m = Masker({"A_KEY": "abcdefgh", "B_KEY": "abcdefgh-longer"})
    assert m.mask("abcdefgh-longer") == "****"


def test_no_secrets_is_identity() -> None:
    assert Masker({}).mask("anything") == "anything"


# Made-up secrets in the real shapes (random-looking, never issued).
SHAPED = {
    "anthropic": "sk-ant-api03-Q7vX2mK9pL4nR8tY1wZ5bC3dF6gH0jS2aE4uI7oP9qW1eR3tY5uI7oP9qW-xYz12AA",
    "openai": "sk-proj-Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Ef3Hi5Kl7No9",
    "github classic": "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github oauth": "gho_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2",
    "github app": "ghs_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8",
    "github fine-grained": "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHi",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "slack bot": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "slack user": "xoxp-123456789012-1234567890123-AbCdEfGhIjKl",
    "gitlab": "glpat-Ab1Cd2Ef3Gh4Ij5Kl6Mn7",
    "google": "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "npm": "npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "hugging face": "hf_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7",
    "stripe": "sk_live_A1b2C3d4E5f6G7h8I9j0K1l2",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
}

# Text that must come out unchanged: it looks random or technical, but is no secret.
ORDINARY = [
    "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 (HEAD -> feature/TS-0042/task-001)",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "session 123e4567-e89b-12d3-a456-426614174000 uuid 0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
    "pip install scikit-learn; uses sk-learn-compatible-estimators and task-skills-overview",
    "the bearer of bad news; Authorization header; my_api_key = os.environ['X']",
    "see https://github.com/owner/repo.git and http://localhost:8080/path@v2",
    "ghp_short xoxb- AKIA AKIAshort github_pat_ eyJ.x.y risk-AbCdEfGh1234567890ZyXw",
    "/home/dev/.local/state/cpo/cpo.log  PATH=/usr/bin:/bin  PWD=/work/repo",
]


@pytest.mark.parametrize("name", SHAPED)
def test_well_known_token_shapes_are_masked_without_being_in_the_environment(name: str) -> None:
    token = SHAPED[name]
    text = f'printed {token}, and in JSON {{"key": "{token}"}} and at the end {token}'
    masked = Masker({}).mask(text)
    assert token not in masked
    assert masked == 'printed ****, and in JSON {"key": "****"} and at the end ****'


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    env = {"HOME": "/home/dev", "PWD": "/work/repo", "PATH": "/usr/bin:/bin", "XDG_SESSION_ID": "3"}
    assert Masker(env).mask(text) == text


def test_variables_whose_names_do_not_say_key_or_token() -> None:
    env = {
        "GH_PAT": "0123456789abcdefQWERTY",
        "DB_PASS": "correct-horse-battery",
        "DATABASE_URL": "postgres://app:s3cr3t-Passw0rd@db.example.com:5432/app",
        "REDIS_URL": "redis://:redis-only-password@cache:6379/0",
        "PATH": "/usr/local/bin:/usr/bin",
    }
    m = Masker(env)
    text = (
        "pat 0123456789abcdefQWERTY pass correct-horse-battery pw s3cr3t-Passw0rd"
        " redis-only-password path /usr/local/bin:/usr/bin"
    )
    assert m.mask(text) == "pat **** pass **** pw **** **** path /usr/local/bin:/usr/bin"


def test_the_password_of_any_url_with_credentials_is_masked() -> None:
    m = Masker({})
    assert m.mask("postgres://u:pw@db/app") == "postgres://u:****@db/app"
    assert (
        m.mask("git clone https://x-access-token:abc123@github.com/o/r.git")
        == "git clone https://x-access-token:****@github.com/o/r.git"
    )
    assert m.mask('{"url":"x://u:p","b":"c@d"}') == '{"url":"x://u:p","b":"c@d"}'  # not a URL


def test_a_secret_as_written_inside_json_is_masked() -> None:
    m = Masker({"MY_PASSWORD": 'quote"and\\backslash'})
    assert m.mask(r'{"text": "pw is quote\"and\\backslash"}') == '{"text": "pw is ****"}'


def test_safe_split_never_cuts_a_secret() -> None:
    m = Masker({"DB_PASSWORD": "correct horse battery staple"})
    # the line ends with the start of a secret (blanks and all): carry it to the next piece
    text = "x " * 5_000 + "correct horse"
    assert text[m.safe_split(text) :] == "correct horse"
    # ends with the start of a token after a blank: carry the token's run
    text = "some words ghp_A1b2C3d4E5"
    assert text[m.safe_split(text) :] == "ghp_A1b2C3d4E5"
    # ends with a blank: nothing to carry
    assert m.safe_split("plain words ") == len("plain words ")
    # a line without blanks is not carried whole, only its last MAX_HOLD characters
    text = "y" * 100_000
    assert m.safe_split(text) == 100_000 - secrets.MAX_HOLD


def test_a_prefix_inside_a_word_is_no_anchor() -> None:
    # `task-` holds `sk-`, but no token starts there: lines naming tasks skip the regex
    assert not anchored("feature/TS-0042/task-001 merged", "sk-")
    assert anchored("key=sk-ant-x", "sk-") and anchored("sk-x", "sk-")
    assert anchored("task-1 then (sk-x)", "sk-")
    assert not anchored("ask_me", "k_") and not anchored("", "sk-")


def test_a_token_after_a_non_ascii_letter_is_masked() -> None:
    """The quick anchor test must agree with the token regex, which only takes ASCII
    letters and digits for "inside a word": after `é` a token starts (it was left in clear)."""
    token = "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"
    assert anchored(f"é{token}", "sk-")
    assert Masker({}).mask(f"key é{token} end") == "key é**** end"

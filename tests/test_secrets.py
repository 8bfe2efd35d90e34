from __future__ import annotations

from cpo.secrets import Masker


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

"""Interfaces shared by the tasks of TS-0101. Tasks implement these; they do not change them."""


def greet(name: str) -> str:
    """Return 'Hello, <name>!' (name stripped; 'world' when empty)."""
    raise NotImplementedError


def shout(text: str) -> str:
    """Return text upper-cased with a trailing '!' (never two)."""
    raise NotImplementedError

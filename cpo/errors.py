"""Errors that reach the user as one clear line, and the exit codes they map to.

Every expected failure is a `CpoError`; anything else is an internal error whose
traceback goes to the log file, never to the screen (see `cli.main`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a task or validation failed, or a plan is invalid
    USAGE = 2  # bad input or usage
    INTERNAL = 3  # internal or git error
    INTERRUPTED = 130


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) with the user's input, in one line.

    `file` is relative to the parallel directory where possible; `field` is the
    dotted path inside it (``waves[0].tasks[1].id``) or ``""`` for the whole file.
    """

    file: str
    field: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class CpoError(Exception):
    """An expected failure, shown to the user as its message (one line each)."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        return [self.message] + ([self.hint] if self.hint else [])


class TaskFailure(CpoError):
    """A task that cannot go on, for a reason of its own: report.json's `reason` (a
    CpoError otherwise fails the task as `git_error`)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UsageError(CpoError):
    """Bad command-line usage, or input that cannot be read at all."""

    exit_code = ExitCode.USAGE


class PlanError(CpoError):
    """A parallel directory that was read but is not valid: every problem at once."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class GitError(CpoError):
    """A git operation failed; the message names the command and git's own words."""

    exit_code = ExitCode.INTERNAL


class PreflightError(CpoError):
    """The run cannot start: the environment is not ready (each line says how to fix it)."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = [message]

    @classmethod
    def of(cls, problems: list[str]) -> PreflightError:
        err = cls(problems[0])
        err.problems = list(problems)
        return err

    def lines(self) -> list[str]:
        return [*self.problems, *([self.hint] if self.hint else [])]


class LockedError(CpoError):
    """Another cpo run holds the parallel directory."""

    exit_code = ExitCode.USAGE

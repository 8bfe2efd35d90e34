"""The status words of a run, its waves and its tasks (README, `cpo run`): one type each.

They are `str` enums so that the report, the `[PROGRESS]` lines and `cpo status` write
the plain words and a comparison with the word itself still holds.
"""

from __future__ import annotations

from enum import Enum


class TaskStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"  # the agent succeeded (merged or not: see TaskRecord.merged)
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


class WaveStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    VALIDATING = "validating"
    COMPLETED = "completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class RunStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

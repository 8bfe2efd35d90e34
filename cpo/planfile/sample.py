"""The sample plan `cpo init --plan` writes (also shown in the README)."""

from __future__ import annotations

SAMPLE_PLAN = """\
# Example plan

Two work streams: `api` and `docs` run side by side, each stream's tasks one after another.
`cpo run PLAN.md` writes each task's status back into the table and its section.

## Progress Tracking

| Task | Stream | Name | Status | Date | Depends |
|------|--------|------|--------|------|---------|
| A1   | api    | Add the hello module | TASK:PENDING | | |
| A2   | api    | Test the hello module | TASK:PENDING | | |
| D1   | docs   | Write the usage notes | TASK:PENDING | | |
| D2   | docs   | Document the hello module | TASK:PENDING | | A1 |

## Task A1: Add the hello module
**Status**: TASK:PENDING

Create `example/hello.py` with a function `hello()` returning the string "hello".
Commit your work.

## Task A2: Test the hello module
**Status**: TASK:PENDING

Add `tests/test_hello.py` checking that `hello()` returns "hello". Commit your work.

## Task D1: Write the usage notes
**Status**: TASK:PENDING

Write `docs/usage.md`: how to install and run the project. Commit your work.

## Task D2: Document the hello module
**Status**: TASK:PENDING

Add a section on `example.hello` to `docs/usage.md`. Commit your work.
"""

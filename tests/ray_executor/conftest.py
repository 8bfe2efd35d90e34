"""The `ray` suite: cpo against a real local Ray cluster (tests/raycluster.py).

Every test here carries the `ray` marker (deselected by a plain `pytest`; `.ci/run` and
`pytest -m ray` run them). One head serves the whole session: starting Ray takes seconds
and most of a core, and the machine is small. Without the `ray` extra the suite is
skipped, saying which pip command installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.raycluster import RayHead, ray_head

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayHead]:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    with ray_head() as head:
        yield head

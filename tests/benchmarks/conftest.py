"""Benchmarks run on demand (`pytest tests/benchmarks -s`), never in the default test run."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.benchmark)


@pytest.fixture(scope="session", autouse=True)
def byte_compiled() -> None:
    """The package's modules byte-compiled, as pip leaves a regular install: with an editable install
    and PYTHONDONTWRITEBYTECODE set (as on some machines), every start would compile them again."""
    for folder in ("kubectl_plugins", "webhooks"):
        compileall.compile_dir(ROOT / folder, quiet=1)

"""Benchmarks run on demand (`pytest tests/benchmarks -s`), never in the default test run."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.benchmark)

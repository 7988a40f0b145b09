"""What a test does when a tool the test bed installs is missing.

On a developer's machine the test is skipped with the reason and the command that installs the tool.
Where ``CI`` is set, the same absence fails the test: CI's setup (``make test`` runs
``hack/testbin.sh`` and installs the dev extra) provides every one of these tools, so a missing one
is a broken setup, and a skip would let a green run hide it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail with it where ``CI`` is set."""
    if on_ci():
        pytest.fail(f"{reason} (CI is set, and CI's setup must provide it)", pytrace=False)
    pytest.skip(f"skipped because a tool the test bed installs is missing here (CI is not set): {reason}")

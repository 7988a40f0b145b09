"""What the queue and gang tests share: a training package whose replicas run until the test releases
them, and a wait on a condition that says what it saw when it times out."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The user's module: each replica waits until the file named by ``--release=PATH`` exists.
TASK = '''
"""Waits until the test releases it."""
import os, sys, time

release = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--release="))
while not os.path.exists(release):
    time.sleep(0.1)
print(os.environ.get("HOSTNAME", "?"), "done", flush=True)
'''


def write_package(folder: Path) -> Path:
    """``folder/trainer`` with ``task.py`` (:data:`TASK`), as a user's ``--package-path``."""
    package = folder / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(textwrap.dedent(TASK))
    return package


def wait_for(
    predicate: Callable[[], Any], what: str, *, seen: Callable[[], str], timeout: float = 120.0
) -> Any:
    """``predicate()``'s first true value; on timeout an AssertionError with what ``seen()`` says."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: {seen()[:6000]}")

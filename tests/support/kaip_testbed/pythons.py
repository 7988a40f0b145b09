"""Python interpreters older than kaip supports, found on this machine (PATH, pyenv), to run the krew
executable's version check for real rather than with a faked ``sys.version_info``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NAMES = ("python3.9", "python3.8", "python3.7", "python3.6", "python2.7")


def older_than(minimum: tuple[int, int]) -> dict[str, str]:
    """Each found interpreter older than ``minimum`` that actually runs, by its version ("3.9.18")."""
    candidates = [path for name in NAMES if (path := shutil.which(name))]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/*/bin/python"))
    found: dict[str, str] = {}
    for path in candidates:
        try:  # a pyenv shim of a version that is not selected exits 127: not a usable interpreter
            done = subprocess.run(
                [path, "-c", "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        version = done.stdout.strip()
        if done.returncode == 0 and tuple(int(x) for x in version.split(".")[:2]) < minimum:
            found.setdefault(version, path)
    return found

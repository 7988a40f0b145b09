"""Running the plugins in-process from a test, as kubectl would run them, and reading what they print."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaip.cli.app import run
from kaip.commands.ai_platform import cli


def ai(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *args: str
) -> tuple[int, str, str]:
    """``kubectl ai-platform ARGS --kubeconfig K -n NS``: its exit code, stdout and stderr.

    The cluster flags go before a ``--`` (what follows it is the training program's own arguments).
    """
    cut = args.index("--") if "--" in args else len(args)
    argv = [*args[:cut], "--kubeconfig", str(kubeconfig), "-n", namespace, *args[cut:]]
    code = run(cli, argv, prog_name="kubectl ai-platform")
    out, err = capsys.readouterr()
    return code, out, err

"""Entry points of the in-cluster processes, all in one image: ``kaip-webhook``, ``kaip-controller``,
``kaip-loader``, ``kaip-remediator``, ``kaip-nodecheck`` and ``kaip-alerts``. Each imports its process lazily so that one
does not pay for the others.

The base wheel installs these programs too (a console script cannot depend on an extra); what they
need beyond it comes with ``kaip[incluster]``. Without it a program that needs a missing module (the
webhook and the alert receiver need aiohttp, the remediator urllib3 for GitHub) prints one line naming that ``pip install``
and exits with :attr:`~kaip.errors.ExitCode.MISSING_EXTRA`, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

from kaip.errors import MissingExtra, needs_extra


def _run(module: str) -> None:
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else module
    try:
        with needs_extra("incluster", purpose=program):
            main = importlib.import_module(module).main
            code = main(sys.argv[1:])
    except MissingExtra as exc:
        print(exc.message, file=sys.stderr)  # "kaip-webhook needs aiohttp, which is not installed: …"
        sys.exit(int(exc.exit_code))
    sys.exit(code)


def webhook() -> None:
    """The admission webhook server (credentials validation and injection, data-preload gate)."""
    _run("kaip_incluster.server.main")


def controller() -> None:
    """The data-loader controller (PVCs annotated for preload -> loader Jobs -> conditions)."""
    _run("kaip_incluster.controller.main")


def loader() -> None:
    """The loader that runs inside a data-loader Job and fills the mounted volume."""
    _run("kaip_incluster.loader.main")


def remediator() -> None:
    """The node remediation controller (rules, disruption budgets, circuit breaker, notifier)."""
    _run("kaip_incluster.remediation.main")


def nodecheck() -> None:
    """A node-problem-detector custom plugin check (run on the node by node-problem-detector)."""
    _run("kaip_incluster.nodechecks.__main__")


def alerts() -> None:
    """The Alertmanager webhook receiver (one GitHub issue per alert group)."""
    _run("kaip_incluster.alerts.main")

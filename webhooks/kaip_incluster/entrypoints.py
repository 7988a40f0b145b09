"""Entry points of the in-cluster processes, all in one image: ``kaip-webhook``, ``kaip-controller``,
``kaip-loader``, ``kaip-remediator`` and ``kaip-nodecheck``. Each imports its process lazily so that one
does not pay for the others."""

from __future__ import annotations

import importlib
import sys


def _run(module: str) -> None:
    main = importlib.import_module(module).main
    sys.exit(main(sys.argv[1:]))


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

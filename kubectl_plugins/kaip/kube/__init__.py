"""The only package that talks to the Kubernetes API.

Rule: requests are decided as plain data (method, path, query, body), sent by one thin loop in
:mod:`kaip.kube.client`, and every answer is read in one place (:func:`kaip.kube.errors.from_status`).
Objects travel as plain ``dict`` (no typed-model decoding: it is what makes 5,000 Nodes cheap).
Cluster access is resolved once, in kubectl's order, by :mod:`kaip.kube.config`.
The HTTP stack is imported on first use, so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kaip.kube.client import Kube, connect

__all__ = ["Kube", "connect"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kaip.kube import client

        return getattr(client, name)
    raise AttributeError(name)

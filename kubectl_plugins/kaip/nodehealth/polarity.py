"""Which status of a node condition means healthy, and the admin's extension of that table.

Built in: ``Ready`` and every ``*Ready`` condition is healthy when True; the kubelet's pressure
conditions, node-problem-detector's conditions and the seed's GPU conditions are healthy when False.
A condition found in no table is judged by node-problem-detector's convention (True = problem) and
marked *assumed*, so that it is shown, never dropped; a name ending in ``NotReady``, ``Unavailable``
or ``Failed`` is never taken for a ``*Ready`` one. ``Unknown`` is abnormal for every condition.
Precedence: the file, then the ConfigMap, then the built-in table, for exact names and patterns alike.

The admin's file (``--polarity-file`` or the ConfigMap key ``polarity.yaml``)::

    healthyWhen:
      NVLinkReady: "True"       # a vendor condition that reads like Ready
      VendorGPUFault: "False"
      "Acme*Problem": "False"   # fnmatch patterns are allowed
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaip.errors import UsageError
from kaip.resources import nodes

_STATUSES = {"True": True, "False": False}


@dataclass(frozen=True)
class Layer:
    """One source's table: ``healthy_when_true`` per exact name and per fnmatch pattern."""

    exact: Mapping[str, bool] = field(default_factory=dict)
    patterns: tuple[tuple[str, bool], ...] = ()

    def lookup(self, ctype: str) -> bool | None:
        if ctype in self.exact:
            return self.exact[ctype]
        for pattern, when_true in self.patterns:
            if fnmatch.fnmatchcase(ctype, pattern):
                return when_true
        return None


@dataclass(frozen=True)
class Polarity:
    """Layers of tables, the first that knows a condition type decides (file, ConfigMap, built-in):
    within a layer an exact name before a pattern, but an earlier layer's pattern before a later
    layer's exact name. Answers are remembered per type (a cluster has a few dozen types)."""

    layers: tuple[Layer, ...] = ()
    _memo: dict[str, tuple[str, bool]] = field(default_factory=dict, compare=False, repr=False)

    def healthy_status(self, ctype: str) -> tuple[str, bool]:
        """The status that means healthy for ``ctype``, and whether that is only assumed."""
        try:
            return self._memo[ctype]
        except KeyError:
            found = self._memo[ctype] = self._decide(ctype)
            return found

    def _decide(self, ctype: str) -> tuple[str, bool]:
        for layer in self.layers:
            when_true = layer.lookup(ctype)
            if when_true is not None:
                return _name(when_true), False
        # node-problem-detector's convention (True = problem), never "healthy when True" for a
        # name that says the opposite (KubeletNotReady ends in Ready too).
        if ctype.endswith(nodes.PROBLEM_SUFFIXES):
            return "False", True
        if ctype.endswith("Ready"):
            return "True", False
        return "False", True

    def is_abnormal(self, ctype: str, status: str) -> bool:
        healthy, _ = self.healthy_status(ctype)
        return status != healthy

    def extended(self, other: Polarity) -> Polarity:
        """This table with ``other``'s layers taking precedence."""
        return Polarity(other.layers + self.layers)


def _name(when_true: bool) -> str:
    return "True" if when_true else "False"


def builtin() -> Polarity:
    table = {nodes.READY: True}
    for ctype in (
        *nodes.KUBELET_PROBLEM_CONDITIONS,
        *nodes.NPD_CONDITIONS,
        *nodes.SEED_CONDITIONS,
        *nodes.NODE_CHECK_CONDITIONS,
    ):
        table[ctype] = False
    return Polarity((Layer(table),))


def parse(document: Any, *, source: str) -> Polarity:
    """Read the admin's table (a parsed YAML/JSON document); say exactly what is wrong otherwise."""
    if document is None:
        return Polarity()
    if not isinstance(document, dict) or not isinstance(document.get("healthyWhen"), dict):
        raise UsageError(f'{source}: expected a mapping "healthyWhen: {{CONDITION: "True"|"False"}}"')
    exact: dict[str, bool] = {}
    patterns: list[tuple[str, bool]] = []
    for ctype, status in document["healthyWhen"].items():
        text = str(status) if not isinstance(status, bool) else _name(status)
        if text not in _STATUSES:
            raise UsageError(f'{source}: healthyWhen.{ctype} is "{status}"; use "True" or "False"')
        if any(c in str(ctype) for c in "*?["):
            patterns.append((str(ctype), _STATUSES[text]))
        else:
            exact[str(ctype)] = _STATUSES[text]
    return Polarity((Layer(exact, tuple(patterns)),))


def parse_text(text: str, *, source: str) -> Polarity:
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return parse(document, source=source)

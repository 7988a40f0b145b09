"""Which extended resources are accelerators, of which vendor, and which label names the product.

Pure. The table is data: the built-in vendors (:data:`kaip.resources.nodes.ACCELERATOR_VENDORS`:
NVIDIA, AMD, Intel, Habana, AWS Neuron, Google TPU), extended by the admin in the ConfigMap key
``accelerators.yaml`` (the admin's vendors are tried first)::

    vendors:
      mncore:
        resources: ["preferred.jp/mncore*"]     # fnmatch patterns
        productLabels: ["preferred.jp/mncore.product"]

An extended resource of no listed vendor whose name holds a word such as ``gpu`` (``example.com/
vgpu``) is shown as an accelerator of an unknown vendor, never hidden. Answers are remembered per
resource name: a cluster has a handful of names, read on every one of its nodes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaip.errors import UsageError
from kaip.resources import nodes

#: The vendor of an accelerator that no table lists but whose name looks like one.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Vendor:
    name: str
    resources: tuple[str, ...]  # fnmatch patterns
    product_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcceleratorTable:
    vendors: tuple[Vendor, ...]
    _memo: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def vendor(self, resource: str) -> str | None:
        """The vendor of ``resource``, :data:`UNKNOWN` for a look-alike, None when no accelerator."""
        try:
            return self._memo[resource]
        except KeyError:
            found = self._memo[resource] = self._classify(resource)
            return found

    def _classify(self, resource: str) -> str | None:
        for v in self.vendors:
            if any(fnmatch.fnmatchcase(resource, p) for p in v.resources):
                return v.name
        domain, sep, _ = resource.partition("/")
        if not sep or domain.endswith(nodes.KUBERNETES_DOMAINS):
            return None
        lowered = resource.lower()
        return UNKNOWN if any(w in lowered for w in nodes.ACCELERATOR_WORDS) else None

    def is_accelerator(self, resource: str) -> bool:
        return self.vendor(resource) is not None

    def product(self, labels: Mapping[str, str]) -> str:
        """The first product label (in table order) the node carries; empty when none."""
        for v in self.vendors:
            for label in v.product_labels:
                if labels.get(label):
                    return labels[label]
        return ""

    def extended(self, other: AcceleratorTable) -> AcceleratorTable:
        """This table with ``other``'s vendors tried first."""
        return AcceleratorTable(other.vendors + self.vendors)


def builtin() -> AcceleratorTable:
    return AcceleratorTable(tuple(Vendor(n, r, p) for n, r, p in nodes.ACCELERATOR_VENDORS))


BUILTIN = builtin()


def _strings(value: Any, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: expected a list of strings")
    return tuple(value)


def parse(document: Any, *, source: str) -> AcceleratorTable:
    """Read the admin's vendors (a parsed YAML document); say exactly what is wrong otherwise."""
    if document is None:
        return AcceleratorTable(())
    if not isinstance(document, dict) or not isinstance(document.get("vendors"), dict):
        raise UsageError(f'{source}: expected a mapping "vendors: {{NAME: {{resources: [...]}}}}"')
    vendors = []
    for name, entry in document["vendors"].items():
        where = f"{source}: vendors.{name}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a mapping with resources and productLabels")
        resources = _strings(entry.get("resources"), where=f"{where}.resources")
        if not resources:
            raise UsageError(f"{where}.resources: name at least one resource (fnmatch pattern)")
        vendors.append(
            Vendor(str(name), resources, _strings(entry.get("productLabels"), where=f"{where}.productLabels"))
        )
    return AcceleratorTable(tuple(vendors))


def parse_text(text: str, *, source: str) -> AcceleratorTable:
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return parse(document, source=source)

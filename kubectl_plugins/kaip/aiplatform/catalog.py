"""The cluster catalog: what gcloud's machine types, accelerators, scale tiers and runtime versions
mean on this cluster (resources, node selection, tolerations, images).

The built-in defaults (:mod:`kaip.aiplatform.builtin_catalog`) follow AI Platform's documented machine
types and tiers; the cluster admin overrides or extends any entry with the ConfigMap
``kaip-system/ai-platform-catalog`` (key ``catalog.yaml``, the same layout as ``BUILTIN``). Pure:
parsing, merging and lookups.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.aiplatform.builtin_catalog import BUILTIN, GPU, PRODUCT_LABEL
from kaip.errors import OperationFailed, UsageError


@dataclass(frozen=True)
class Placement:
    """What a catalog entry adds to a Pod: resources, where it may run."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    #: Node selector requirements that must all hold (one required node affinity term).
    match_expressions: tuple[Mapping[str, Any], ...] = ()


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


@dataclass(frozen=True)
class Catalog:
    """The merged catalog document, with lookups that name the missing entry and its alternatives."""

    doc: Mapping[str, Any]
    source: str = "built-in"

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.doc.get(name) or {}
        return value if isinstance(value, Mapping) else {}

    def _entry(self, section: str, name: str, what: str) -> Mapping[str, Any]:
        entries = self.section(section)
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise UsageError(f"unknown {what} {name!r} in the {self.source} catalog (known: {known})")
        entry = entries[name]
        return entry if isinstance(entry, Mapping) else {}

    def machine(self, name: str) -> Mapping[str, Any]:
        return self._entry("machineTypes", name, "machine type")

    def accelerator(self, name: str) -> Mapping[str, Any]:
        if name.startswith("tpu-"):
            raise UsageError(f"accelerator type {name!r} is a Cloud TPU, which exists only on Google Cloud")
        return self._entry("accelerators", name, "accelerator type")

    def scale_tier(self, name: str) -> Mapping[str, Any]:
        if name == "basic-tpu":
            raise UsageError("--scale-tier=basic-tpu needs a Cloud TPU, which exists only on Google Cloud")
        return self._entry("scaleTiers", name, "scale tier")

    def runtime(self, version: str) -> Mapping[str, Any]:
        return self._entry("runtimeVersions", version, "runtime version")

    def region(self, name: str) -> Mapping[str, Any] | None:
        regions = self.section("regions")
        return self._entry("regions", name, "region") if regions else None

    def secondary_network(self, name: str) -> Mapping[str, Any]:
        return self.section("secondaryNetworks").get(name) or {}

    @property
    def default_runtime(self) -> str:
        return str(self.doc.get("defaultRuntimeVersion") or "")

    def image(self, role: str) -> str:
        return str(self.section("images").get(role) or BUILTIN["images"][role])

    def fetch_image(self, scheme: str) -> str:
        fetch = self.section("images").get("fetch") or {}
        return str(fetch.get(scheme) or BUILTIN["images"]["fetch"][scheme])

    # -- images ----------------------------------------------------------------------------------
    def runtime_image(self, *, version: str, framework: str, python: str | None, gpu: bool) -> str:
        """The image of ``framework`` in runtime ``version`` that carries ``python`` (default: the
        newest Python served), for a GPU replica or a CPU one."""
        images = self.runtime(version).get("images") or {}
        images = images if isinstance(images, Mapping) else {}
        entry = images.get(framework)
        if isinstance(entry, Mapping) and ("cpu" in entry or "gpu" in entry):
            return self._flat_image(entry, version=version, framework=framework, python=python, gpu=gpu)
        where = f"runtimeVersions.{version}.images.{framework}"
        by_python = self._by_python(entry, where=where) if isinstance(entry, Mapping) else {}
        if not by_python:
            frameworks = ", ".join(sorted(str(k) for k, v in images.items() if v)) or "none"
            raise UsageError(
                f"runtime version {version} has no image for --framework {framework} in the {self.source} "
                f"catalog (frameworks served: {frameworks}); give --master-image-uri or ask the admin to "
                "add one"
            )
        served = sorted(by_python, key=_version_key)
        chosen = python or served[-1]
        if chosen not in by_python:
            raise UsageError(
                f"--python-version {chosen} is not served with runtime version {version} for --framework "
                f"{framework} (served: {', '.join(served)})"
            )
        variant = "gpu" if gpu else "cpu"
        image = by_python[chosen].get(variant)
        if not image:
            others = [p for p in served if by_python[p].get(variant)]
            hint = f" (Python versions with one: {', '.join(others)})" if others else ""
            raise UsageError(
                f"runtime version {version} has no {variant.upper()} image for --framework {framework} with "
                f"Python {chosen} in the {self.source} catalog{hint}; give --master-image-uri or ask the "
                "admin to add one"
            )
        return str(image)

    def _by_python(self, entry: Mapping[Any, Any], *, where: str) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for key, images in entry.items():
            if not isinstance(key, str):
                # YAML reads 3.10 as the number 3.1: refuse rather than serve the wrong Python.
                raise OperationFailed(
                    f"catalog {self.source}: {where}: Python version {key!r} must be a quoted string "
                    '(e.g. "3.10")'
                )
            if isinstance(images, Mapping):
                out[key] = images
            elif images is not None:
                raise OperationFailed(
                    f"catalog {self.source}: {where}.{key} must be a mapping with keys cpu and gpu"
                )
        return out

    def _flat_image(
        self, entry: Mapping[str, Any], *, version: str, framework: str, python: str | None, gpu: bool
    ) -> str:
        """The layout before per-Python images (``images.FRAMEWORK.{cpu,gpu}``), still honoured for
        admins' catalogs: one image for every Python in the runtime's ``pythonVersions``."""
        allowed = [str(v) for v in self.runtime(version).get("pythonVersions") or []]
        if python and allowed and python not in allowed:
            raise UsageError(
                f"--python-version {python} is not served with runtime version {version} for --framework "
                f"{framework} (served: {', '.join(allowed)})"
            )
        image = entry.get("gpu" if gpu else "cpu") or entry.get("cpu")
        if not image:
            raise UsageError(
                f"runtime version {version} has no image for --framework {framework} in the {self.source} "
                "catalog; give --master-image-uri or ask the admin to add one"
            )
        return str(image)

    # -- placement -------------------------------------------------------------------------------
    def placement(
        self, *, machine_type: str, accelerator: Mapping[str, Any] | None, region: str | None = None
    ) -> Placement:
        """Resources and placement of one replica of ``machine_type`` with an optional accelerator,
        in an optional catalog region."""
        machine = self.machine(machine_type)
        requests = {k: str(machine[k]) for k in ("cpu", "memory") if machine.get(k)}
        limits = {"memory": requests["memory"]} if "memory" in requests else {}
        tolerations = list(machine.get("tolerations") or [])
        sources: list[tuple[str, Mapping[str, Any]]] = [(f"machineTypes.{machine_type}", machine)]
        products: list[str] = []
        acc = accelerator or machine.get("accelerator")
        if acc:
            name = str(acc["type"])
            entry = self.accelerator(name)
            limits[str(entry.get("resource") or GPU)] = str(acc.get("count", 1))
            tolerations += [t for t in entry.get("tolerations") or [] if t not in tolerations]
            sources.append((f"accelerators.{name}", entry))
            products = self._strings(entry.get("products"), where=f"accelerators.{name}.products")
        where = self.region(region) if region else None
        if where is not None:
            sources.append((f"regions.{region}", where))
        selector, expressions = self._node_selection(sources, products)
        return Placement(requests, limits, selector, tuple(tolerations), tuple(expressions))

    def _node_selection(
        self, sources: Sequence[tuple[str, Mapping[str, Any]]], products: Sequence[str]
    ) -> tuple[dict[str, str], list[Mapping[str, Any]]]:
        """Node selectors merged in order (a later one wins a key) and the requirements, all ANDed.

        An explicit choice of the product label (a ``nodeSelector`` or a ``matchExpressions`` entry on
        it) overrides the accelerator's ``products``, so the two never contradict each other."""
        selector: dict[str, str] = {}
        expressions: list[Mapping[str, Any]] = []
        for where, entry in sources:
            selector.update({str(k): str(v) for k, v in (entry.get("nodeSelector") or {}).items()})
            for requirement in self._requirements(entry.get("matchExpressions"), where=where):
                if requirement not in expressions:
                    expressions.append(requirement)
        constrained = set(selector) | {str(e.get("key")) for e in expressions}
        if products and PRODUCT_LABEL not in constrained:
            expressions.append({"key": PRODUCT_LABEL, "operator": "In", "values": list(products)})
        return selector, expressions

    def _strings(self, value: Any, *, where: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
            raise OperationFailed(
                f"catalog {self.source}: {where} must be a list (of {PRODUCT_LABEL} values)"
            )
        return [str(v) for v in value]

    def _requirements(self, value: Any, *, where: str) -> list[Mapping[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise OperationFailed(f"catalog {self.source}: {where}.matchExpressions must be a list")
        for item in value:
            if not isinstance(item, Mapping) or not item.get("key") or not item.get("operator"):
                raise OperationFailed(
                    f"catalog {self.source}: {where}.matchExpressions entries need key, operator "
                    "(and values for In, NotIn, Gt, Lt), as in a Pod's node affinity"
                )
        return [copy.deepcopy(dict(item)) for item in value]  # the rendered job never shares a list


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """The admin's document over the built-in one: mappings merge key by key, anything else replaces.

    An entry set to null removes it (``machineTypes: {n1-highcpu-96: null}``).
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def from_configmap_text(text: str | None, *, where: str) -> Catalog:
    """The catalog from the ConfigMap's ``catalog.yaml`` merged over the built-in one."""
    if not text:
        return Catalog(BUILTIN)
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OperationFailed(f"catalog {where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(doc, Mapping):
        raise OperationFailed(f"catalog {where}: catalog.yaml must be a mapping")
    unknown = sorted(set(doc) - set(BUILTIN))
    if unknown:
        raise OperationFailed(f"catalog {where}: unknown section(s) {', '.join(unknown)}")
    return Catalog(merge(BUILTIN, doc), source=f"cluster ({where})")

"""Tenancy and placement of every replica: the UID, GID and fsGroup a tenant's files on shared storage
need (``--run-as-user``, ``--run-as-group``, ``--fs-group``), and ``--exclusive``: Guaranteed QoS with
whole CPUs, so the kubelet's CPU Manager (static policy) gives the replica CPUs of its own.

The catalog gives defaults per namespace, chosen by a namespace label::

    tenancy:
      label: kaip.dev/tenant                 # the namespace label that names the tenant (this default)
      default: {exclusive: true}             # every namespace
      tenants:
        lab-a: {runAsUser: 20001, runAsGroup: 20001, fsGroup: 20001}

A flag overrides the tenant's value, the tenant's the default's. Pure.

Guaranteed QoS (Kubernetes, "Pod Quality of Service Classes"): every container, init containers
included, has CPU and memory limits equal to its requests; the static CPU Manager policy gives
exclusive CPUs to such a container whose CPU request is a whole number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from kaip.aiplatform.catalog import Catalog
from kaip.errors import OperationFailed, UsageError

DEFAULT_LABEL = "kaip.dev/tenant"
_KEYS = {
    "runAsUser": "run_as_user",
    "runAsGroup": "run_as_group",
    "fsGroup": "fs_group",
    "exclusive": "exclusive",
}


@dataclass(frozen=True)
class Tenancy:
    """What the replicas run as and how they are placed; None: not chosen (the default applies)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    fs_group: int | None = None
    exclusive: bool | None = None

    def over(self, defaults: Tenancy) -> Tenancy:
        """This choice with ``defaults`` filling what it leaves open."""
        return replace(
            self, **{f.name: getattr(defaults, f.name) for f in fields(self) if getattr(self, f.name) is None}
        )

    def security_context(self) -> dict[str, int]:
        """The Pod's ``securityContext`` fields (empty when nothing is chosen)."""
        pairs = (
            ("runAsUser", self.run_as_user),
            ("runAsGroup", self.run_as_group),
            ("fsGroup", self.fs_group),
        )
        return {key: value for key, value in pairs if value is not None}


def label_of(catalog: Catalog) -> str | None:
    """The namespace label the catalog's tenants are chosen by; None when it names no tenants (so the
    namespace need not be read)."""
    section = catalog.section("tenancy")
    return str(section.get("label") or DEFAULT_LABEL) if section.get("tenants") else None


def defaults(catalog: Catalog, labels: Mapping[str, str]) -> Tenancy:
    """The catalog's tenancy for a namespace with ``labels``: its tenant's entry over the default."""
    section = catalog.section("tenancy")
    where = f"catalog {catalog.source}: tenancy"
    chosen = _entry(section.get("default"), where=f"{where}.default")
    tenant = labels.get(label_of(catalog) or DEFAULT_LABEL)
    tenants = section.get("tenants") or {}
    if tenant and isinstance(tenants, Mapping) and tenant in tenants:
        chosen = _entry(tenants[tenant], where=f"{where}.tenants.{tenant}").over(chosen)
    return chosen


def _entry(value: Any, *, where: str) -> Tenancy:
    if value is None:
        return Tenancy()
    if not isinstance(value, Mapping) or set(value) - set(_KEYS):
        raise OperationFailed(f"{where} must be a mapping of {', '.join(_KEYS)}")
    out: dict[str, Any] = {}
    for key, attr in _KEYS.items():
        item = value.get(key)
        if item is None:
            continue
        if key == "exclusive" and not isinstance(item, bool):
            raise OperationFailed(f"{where}.exclusive must be true or false")
        if key != "exclusive" and (isinstance(item, bool) or not isinstance(item, int) or item < 0):
            raise OperationFailed(f"{where}.{key} must be a whole number")
        out[attr] = item
    return Tenancy(**out)


def check_ids(tenancy: Tenancy) -> Tenancy:
    """The flags' IDs, refused when negative (as the API server would, with less to read)."""
    for flag, value in (
        ("--run-as-user", tenancy.run_as_user),
        ("--run-as-group", tenancy.run_as_group),
        ("--fs-group", tenancy.fs_group),
    ):
        if value is not None and value < 0:
            raise UsageError(f"{flag} {value}: must be 0 or more")
    return tenancy


def whole_cpus(quantity: str) -> Decimal | None:
    """A CPU quantity (``8``, ``8000m``, ``1.5``) as a number of CPUs; None when not a quantity."""
    text = quantity.strip()
    try:
        return Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    except InvalidOperation:
        return None


def guaranteed(
    requests: Mapping[str, str], limits: Mapping[str, str], *, machine_type: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Requests and limits of an ``--exclusive`` replica: equal, with whole CPUs and memory."""
    cpus = whole_cpus(str(requests.get("cpu") or ""))
    if cpus is None or "memory" not in requests:
        raise UsageError(
            f"--exclusive needs CPUs and memory of machine type {machine_type}, and the catalog gives "
            "it none; choose a machine type that has both"
        )
    if cpus != cpus.to_integral_value() or cpus < 1:
        raise UsageError(
            f"--exclusive needs whole CPUs for the CPU Manager to pin, and machine type {machine_type} "
            f"has {requests['cpu']}; choose a machine type with whole CPUs"
        )
    both = {"cpu": str(int(cpus)), "memory": str(requests["memory"])}
    both.update({k: v for k, v in limits.items() if k not in both})
    return dict(both), dict(both)


def init_resources(init: Mapping[str, Any], main: Mapping[str, Any]) -> dict[str, Any]:
    """Resources of an init container of an ``--exclusive`` replica: requests equal to limits for CPU
    and memory (a Pod is Guaranteed only if its init containers are too), each the init container's
    own limit, else its request, else the main container's. An init container's requests count only
    while it runs, before the main one, so the main container's cost no room."""
    own = {**(init.get("requests") or {}), **(init.get("limits") or {})}
    both = {k: own.get(k) or (main.get("limits") or {})[k] for k in ("cpu", "memory")}
    return {"requests": dict(both), "limits": dict(both)}


def operator_notes(job: Mapping[str, Any], chosen: Tenancy) -> list[str]:
    """What keeps an ``--exclusive`` job's Pods from Guaranteed QoS that kaip cannot change: the
    init container training-operator adds to PyTorchJob workers (``init-pytorch``, requests below its
    limits unless the operator runs with ``--pytorch-init-container-template-file``)."""
    from kaip.resources import kubeflow as kf

    specs = (job.get("spec") or {}).get(kf.PYTORCHJOB.replica_key) or {}
    if not chosen.exclusive or job.get("kind") != kf.PYTORCHJOB.resource.kind or "Worker" not in specs:
        return []
    return [
        "--exclusive: training-operator adds its init-pytorch container to the PyTorchJob's workers with "
        "requests below limits, which makes them Burstable (not pinned) unless the operator runs with "
        "--pytorch-init-container-template-file giving it requests equal to limits"
    ]

"""The data-preload mutator: holds a Pod behind ``kaip.dev/data-preload`` while its data is not loaded.

A Pod that mounts a PVC annotated ``preload.kaip.dev/source`` whose ``DataLoaded`` condition is not
True gets ``spec.schedulingGates: [{name: kaip.dev/data-preload}]``; the data-loader controller
removes the gate once every such PVC is loaded. A PVC the server does not know (not created yet)
also gates the Pod: the controller releases it as soon as the PVC exists and is not, or no longer,
waiting for data. The loader's own Pods (label ``app.kubernetes.io/component: kaip-data-loader``)
are never gated: they are what fills the volume.

Pure: the server passes a lookup of PVC state (plain data from its watch cache) to
:func:`preload_gate`, which returns a mutator for the chain of :mod:`kaip_incluster.admission.pods`.
Idempotent: a Pod that already carries the gate gets no operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import labels_of, spec_of
from kaip.preload.contract import is_preload
from kaip.preload.status import is_loaded
from kaip.resources import preload as names
from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.pods import Mutation, Mutator, PodContext


@dataclass(frozen=True)
class ClaimState:
    """What the server knows of a PVC: whether it asks for a preload and whether that is done."""

    preload: bool
    loaded: bool


#: ``(namespace, claim name) -> state``; None when the PVC does not exist.
ClaimLookup = Callable[[str, str], ClaimState | None]


def claim_state(pvc: Mapping[str, Any]) -> ClaimState:
    """A PVC object reduced to what the gate needs (for the server's watch cache)."""
    return ClaimState(preload=is_preload(pvc), loaded=is_loaded(pvc))


def _map(value: Any) -> Mapping[str, Any]:
    """A field as a mapping; anything else (a malformed review) as empty, so nothing crashes on it."""
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _claims(pod: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for volume in _list(spec_of(pod).get("volumes")):
        claim = _map(_map(volume).get("persistentVolumeClaim")).get("claimName")
        if isinstance(claim, str) and claim and claim not in found:
            found.append(claim)
    return found


def _gated(pod: Mapping[str, Any]) -> bool:
    gates = _list(spec_of(pod).get("schedulingGates"))
    return any(_map(g).get("name") == names.SCHEDULING_GATE for g in gates)


def _is_loader(pod: Mapping[str, Any]) -> bool:
    return labels_of(pod).get(names.LABEL_COMPONENT) == names.COMPONENT_LOADER


def waiting_claims(pod: Mapping[str, Any], *, namespace: str, lookup: ClaimLookup) -> list[str]:
    """The PVCs that hold this Pod: preload PVCs not loaded yet, and PVCs not known yet."""
    waiting = []
    for claim in _claims(pod):
        state = lookup(namespace, claim)
        if state is None or (state.preload and not state.loaded):
            waiting.append(claim)
    return waiting


def gate_pod(pod: Mapping[str, Any], *, namespace: str, lookup: ClaimLookup) -> Mutation:
    if _is_loader(pod) or _gated(pod) or spec_of(pod).get("nodeName"):
        return Mutation()  # a Pod bound to a node at creation is past the scheduler: a gate is refused
    waiting = waiting_claims(pod, namespace=namespace, lookup=lookup)
    if not waiting:
        return Mutation()
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("schedulingGates", []), list):
        return Mutation()  # malformed: the API server refuses the Pod on its own
    op = jsonpatch.append(spec, "/spec", "schedulingGates", {"name": names.SCHEDULING_GATE})
    listed = ", ".join(f'"{c}"' for c in waiting)
    return Mutation(
        ops=[op],
        warnings=[
            f"the Pod waits (scheduling gate {names.SCHEDULING_GATE}) until the data of PVC {listed} is loaded; "
            f"see `kubectl get pvc` condition {names.CONDITION_LOADED}"
        ],
    )


def preload_gate(lookup: ClaimLookup) -> Mutator:
    """The mutator for the chain, bound to the server's PVC lookup."""

    def gate_preloading_pods(pod: Mapping[str, Any], context: PodContext) -> Mutation:
        return gate_pod(pod, namespace=context.namespace, lookup=lookup)

    return gate_preloading_pods

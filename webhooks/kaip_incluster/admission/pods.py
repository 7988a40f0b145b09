"""Pod mutation as a chain of independent, pure mutators.

A mutator is a function ``(pod, context) -> Mutation``: it reads the Pod (a plain dict) and the
:class:`PodContext` the server looked up, and returns add-only JSONPatch operations and warnings, or
raises :class:`~kaip_incluster.admission.errors.Refused`. Mutators do not know about each other:
:func:`mutate_pod` runs them in order, each on the Pod as patched by the ones before it, and joins
their operations into one patch. Every mutator must be idempotent (run on its own output it returns
no operations), because the apiserver re-invokes the webhook (``reinvocationPolicy: IfNeeded``).

Extension point: the chain is :data:`kaip_incluster.admission.mutators.MUTATORS`. To add one (for
example the data-preload scheduling gate ``kaip.dev/data-preload`` of issue 4):

1. write ``def gate_preloading_pods(pod, context) -> Mutation`` in its own module of this package;
2. if it needs cluster state (PVCs and their ``DataLoaded`` condition), add a field with a default
   to :class:`PodContext` holding that state as plain data, and fill it in the server
   (:mod:`kaip_incluster.server.handlers`) from a watch cache, as ``secrets`` is filled;
3. append the function to ``MUTATORS`` and unit-test it on plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.kube.objects import spec_of
from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.errors import Refused
from kaip_incluster.admission.review import Verdict

#: (``initContainers`` | ``containers``) — ephemeral containers are never touched.
CONTAINER_LISTS = ("initContainers", "containers")


@dataclass(frozen=True)
class SecretInfo:
    """What the server knows of a Secret: never its values, only its type and key names."""

    name: str
    type: str
    keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ServiceAccountInfo:
    name: str
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodContext:
    """What the server looked up for one Pod, as plain data."""

    namespace: str
    service_account: ServiceAccountInfo | None = None
    #: Secrets the Pod refers to, by name; ``None`` when the namespace has no such Secret.
    secrets: Mapping[str, SecretInfo | None] = field(default_factory=dict)
    dry_run: bool = False


@dataclass(frozen=True)
class Mutation:
    ops: Sequence[jsonpatch.Op] = ()
    warnings: Sequence[str] = ()


Mutator = Callable[[Mapping[str, Any], PodContext], Mutation]


@dataclass(frozen=True)
class ContainerRef:
    """A container and the JSON pointer of it in the Pod."""

    path: str
    container: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.container.get("name") or "")


def list_of(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one (the apiserver sends typed objects; be safe anyway)."""
    return value if isinstance(value, list) else []


def containers(pod: Mapping[str, Any]) -> Iterator[ContainerRef]:
    """Init containers (native sidecars included), then containers."""
    spec = spec_of(pod)
    for key in CONTAINER_LISTS:
        for index, item in enumerate(list_of(spec.get(key))):
            if isinstance(item, dict):
                yield ContainerRef(f"/spec/{key}/{index}", item)


def mutate_pod(pod: Mapping[str, Any], context: PodContext, *, mutators: Sequence[Mutator]) -> Verdict:
    """Run the chain; a refusal by any mutator refuses the Pod."""
    current: Mapping[str, Any] = pod
    ops: list[jsonpatch.Op] = []
    warnings: list[str] = []
    for position, mutator in enumerate(mutators, start=1):
        try:
            result = mutator(current, context)
        except Refused as exc:
            return Verdict(allowed=False, code=exc.code, message=exc.message, warnings=warnings)
        if result.ops:
            if position < len(mutators):  # the last mutator's output is read by no one
                current = jsonpatch.apply(current, result.ops)
            ops.extend(result.ops)
        warnings.extend(result.warnings)
    return Verdict(patch=ops, warnings=warnings)

"""Which queueing or gang system schedules a job, and the job's run policy: gcloud's
``scheduling.maxRunningTime`` and ``maxWaitTime``, ``--gang``, ``--queue`` and ``--priority`` as
Kueue, Volcano or scheduler-plugins read them. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.training import parse_duration
from kaip.errors import UsageError
from kaip.resources import quantities

SCHEDULERS = ("kueue", "volcano", "scheduler-plugins", "none")
#: The schedulers that start a job's Pods all together or none (the operator makes their PodGroup).
GANG_SCHEDULERS = ("volcano", "scheduler-plugins")
#: Where ``--queue`` names a Kueue LocalQueue (label ``kueue.x-k8s.io/queue-name``): Kueue alone, or
#: Kueue for quota in front of the coscheduling scheduler (which has no queues of its own).
KUEUE_QUEUES = ("kueue", "scheduler-plugins")
#: The catalog's ``scheduling.gang``: which jobs are gang-scheduled without ``--gang``.
GANG_DEFAULTS = ("multiReplicaGPU", "always", "never")
#: gcloud's default scheduling.maxRunningTime (7 days).
DEFAULT_MAX_RUNNING_SECONDS = 604800


def choose_scheduler(chosen: str | None, catalog: Catalog) -> str:
    """``--scheduler``, else the catalog's ``scheduling.queueing``, else none."""
    name = chosen or str(catalog.section("scheduling").get("queueing") or "none")
    if name not in SCHEDULERS:
        raise UsageError(f"--scheduler {name!r}: must be one of {', '.join(SCHEDULERS)}")
    return name


def wants_gang(asked: bool, *, scheduler: str, catalog: Catalog, replicas: int, on_gpus: bool) -> bool:
    """``--gang``, or the catalog's ``scheduling.gang`` default under a gang scheduler: ``multiReplicaGPU``
    (built in) gang-schedules a job of more than one replica with GPUs, which started in part would hold
    GPUs that nothing uses; ``always``; ``never``."""
    if asked:
        return True
    default = str(catalog.section("scheduling").get("gang") or "multiReplicaGPU")
    if default not in GANG_DEFAULTS:
        raise UsageError(f"catalog scheduling.gang {default!r}: must be one of {', '.join(GANG_DEFAULTS)}")
    if scheduler not in GANG_SCHEDULERS or default == "never":
        return False
    return default == "always" or (replicas > 1 and on_gpus)


def uses_gpus(replica_specs: Mapping[str, Any]) -> bool:
    """Whether a replica of the job asks for a GPU or a MIG slice (``nvidia.com/…`` limits)."""
    return any(
        name.startswith("nvidia.com/")
        for spec in replica_specs.values()
        for container in spec["template"]["spec"]["containers"]
        for name in (container.get("resources") or {}).get("limits") or {}
    )


def min_resources(replica_specs: Mapping[str, Any]) -> dict[str, str]:
    """What all replicas ask for together, as the scheduler counts it (a limit stands for a missing
    request): the PodGroup's ``minResources``. training-operator would leave out a GPU given as a limit
    only (util.go AddResourceList), and the coscheduling plugin would then let half a gang reserve GPUs."""
    total: dict[str, Fraction] = {}
    for spec in replica_specs.values():
        count = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        for container in spec["template"]["spec"]["containers"]:
            resources = container.get("resources") or {}
            asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
            for name, value in asked.items():
                amount = quantities.parse(value)
                if amount is not None:
                    total[name] = total.get(name, Fraction(0)) + amount * count
    return {name: _quantity(amount) for name, amount in sorted(total.items())}


def _quantity(amount: Fraction) -> str:
    if amount.denominator == 1:
        for suffix, unit in (("Gi", 1024**3), ("Mi", 1024**2)):
            if amount.numerator >= unit and amount.numerator % unit == 0:
                return f"{amount.numerator // unit}{suffix}"
        return str(amount.numerator)
    return f"{math.ceil(amount * 1000)}m"


def run_policy(
    scheduling: Mapping[str, Any],
    *,
    scheduler: str,
    replicas: int,
    gang: bool,
    queue: str | None,
    priority: str | None,
    warnings: list[str],
    min_resources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Kubeflow job's ``runPolicy`` for a TrainingInput's ``scheduling`` under ``scheduler``;
    what it cannot honour is appended to ``warnings``."""
    deadline = DEFAULT_MAX_RUNNING_SECONDS
    if scheduling.get("maxRunningTime"):
        deadline = parse_duration(scheduling["maxRunningTime"], what="scheduling.maxRunningTime")
    policy: dict[str, Any] = {"cleanPodPolicy": "None", "activeDeadlineSeconds": deadline}
    group: dict[str, Any] = {}
    if gang:
        if scheduler not in GANG_SCHEDULERS:
            raise UsageError(
                "--gang needs --scheduler volcano or scheduler-plugins (the operator's gang scheduler)"
            )
        group["minAvailable"] = replicas
        if min_resources:
            group["minResources"] = dict(min_resources)
    if queue and scheduler == "volcano":
        group["queue"] = queue
    if queue and scheduler == "none":
        raise UsageError("--queue needs a queueing system: --scheduler kueue or volcano")
    if priority and scheduler in GANG_SCHEDULERS:
        group["priorityClass"] = priority
    if scheduling.get("maxWaitTime"):
        wait = parse_duration(scheduling["maxWaitTime"], what="scheduling.maxWaitTime")
        if scheduler == "scheduler-plugins":
            group["scheduleTimeoutSeconds"] = wait
        else:
            warnings.append("scheduling.maxWaitTime is enforced only with --scheduler scheduler-plugins")
    if group:
        policy["schedulingPolicy"] = group
    return policy

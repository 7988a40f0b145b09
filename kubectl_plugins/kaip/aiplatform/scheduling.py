"""Which queueing or gang system schedules a job, and the job's run policy: gcloud's
``scheduling.maxRunningTime`` and ``maxWaitTime``, ``--gang``, ``--queue`` and ``--priority`` as
Kueue, Volcano or scheduler-plugins read them. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.training import parse_duration
from kaip.errors import UsageError

SCHEDULERS = ("kueue", "volcano", "scheduler-plugins", "none")
#: gcloud's default scheduling.maxRunningTime (7 days).
DEFAULT_MAX_RUNNING_SECONDS = 604800


def choose_scheduler(chosen: str | None, catalog: Catalog) -> str:
    """``--scheduler``, else the catalog's ``scheduling.queueing``, else none."""
    name = chosen or str(catalog.section("scheduling").get("queueing") or "none")
    if name not in SCHEDULERS:
        raise UsageError(f"--scheduler {name!r}: must be one of {', '.join(SCHEDULERS)}")
    return name


def run_policy(
    scheduling: Mapping[str, Any],
    *,
    scheduler: str,
    replicas: int,
    gang: bool,
    queue: str | None,
    priority: str | None,
    warnings: list[str],
) -> dict[str, Any]:
    """The Kubeflow job's ``runPolicy`` for a TrainingInput's ``scheduling`` under ``scheduler``;
    what it cannot honour is appended to ``warnings``."""
    deadline = DEFAULT_MAX_RUNNING_SECONDS
    if scheduling.get("maxRunningTime"):
        deadline = parse_duration(scheduling["maxRunningTime"], what="scheduling.maxRunningTime")
    policy: dict[str, Any] = {"cleanPodPolicy": "None", "activeDeadlineSeconds": deadline}
    group: dict[str, Any] = {}
    if gang:
        if scheduler not in ("volcano", "scheduler-plugins"):
            raise UsageError(
                "--gang needs --scheduler volcano or scheduler-plugins (the operator's gang scheduler)"
            )
        group["minAvailable"] = replicas
    if queue and scheduler == "volcano":
        group["queue"] = queue
    if queue and scheduler == "none":
        raise UsageError("--queue needs a queueing system: --scheduler kueue or volcano")
    if priority and scheduler in ("volcano", "scheduler-plugins"):
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

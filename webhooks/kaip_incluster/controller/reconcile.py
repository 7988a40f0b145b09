"""The decision for one PVC: what the controller saw in, the actions to take out. Pure.

Level-triggered: the same observation always gives the same actions, and an action already done
gives none the next time (the Job's name is deterministic, a condition equal to the wanted one is
not written again, an Event is emitted only when the condition's status or reason changes). A bad
annotation ends ``False``/``InvalidSource`` and is not tried again until the annotations change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.kube.objects import (
    annotations_of,
    conditions_of,
    labels_of,
    metadata,
    name_of,
    status_of,
    uid_of,
)
from kaip.preload import jobs
from kaip.preload import shards as sharding
from kaip.preload.contract import BadAnnotation, LoadRequest, read_request
from kaip.preload.status import FALSE, TRUE, UNKNOWN, Condition, Outcome, current, format_message, outcome_in
from kaip.resources import preload as names

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
RETRY_HINT = "fix the cause, then run `kubectl pvc-preload retry {name}` (it bumps annotation {annotation})"


@dataclass(frozen=True)
class Observed:
    """What the controller read for one PVC: the PVC, its loader Jobs and the Pods of the current one."""

    pvc: Mapping[str, Any]
    jobs: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()


# -- actions ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsureAccess:
    """Create if absent: the loaders' ServiceAccount, and the Role/RoleBinding on this PVC's status."""

    objects: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class CreateJob:
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class DeleteJob:
    name: str
    uid: str


@dataclass(frozen=True)
class SetCondition:
    condition: Condition
    transition: bool


@dataclass(frozen=True)
class Emit:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class RecordDigest:
    digest: str


Action = EnsureAccess | CreateJob | DeleteJob | SetCondition | Emit | RecordDigest


@dataclass
class _Plan:
    current: Condition | None
    actions: list[Action] = field(default_factory=list)

    def condition(self, wanted: Condition, *, event: Emit | None = None) -> None:
        now = self.current
        if now == wanted:
            return
        self.actions.append(SetCondition(wanted, transition=now is None or now.status != wanted.status))
        if event is not None and (now is None or (now.status, now.reason) != (wanted.status, wanted.reason)):
            self.actions.append(event)
        self.current = wanted


def job_state(job: Mapping[str, Any]) -> tuple[str, str, str]:
    """(``Complete`` | ``Failed`` | ``Active``, reason, message) from the Job's conditions."""
    for cond in conditions_of(job):
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"]), str(cond.get("reason") or ""), str(cond.get("message") or "")
    return "Active", "", ""


def blocked_start(pods: Sequence[Mapping[str, Any]]) -> str:
    """Why the loader cannot start when its credentials Secret (or one of its keys) is missing."""
    for pod in pods:
        for status in status_of(pod).get("containerStatuses") or ():
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CreateContainerConfigError":
                return str(waiting.get("message") or "the loader's Secret reference cannot be resolved")
    return ""


def wanted_job(pvc: Mapping[str, Any]) -> str | None:
    """The name of the loader Job the PVC's request wants; ``None`` when it wants none (or is bad)."""
    try:
        request = read_request(pvc)
    except BadAnnotation:
        return None
    return jobs.job_name(name_of(pvc), request) if request is not None else None


def reconcile(observed: Observed, *, config: jobs.LoaderConfig) -> list[Action]:
    pvc = observed.pvc
    if metadata(pvc).get("deletionTimestamp"):
        return []
    plan = _Plan(current(pvc))
    try:
        request = read_request(pvc)
    except BadAnnotation as exc:
        plan.actions.extend(DeleteJob(name_of(j), uid_of(j)) for j in observed.jobs)
        plan.condition(
            Condition(FALSE, names.REASON_INVALID, exc.message),
            event=Emit("Warning", names.REASON_INVALID, exc.message),
        )
        return plan.actions
    if request is None:
        # The annotation is gone: nothing to load any more; a running load is stopped.
        return [DeleteJob(name_of(j), uid_of(j)) for j in observed.jobs]
    shards = sharding.parallelism_for(
        pvc, request, default=config.default_parallelism, threshold=config.parallelism_threshold
    )
    problem = sharding.access_problem(pvc, shards)
    if problem is not None:
        plan.actions.extend(DeleteJob(name_of(j), uid_of(j)) for j in observed.jobs)
        plan.condition(
            Condition(FALSE, names.REASON_INVALID_PARALLELISM, problem),
            event=Emit("Warning", names.REASON_INVALID_PARALLELISM, problem),
        )
        return plan.actions
    wanted = jobs.job_name(name_of(pvc), request)
    job = next((j for j in observed.jobs if name_of(j) == wanted), None)
    plan.actions.extend(DeleteJob(name_of(j), uid_of(j)) for j in observed.jobs if name_of(j) != wanted)
    if job is None:
        _start(plan, pvc, request=request, name=wanted, config=config, shards=shards)
    else:
        _follow(plan, pvc, job=job, pods=observed.pods)
    return plan.actions


def _start(
    plan: _Plan,
    pvc: Mapping[str, Any],
    *,
    request: LoadRequest,
    name: str,
    config: jobs.LoaderConfig,
    shards: int,
) -> None:
    where = f"/{request.path}" if request.path else "the volume's root"
    pods = f" ({shards} loader Pods)" if shards > 1 else ""
    message = f"loading {request.source.url} into {where} with Job {name}{pods}; waiting for it to start"
    # The condition first: a loader that starts at once then writes its progress over it, not under it.
    plan.condition(
        Condition(UNKNOWN, names.REASON_PENDING, message),
        event=Emit("Normal", "LoadStarted", f"loading {request.source.url} into {where} with Job {name}"),
    )
    role, binding = jobs.loader_access(pvc)
    plan.actions.append(EnsureAccess((jobs.service_account(), role, binding)))
    plan.actions.append(CreateJob(jobs.loader_job(pvc, request, config=config, shards=shards)))


def _follow(
    plan: _Plan, pvc: Mapping[str, Any], *, job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> None:
    state, reason, message = job_state(job)
    pvc_name = name_of(pvc)
    count = sharding.shards_of(job)
    if count > 1:
        pods = [p for p in pods if labels_of(p).get(JOB_NAME_LABEL) == name_of(job)]
    if state == "Complete":
        outcome = _succeeded(pods, count)
        text = outcome.message if outcome else f"Job {name_of(job)} completed"
        if (
            outcome is not None
            and outcome.digest
            and annotations_of(pvc).get(names.ANNOTATION_LOADED_DIGEST) != outcome.digest
        ):
            plan.actions.append(RecordDigest(outcome.digest))
        plan.condition(
            Condition(TRUE, names.REASON_SUCCEEDED, text),
            event=Emit("Normal", "Loaded", text),
        )
        return
    hint = RETRY_HINT.format(name=pvc_name, annotation=names.ANNOTATION_RETRY)
    if state == "Failed":
        outcome = _failed(pods, count)
        if outcome is not None:
            why, text = outcome.reason, outcome.message
        else:
            why, text = names.REASON_FAILED, f"Job {name_of(job)} failed ({reason}: {message})"
        full = f"{text}; {hint}"
        plan.condition(Condition(FALSE, why, full), event=Emit("Warning", why, full))
        return
    blocked = blocked_start(pods)
    if blocked:
        full = f"the loader cannot start: {blocked}; create the credentials Secret or fix annotation {names.ANNOTATION_CREDENTIALS}"
        plan.condition(
            Condition(FALSE, names.REASON_CREDENTIALS, full),
            event=Emit("Warning", names.REASON_CREDENTIALS, full),
        )
        return
    now = plan.current
    since = str(metadata(job).get("creationTimestamp") or "")
    progress = sharding.progress_of(pvc, count, since=since) if count > 1 else None
    if progress is not None and now is not None and now.status == UNKNOWN:
        plan.condition(Condition(UNKNOWN, names.REASON_LOADING, format_message(progress)))
        return  # the shards write their own conditions; the sum is the controller's to write
    if (
        now is not None
        and now.status == UNKNOWN
        and now.reason in (names.REASON_LOADING, names.REASON_PENDING)
    ):
        return  # the loader writes its progress into this condition's message
    plan.condition(
        Condition(UNKNOWN, names.REASON_PENDING, f"waiting for the loader Job {name_of(job)} to start"),
        event=Emit("Normal", "LoadStarted", f"loading with Job {name_of(job)}"),
    )


def _succeeded(pods: Sequence[Mapping[str, Any]], count: int) -> Outcome | None:
    """The loader's outcome of a completed Job; of N shards, their sum."""
    if count > 1:
        return sharding.combined_outcome(pods, container=jobs.CONTAINER, count=count)
    return outcome_in(pods, container=jobs.CONTAINER, succeeded=True)


def _failed(pods: Sequence[Mapping[str, Any]], count: int) -> Outcome | None:
    """The outcome of a failed Job; of N shards, the first shard that failed for good, named."""
    if count == 1:
        return outcome_in(pods, container=jobs.CONTAINER, succeeded=False)
    found = sharding.first_failure(
        pods, container=jobs.CONTAINER, permanent=(jobs.EXIT_USAGE, jobs.EXIT_PERMANENT)
    )
    if found is None:
        return None
    index, outcome = found
    return Outcome(reason=outcome.reason, message=f"loader Pod {index} of {count}: {outcome.message}")


def outcome_missing(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the Job has ended but its Pods' statuses lack the outcome (read them again)."""
    state = job_state(job)[0]
    if state == "Active":
        return False
    count = sharding.shards_of(job)
    return (_succeeded(pods, count) if state == "Complete" else _failed(pods, count)) is None

"""Thin loops of `jobs list/describe/cancel/update` and the catalog read: the API calls around the
pure views of :mod:`kaip.aiplatform.views` and :mod:`kaip.aiplatform.states`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import catalog as catalogs
from kaip.aiplatform import failures, states, training, trainjobs, views
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.errors import OperationFailed, shorten
from kaip.kube.objects import api_time, labels_of, name_of, namespace_of, status_of
from kaip.resources import kubeflow as kf
from kaip.resources import queueing as q
from kaip.resources import trainer
from kaip.resources.kinds import CONFIGMAPS, PODS, Resource

if TYPE_CHECKING:
    from kaip.kube.client import Kube

JOB_RESOURCES: tuple[Resource, ...] = (*(k.resource for k in kf.JOB_KINDS), kf.EXPERIMENTS, trainer.TRAINJOBS)
#: What says where a job stands in its queue and gang (read where the cluster serves them).
SCHEDULING: tuple[Resource, ...] = (q.WORKLOADS, q.PODGROUPS)


def read_catalog(kube: Kube) -> tuple[catalogs.Catalog, str]:
    """The admin's catalog merged over the built-in one, and a note when it could not be read."""
    from kaip.kube.errors import Forbidden, NotFound

    where = f"ConfigMap {kf.CATALOG_NAMESPACE}/{kf.CATALOG_CONFIGMAP}"
    try:
        cm = kube.get(CONFIGMAPS, kf.CATALOG_CONFIGMAP, namespace=kf.CATALOG_NAMESPACE)
    except NotFound:
        return catalogs.Catalog(BUILTIN), ""
    except Forbidden:
        return catalogs.Catalog(BUILTIN), f"cannot read {where} (forbidden); using the built-in catalog"
    text = (cm.get("data") or {}).get(kf.CATALOG_KEY)
    return catalogs.from_configmap_text(text, where=where), ""


def served(kube: Kube) -> list[Resource]:
    """The job resources this cluster serves: one discovery request per group version (kubeflow.org's,
    trainer.kubeflow.org's)."""
    from kaip.kube.errors import NotFound

    found: list[Resource] = []
    for group, version in sorted({(r.group, r.version) for r in JOB_RESOURCES}):
        try:
            doc = kube.request("GET", f"/apis/{group}/{version}")
        except NotFound:
            continue
        names = {r.get("name") for r in doc.get("resources") or []}
        found += [r for r in JOB_RESOURCES if (r.group, r.version) == (group, version) and r.plural in names]
    return found


def _require_any(resources: Sequence[Resource]) -> None:
    if not resources:
        from kaip.kube.errors import ApiMissing

        raise ApiMissing(
            f"the cluster serves no Kubeflow job kinds (tfjobs.{kf.GROUP} and the others): "
            f"{kf.INSTALL_TRAINING_OPERATOR}",
            status=404,
            reason="NotFound",
        )


def _pods_by_job(
    kube: Kube, *, all_namespaces: bool, label: str = kf.LABEL_JOB_NAME
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The Pods that carry ``label`` (the operators', or JobSet's for TrainJobs) by (namespace,
    ``label=job``): :func:`_pods_key` finds a job's."""
    pods = kube.list_all(PODS, label_selector=label, all_namespaces=all_namespaces)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in pods:
        key = (namespace_of(pod), f"{label}={labels_of(pod).get(label)}")
        grouped.setdefault(key, []).append(pod)
    return grouped


def _pods_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return namespace_of(obj), f"{trainjobs.pod_selector(str(obj.get('kind')))}={name_of(obj)}"


def _list_if_served(
    kube: Kube, resource: Resource, *, all_namespaces: bool, limit: int | None = None
) -> list[dict[str, Any]] | None:
    """Every object of ``resource`` (one page of ``limit`` when given); None where it is not served."""
    from kaip.kube.errors import ApiMissing, Forbidden

    try:
        if limit is not None:
            return list(kube.list(resource, limit=limit).get("items") or [])
        return kube.list_all(resource, all_namespaces=all_namespaces)
    except ApiMissing:
        return None
    except Forbidden:
        # The API server refuses an unknown resource by RBAC before it says so: a Role written before
        # Trainer v2 must still list the v1 kinds (docs/rbac.md: TrainJobs are optional for a list).
        if resource is trainer.TRAINJOBS:
            return None
        raise


def _scheduling_objects(kube: Kube, resource: Resource, *, all_namespaces: bool) -> list[dict[str, Any]]:
    """Kueue's Workloads or the PodGroups: none where the cluster lacks them or the user may not read them
    (the jobs are shown all the same)."""
    from kaip.kube.errors import Forbidden

    try:
        return _list_if_served(kube, resource, all_namespaces=all_namespaces) or []
    except Forbidden:
        return []


def list_views(kube: Kube, *, all_namespaces: bool) -> list[views.JobView]:
    """Every kind listed at once (no discovery round trip: a kind not served answers 404)."""
    results = _in_parallel(
        [partial(_pods_by_job, kube, all_namespaces=all_namespaces)]
        + [partial(_scheduling_objects, kube, r, all_namespaces=all_namespaces) for r in SCHEDULING]
        + [partial(_list_if_served, kube, r, all_namespaces=all_namespaces) for r in JOB_RESOURCES]
    )
    pods: dict[tuple[str, str], list[dict[str, Any]]] = results[0]
    workloads, podgroups = results[1 : 1 + len(SCHEDULING)]
    lists: list[list[dict[str, Any]] | None] = results[1 + len(SCHEDULING) :]
    _require_any([r for r, items in zip(JOB_RESOURCES, lists, strict=True) if items is not None])
    objects = [obj for items in lists for obj in items or ()]
    if any(trainjobs.is_trainjob(obj) for obj in objects):  # only then: JobSet's Pods, one more request
        pods.update(_pods_by_job(kube, all_namespaces=all_namespaces, label=trainer.LABEL_JOBSET_NAME))
    out = []
    for obj in objects:
        if views.is_trial_job(obj):
            continue
        out.append(views.view(obj, pods.get(_pods_key(obj), []), workloads=workloads, podgroups=podgroups))
    return out


def job_ids(kube: Kube, *, limit: int = 500) -> list[str]:
    """The job ids of the namespace (one page of each kind), for completion: no Pods are read."""

    def ids(resource: Resource) -> list[str]:
        items = _list_if_served(kube, resource, all_namespaces=False, limit=limit) or []
        return [
            str(labels_of(o).get(kf.LABEL_JOB_ID) or name_of(o)) for o in items if not views.is_trial_job(o)
        ]

    found = _in_parallel([partial(ids, r) for r in JOB_RESOURCES])
    return sorted({i for group in found for i in group})


def _in_parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Each call's result in order, run on threads of their own; the first failure is raised.

    Plain threads, not concurrent.futures: that imports logging, 5 ms of a `jobs list`."""
    import threading

    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def find(kube: Kube, job: str) -> tuple[Resource, dict[str, Any]]:
    """The job named by gcloud's JOB id (or its object name) in the namespace, whatever its kind."""
    from kaip.kube.errors import NotFound

    resources = served(kube)
    _require_any(resources)
    name = training.dns_name(job)
    for resource in resources:
        try:
            return resource, kube.get(resource, name)
        except NotFound:
            continue
    kinds = ", ".join(r.kind for r in resources)
    raise NotFound(
        f"job {job} not found in namespace {kube.namespace} (looked for {name} among {kinds})",
        status=404,
        reason="NotFound",
        details={"name": name},
    )


def pods_of(kube: Kube, name: str, *, kind: str = "") -> list[dict[str, Any]]:
    """The Pods of the job ``name`` of ``kind`` (a TrainJob's are its JobSet's)."""
    return kube.list_all(PODS, label_selector=f"{trainjobs.pod_selector(kind)}={name}")


def trials_of(kube: Kube, experiment: str) -> list[dict[str, Any]]:
    """The Trials Katib made for an Experiment (labelled with its name)."""
    return kube.list_all(kf.TRIALS, label_selector=f"{kf.LABEL_KATIB_EXPERIMENT}={experiment}")


def describe(
    kube: Kube, job: str, *, history: Callable[[], Any] | None = None
) -> tuple[views.JobView, dict[str, Any], list[dict[str, Any]]]:
    """The job's view, object and Pods; a failed job's view carries its failed container's log tail.

    Where ``pods/log`` cannot serve it (the node is gone, the Pod was cleaned up), ``history()`` (a
    :class:`kaip.aiplatform.logs.LokiHistory`, or None when Loki is not configured) is asked."""
    _, obj = find(kube, job)
    if obj.get("kind") == kf.EXPERIMENTS.kind:
        pods: list[dict[str, Any]] = []
        view = views.view(obj, pods, trials=trials_of(kube, name_of(obj)))
    else:
        if trainjobs.is_trainjob(obj):  # its JobSet may have ended before the TrainJob says so
            obj = dict(trainjobs.with_jobset(obj, _jobset_of(kube, name_of(obj))))
        pods = pods_of(kube, name_of(obj), kind=str(obj.get("kind")))
        workloads, podgroups = (_scheduling_objects(kube, r, all_namespaces=False) for r in SCHEDULING)
        view = views.view(obj, pods, workloads=workloads, podgroups=podgroups)
    if view.failure and view.failure.replicas:
        replica = view.failure.replicas[0]
        tail = read_log_tail(kube, replica)
        if tail.unavailable and replica.container and history is not None:
            tail = stored_log_tail(kube, replica, obj, history()) or tail
        view = replace(view, failure=view.failure.with_logs(tail))
    elif view.failure and not pods and history is not None:  # the Pods are gone: the store may have it
        stored = stored_job_tail(kube, obj, history())
        if stored is not None:
            view = replace(view, failure=view.failure.with_logs(stored))
    return view, obj, pods


def stored_job_tail(kube: Kube, obj: Mapping[str, Any], history: Any) -> failures.LogTail | None:
    """The job's last lines from Loki, whichever of its Pods wrote them; None where it has none."""
    import time

    from kaip.errors import UnreachableError
    from kaip.logs.loki import LokiError

    if history is None:
        return None
    now = time.time_ns()
    try:
        lines = history.job_tail(
            kube.namespace,
            name_of(obj),
            count=failures.LOG_TAIL_LINES,
            start=now - history.window_ns,
            end=now + 1,
        )
    except (LokiError, UnreachableError):
        return None
    return failures.log_tail("\n".join(lines)) if lines else None


def stored_log_tail(
    kube: Kube, replica: failures.ReplicaFailure, obj: Mapping[str, Any], history: Any
) -> failures.LogTail | None:
    """The failed container's last lines from Loki; None where Loki has none (or is not configured)."""
    import time

    from kaip.errors import UnreachableError
    from kaip.logs.loki import LokiError
    from kaip.logs.merge import parse_stamp

    if history is None:
        return None
    stamp = str((obj.get("metadata") or {}).get("creationTimestamp") or "")
    now = time.time_ns()
    start = parse_stamp(stamp) - 60 * 1_000_000_000 if stamp else now - history.window_ns
    start = max(start, now - history.window_ns)
    try:
        lines = history.tail(
            kube.namespace,
            replica.pod,
            container=replica.container,
            count=failures.LOG_TAIL_LINES,
            start=start,
            end=now + 1,
        )
    except (LokiError, UnreachableError) as exc:
        return failures.LogTail(unavailable=f"Loki: {shorten(str(exc), 200)}")
    return failures.log_tail("\n".join(lines)) if lines else None


#: Seconds to wait for a log: the kubelet behind pods/log may be gone with its node.
LOG_TIMEOUT = 10.0


def read_log_tail(kube: Kube, replica: failures.ReplicaFailure) -> failures.LogTail:
    """The failed container's last lines through ``pods/log``; why not, where the server cannot serve it."""
    from urllib.parse import urlencode

    from kaip.errors import UnreachableError
    from kaip.kube.errors import ApiError

    if not replica.container:
        return failures.LogTail(unavailable="the Pod failed as a whole; no container ended")
    path = PODS.path(namespace=kube.namespace, name=replica.pod, subresource="log")
    try:
        text = kube.request_text(f"{path}?{urlencode(failures.log_query(replica))}", timeout=LOG_TIMEOUT)
    except (ApiError, UnreachableError) as exc:
        return failures.LogTail(unavailable=shorten(str(exc), 200))
    return failures.log_tail(text)


def replica_rows(obj: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(task, phase, why) of each Pod: why it waits, or how its container ended."""
    kind = str(obj.get("kind"))
    main = trainjobs.container_of(kind)
    rows = []
    for pod in sorted(pods, key=lambda p: views.task_name(p, kind)):
        task = views.task_name(pod, kind)
        phase = str(status_of(pod).get("phase") or "Pending")
        ended = failures.pod_failure(pod, task=task, main_container=main)
        how = ""
        if ended:
            how = f"{ended.outcome()}: {ended.headline()}" if ended.headline() else ended.outcome()
        if ended and not ended.previous:
            why = how
        else:  # running or waiting again after a failed run: what it waits for, else that run's end
            why = states.pod_waiting_reason(pod) or (f"restarted after {how}" if how else "")
        rows.append((task, phase, why))
    return rows


def cancel(kube: Kube, job: str) -> tuple[views.JobView, bool]:
    """Suspend the job and mark it cancelled (the record stays); a finished job is left as it is."""
    resource, obj = find(kube, job)
    kind = str(obj.get("kind"))
    current = views.view(obj, [] if resource is kf.EXPERIMENTS else pods_of(kube, name_of(obj), kind=kind))
    if current.state.state in states.FINAL or current.state.state == states.CANCELLING:
        return current, False
    if resource is kf.EXPERIMENTS:
        raise OperationFailed(
            f"job {job} is a hyperparameter tuning job (Katib Experiment): Katib cannot stop one and keep it; "
            f"delete it with kubectl delete experiments.{kf.GROUP} {name_of(obj)}"
        )
    stamp = api_time()
    patch = {
        "metadata": {"annotations": {kf.ANNOTATION_CANCEL_REQUESTED: stamp}},
        # A TrainJob suspends its JobSet, whose Jobs stop their Pods.
        "spec": {"suspend": True} if resource is trainer.TRAINJOBS else {"runPolicy": {"suspend": True}},
    }
    updated = kube.patch(resource, name_of(obj), patch)
    _deactivate_workload(kube, updated)
    return views.view(updated, pods_of(kube, name_of(obj), kind=kind)), True


def _jobset_of(kube: Kube, name: str) -> dict[str, Any] | None:
    """A TrainJob's JobSet (same name), or None where it is not there or may not be read."""
    from kaip.kube.errors import ApiError

    try:
        return kube.get(trainer.JOBSETS, name)
    except ApiError:
        return None


#: Seconds `jobs cancel` waits for Kueue to make the Workload of a job submitted a moment ago.
WORKLOAD_WAIT = 5.0


def _deactivate_workload(kube: Kube, job: Mapping[str, Any], *, wait: float = WORKLOAD_WAIT) -> None:
    """Kueue resumes a suspended job once its Workload is admitted: a queued job's cancel deactivates
    the Workload too (``spec.active: false``, Kueue's way to stop one for good). Kueue makes the
    Workload just after the job, so one cancelled at once is given ``wait`` seconds to appear."""
    import time

    from kaip.aiplatform import queueing

    if not labels_of(job).get(kf.LABEL_KUEUE_QUEUE):
        return
    deadline = time.monotonic() + wait
    while True:
        workload = queueing.workload_of(job, _scheduling_objects(kube, q.WORKLOADS, all_namespaces=False))
        if workload is not None:
            kube.patch(q.WORKLOADS, name_of(workload), {"spec": {"active": False}})
            return
        if time.monotonic() > deadline:
            return  # no Kueue (or not allowed to read Workloads): the job stays suspended as it is
        time.sleep(0.2)


def update_labels(
    kube: Kube, job: str, *, update: Mapping[str, str], remove: Sequence[str], clear: bool
) -> dict[str, Any]:
    """gcloud's label update: only labels change; our own ``*/`` labels are never touched."""
    resource, obj = find(kube, job)
    current = labels_of(obj)
    changes: dict[str, str | None] = {}
    if clear:
        changes.update({k: None for k in current if "/" not in k})
    changes.update({k: None for k in remove if k in current and "/" not in k})
    changes.update(update)
    if not changes:
        return obj
    return kube.patch(resource, name_of(obj), {"metadata": {"labels": changes}})

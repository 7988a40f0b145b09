"""Thin loops of `jobs list/describe/cancel/update` and the catalog read: the API calls around the
pure views of :mod:`kaip.aiplatform.views` and :mod:`kaip.aiplatform.states`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import catalog as catalogs
from kaip.aiplatform import failures, states, training, views
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.errors import OperationFailed, shorten
from kaip.kube.objects import api_time, key_of, labels_of, name_of, namespace_of, status_of
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import CONFIGMAPS, PODS, Resource

if TYPE_CHECKING:
    from kaip.kube.client import Kube

JOB_RESOURCES: tuple[Resource, ...] = (*(k.resource for k in kf.JOB_KINDS), kf.EXPERIMENTS)


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
    """The job resources this cluster serves: one discovery request per kubeflow.org version."""
    from kaip.kube.errors import NotFound

    found: list[Resource] = []
    for version in sorted({r.version for r in JOB_RESOURCES}):
        try:
            doc = kube.request("GET", f"/apis/{kf.GROUP}/{version}")
        except NotFound:
            continue
        names = {r.get("name") for r in doc.get("resources") or []}
        found += [r for r in JOB_RESOURCES if r.version == version and r.plural in names]
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
    kube: Kube, *, all_namespaces: bool, name: str | None = None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    selector = f"{kf.LABEL_JOB_NAME}={name}" if name else kf.LABEL_JOB_NAME
    pods = kube.list_all(PODS, label_selector=selector, all_namespaces=all_namespaces)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in pods:
        key = (namespace_of(pod), str(labels_of(pod).get(kf.LABEL_JOB_NAME)))
        grouped.setdefault(key, []).append(pod)
    return grouped


def _list_if_served(kube: Kube, resource: Resource, *, all_namespaces: bool) -> list[dict[str, Any]] | None:
    from kaip.kube.errors import ApiMissing

    try:
        return kube.list_all(resource, all_namespaces=all_namespaces)
    except ApiMissing:
        return None


def list_views(kube: Kube, *, all_namespaces: bool) -> list[views.JobView]:
    """Every kind listed at once (no discovery round trip: a kind not served answers 404)."""
    results = _in_parallel(
        [partial(_pods_by_job, kube, all_namespaces=all_namespaces)]
        + [partial(_list_if_served, kube, r, all_namespaces=all_namespaces) for r in JOB_RESOURCES]
    )
    pods: dict[tuple[str, str], list[dict[str, Any]]] = results[0]
    lists: list[list[dict[str, Any]] | None] = results[1:]
    _require_any([r for r, items in zip(JOB_RESOURCES, lists, strict=True) if items is not None])
    objects = [obj for items in lists for obj in items or ()]
    out = []
    for obj in objects:
        if views.is_trial_job(obj):
            continue
        out.append(views.view(obj, pods.get(key_of(obj), [])))
    return out


def job_ids(kube: Kube, *, limit: int = 500) -> list[str]:
    """The job ids of the namespace (one page of each kind), for completion: no Pods are read."""

    def ids(resource: Resource) -> list[str]:
        from kaip.kube.errors import ApiMissing

        try:
            items = kube.list(resource, limit=limit).get("items") or []
        except ApiMissing:
            return []
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


def pods_of(kube: Kube, name: str) -> list[dict[str, Any]]:
    return kube.list_all(PODS, label_selector=f"{kf.LABEL_JOB_NAME}={name}")


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
        pods = pods_of(kube, name_of(obj))
        view = views.view(obj, pods)
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
    main = kf.BY_KIND[kind].container if kind in kf.BY_KIND else ""
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
    current = views.view(obj, [] if resource is kf.EXPERIMENTS else pods_of(kube, name_of(obj)))
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
        "spec": {"runPolicy": {"suspend": True}},
    }
    updated = kube.patch(resource, name_of(obj), patch)
    return views.view(updated, pods_of(kube, name_of(obj))), True


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

"""A checked TrainingInput plus the cluster's catalog and options -> the Kubeflow job manifest.

gcloud's roles (master, workers, parameter servers, evaluators) become the replica types of the
chosen kind (:mod:`~kaip.aiplatform.roles`); machine types and accelerators become resources and
placement through the catalog; `--module-name` runs as ``python -m MODULE ARGS`` after the staged
packages are installed. This module builds the Pods and the job; the run policy
(:mod:`~kaip.aiplatform.scheduling`), the start order (:mod:`~kaip.aiplatform.startup`) and the
MPIJob specifics (:mod:`~kaip.aiplatform.mpi`) are decided beside it. Pure.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.aiplatform import mpi, networks, scheduling, startup, tenancy
from kaip.aiplatform import volumes as existing
from kaip.aiplatform.builtin_catalog import GPU
from kaip.aiplatform.catalog import Catalog, Placement
from kaip.aiplatform.networks import NetworkAdditions
from kaip.aiplatform.roles import Role, replica_types, resolve_roles
from kaip.aiplatform.tenancy import Tenancy
from kaip.aiplatform.training import dns_name, user_args
from kaip.aiplatform.volumes import ClaimVolume
from kaip.errors import UsageError
from kaip.kube.objects import spec_of
from kaip.resources import credentials, preload
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import PVCS, Resource
from kaip.storage.source import parse_source

#: Object names of Pods and Services are ``<job>-<type>-<index>``; keep room for that suffix.
MAX_NAME = 63 - len("-evaluator-999")
PACKAGES_DIR = "/kaip/packages"


@dataclass(frozen=True)
class DataVolume:
    """``--data NAME=s3://bucket/prefix[:MOUNT]``: a preloaded PVC mounted into every replica."""

    name: str
    source: str
    mount: str


@dataclass(frozen=True)
class PodAdditions:
    """What staging packages adds to each replica's Pod."""

    volumes: tuple[Mapping[str, Any], ...] = ()
    mounts: tuple[Mapping[str, Any], ...] = ()
    init_containers: tuple[Mapping[str, Any], ...] = ()
    #: Files inside the container that ``pip install`` takes before the module runs.
    install: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterOptions:
    """What a cluster needs beyond gcloud's flags."""

    framework: str = "tensorflow"
    namespace: str | None = None
    credentials: tuple[str, ...] = ()
    data: tuple[DataVolume, ...] = ()
    data_credentials: str | None = None
    queue: str | None = None
    priority: str | None = None
    gang: bool = False
    scheduler: str | None = None
    secondary_networks: tuple[str, ...] = ()
    #: MPIJob API version, "v2beta1" (mpi-operator) or "v1" (training-operator); None: the default.
    mpi_api: str | None = None
    #: ``--backend``: "v1" (training-operator's kinds) or "trainer-v2" (TrainJob); None: decided by
    #: :func:`kaip.aiplatform.trainjob.choose_backend`.
    backend: str | None = None
    #: ``--volume``: existing PVCs mounted into every replica (``--config`` ones merged in).
    volumes: tuple[ClaimVolume, ...] = ()
    #: ``--run-as-user``, ``--run-as-group``, ``--fs-group``, ``--exclusive`` (then the catalog's).
    tenancy: Tenancy = field(default_factory=Tenancy)


@dataclass(frozen=True)
class Built:
    """The objects to create, in order, and what the user should know."""

    objects: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def job(self) -> dict[str, Any]:
        return self.objects[-1]


def parse_data(value: str) -> DataVolume:
    """``NAME=s3://bucket/prefix`` or ``NAME=gs://bucket/prefix:/mount/point``."""
    name, sep, rest = value.partition("=")
    if not sep or not name or "://" not in rest:
        raise UsageError(f"--data {value!r}: expected NAME=s3://BUCKET/PREFIX[:MOUNT] or NAME=gs://...")
    scheme = rest.split("://", 1)[0]
    if scheme not in ("s3", "gs"):
        raise UsageError(f"--data {value!r}: the source must be s3:// or gs://")
    source, mount = rest, f"/data/{name}"
    head, colon, tail = rest.rpartition(":")
    if colon and tail.startswith("/") and "://" in head:
        source, mount = head, tail
    if not _dns_label(name):
        raise UsageError(f"--data {value!r}: NAME must be a DNS-1123 label (it names the PVC)")
    # The form `kubectl pvc-preload` and the data loader write (a prefix ends in /), so that a PVC
    # preloaded by hand from the same place is recognised and reused.
    return DataVolume(name, parse_source(source, field=f"--data {name}").url, mount)


def _dns_label(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name))


# -- containers ------------------------------------------------------------------------------------
def _image(role: Role, ti: Mapping[str, Any], kind: kf.JobKind, catalog: Catalog, gpu: bool) -> str:
    if role.image:
        return str(role.image)
    python = ti.get("pythonVersion")
    return catalog.runtime_image(
        version=str(ti.get("runtimeVersion") or catalog.default_runtime),
        framework=kind.framework,
        python=str(python) if python else None,
        gpu=gpu,
    )


_EXEC, _PARAMS = "exec ", '"$0" "$@"'  # how _module_command runs the module


def _module_command(
    module: str, install: Sequence[str], launcher: Sequence[str] = (), *, before: Sequence[str] = ()
) -> list[str]:
    """``sh -c`` that installs the staged packages, runs the ``before`` lines, then runs
    ``python -m MODULE "$@"``.

    The module travels as ``$0`` and the user's arguments as ``"$@"``, so no argument is re-quoted.
    """
    lines = ["set -e", *before]
    if install:
        lines.append(
            "python -m pip install --quiet --no-cache-dir " + " ".join(shlex.quote(p) for p in install)
        )
    runner = " ".join(shlex.quote(p) for p in launcher)
    lines.append(f"{_EXEC}{runner + ' ' if runner else ''}python -m {_PARAMS}")
    return ["sh", "-c", "\n".join(lines), module]


def inline_module_command(command: Sequence[str], args: Sequence[str]) -> list[str] | None:
    """A :func:`_module_command` with its module and ``args`` written into the script, every word
    quoted, and the program run as the shell's child: ``[sh, -c, SCRIPT]``, to be given no args.

    For Katib trials (katib.py says why): Katib's Pod webhook joins command and args into one
    ``sh -c`` line unquoted and appends its completion marker, which only a shell still there when
    the program ends writes. ``None`` for a command that is not :func:`_module_command`'s.
    """
    if len(command) != 4 or list(command[:2]) != ["sh", "-c"]:
        return None
    *head, last = command[2].split("\n")
    if not (last.startswith(_EXEC) and last.endswith(_PARAMS)):
        return None
    run = last[len(_EXEC) : -len(_PARAMS)]
    return ["sh", "-c", "\n".join([*head, run + shlex.join([command[3], *args])])]


@dataclass(frozen=True)
class _Context:
    name: str
    ti: Mapping[str, Any]
    kind: kf.JobKind
    catalog: Catalog
    options: ClusterOptions
    additions: PodAdditions
    total_workers: int
    #: The queueing or gang system (:func:`kaip.aiplatform.scheduling.choose_scheduler`).
    scheduler: str
    slots: int = 1
    #: What ``--secondary-network`` adds (:func:`kaip.aiplatform.networks.additions`).
    net: NetworkAdditions = field(default_factory=NetworkAdditions)


def _container(ctx: _Context, rtype: str, role: Role, placement: Placement) -> dict[str, Any]:
    limits = dict(placement.limits)
    gpu = any(k == GPU or k.startswith("nvidia.com/") for k in limits)
    limits.update(ctx.net.limits)
    requests = dict(placement.requests)
    if ctx.options.tenancy.exclusive:
        requests, limits = tenancy.guaranteed(requests, limits, machine_type=role.machine_type)
    container: dict[str, Any] = {
        "name": ctx.kind.container,
        "image": _image(role, ctx.ti, ctx.kind, ctx.catalog, gpu),
        # A program that dies on an exception writes no termination message: the kubelet then keeps
        # the end of its log as the message, which `jobs describe` shows for a failed replica.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    args = list(role.args) if role.args is not None else user_args(ctx.ti)
    module = ctx.ti.get("pythonModule")
    is_launcher = mpi.is_mpi(ctx.kind) and rtype == "Launcher"
    hosts = mpi.hosts(ctx.kind, workers=ctx.total_workers, launcher_limits=limits) if is_launcher else 0
    if role.command:
        container["command"] = list(role.command)
    elif module and (not mpi.is_mpi(ctx.kind) or is_launcher):
        mpirun: list[str] = []
        before: list[str] = []
        if is_launcher:
            mpirun = mpi.mpirun(hosts=hosts, slots=ctx.slots, forward=tuple(ctx.net.env))
            before = startup.mpi_v1_wait(ctx.kind, job=ctx.name, workers=ctx.total_workers)
        container["command"] = _module_command(str(module), ctx.additions.install, mpirun, before=before)
    if args and (not mpi.is_mpi(ctx.kind) or is_launcher):
        container["args"] = args
    if ctx.kind.port:
        container["ports"] = [{"name": ctx.kind.port_name, "containerPort": ctx.kind.port}]
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    if resources:
        container["resources"] = resources
    if ctx.net.env:
        container["env"] = networks.env_list(ctx.net.env)
    if ctx.net.capabilities:
        container["securityContext"] = {"capabilities": {"add": list(ctx.net.capabilities)}}
    mounts = [{"name": "dshm", "mountPath": SHM}, *ctx.additions.mounts]
    mounts += [{"name": f"data-{d.name}", "mountPath": d.mount} for d in ctx.options.data]
    container["volumeMounts"] = mounts + existing.mounts(ctx.options.volumes)
    return container


SHM = "/dev/shm"  # noqa: S108 - shared memory for data loaders and NCCL, not a temp file


def _check_volumes(options: ClusterOptions, additions: PodAdditions) -> None:
    """Refuse ``--volume``s that take another volume's name or another flag's mount path."""
    from kaip.resources.credentials import gcp_mount_path

    taken = {"dshm", *(str(v["name"]) for v in additions.volumes), *(f"data-{d.name}" for d in options.data)}
    for v in options.volumes:
        if v.name in taken or v.name.startswith("kaip-"):
            raise UsageError(f"{v.flag}: the Pod volume name {v.name} is kaip's own; choose another NAME")
    paths = [
        (SHM, "kaip's shared memory"),
        *((str(m["mountPath"]), "--package-path/--packages") for m in additions.mounts),
    ]
    paths += [(d.mount, f"--data {d.name}") for d in options.data]
    paths += [(gcp_mount_path(c), f"--credentials {c}") for c in options.credentials]
    existing.check_paths(options.volumes, paths)


def _pod_template(ctx: _Context, rtype: str, role: Role) -> dict[str, Any]:
    placement = ctx.catalog.placement(
        machine_type=role.machine_type,
        accelerator=role.accelerator,
        region=str(ctx.ti["region"]) if ctx.ti.get("region") else None,
    )
    container = _container(ctx, rtype, role, placement)
    volumes: list[Mapping[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        *ctx.additions.volumes,
    ]
    volumes += [
        {"name": f"data-{d.name}", "persistentVolumeClaim": {"claimName": d.name}} for d in ctx.options.data
    ]
    volumes += existing.pod_volumes(ctx.options.volumes)
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    init = [dict(c) for c in ctx.additions.init_containers]
    use_chief = bool(ctx.ti.get("useChiefInTfConfig"))
    peers = startup.peers(ctx.kind, job=ctx.name, rtype=rtype, workers=ctx.total_workers, use_chief=use_chief)
    if peers:
        init.append(startup.wait_for(peers, ctx.catalog.image("wait")))
    if ctx.options.tenancy.exclusive:
        for c in init:
            c["resources"] = tenancy.init_resources(c.get("resources") or {}, container["resources"])
    if init:
        spec["initContainers"] = init
    if ctx.options.tenancy.security_context():
        spec["securityContext"] = ctx.options.tenancy.security_context()
    if ctx.ti.get("serviceAccount"):
        spec["serviceAccountName"] = str(ctx.ti["serviceAccount"])
    if placement.node_selector:
        spec["nodeSelector"] = dict(placement.node_selector)
    if placement.match_expressions:
        # One term: terms are alternatives, the expressions of a term (and nodeSelector) all must hold.
        term = {"matchExpressions": [dict(e) for e in placement.match_expressions]}
        spec.setdefault("affinity", {})["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    if placement.tolerations:
        spec["tolerations"] = [dict(t) for t in placement.tolerations]
    if ctx.options.priority and ctx.scheduler != "kueue":
        spec["priorityClassName"] = ctx.options.priority
    annotations: dict[str, str] = {}
    if ctx.options.credentials:
        annotations[credentials.ANNOTATION_CREDENTIALS] = ",".join(ctx.options.credentials)
    if ctx.net.networks:
        annotations[kf.ANNOTATION_MULTUS_NETWORKS] = ",".join(ctx.net.networks)
    return {"metadata": {"annotations": annotations}, "spec": spec} if annotations else {"spec": spec}


# -- the job -------------------------------------------------------------------------------------
def build_job(
    *,
    job_id: str,
    ti: Mapping[str, Any],
    labels: Mapping[str, str],
    catalog: Catalog,
    options: ClusterOptions,
    additions: PodAdditions = PodAdditions(),
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The Kubeflow job object (without status) for a checked TrainingInput; what the user should
    know about it (``scheduling.maxWaitTime`` that the scheduler will not enforce...) is appended to
    ``warnings``."""
    kind = kf.BY_FRAMEWORK.get(options.framework)
    if kind is None:
        raise UsageError(f"--framework {options.framework!r}: must be one of {', '.join(kf.FRAMEWORKS)}")
    name = dns_name(job_id)
    if len(name) > MAX_NAME:
        raise UsageError(
            f"JOB {job_id!r} is too long: at most {MAX_NAME} characters (Pod names add a suffix)"
        )
    if mpi.is_mpi(kind):
        kind = mpi.version_kind(options.mpi_api)
    if mpi.is_mpi(kind) and additions.install:
        how = "the image's own SSH server" if kind is kf.MPIJOB else "kubectl exec into the image"
        raise UsageError(
            f"--framework mpi starts the workers' processes through {how}, where nothing installs "
            "packages: build them into --master-image-uri instead of --package-path/--packages"
        )
    roles = resolve_roles(ti, catalog)
    typed = replica_types(kind, roles, use_chief=bool(ti.get("useChiefInTfConfig")))
    workers = sum(r.count for t, r in typed if t == "Worker")
    chosen = scheduling.choose_scheduler(options.scheduler, catalog)
    _check_volumes(options, additions)
    net = networks.additions(catalog, options.secondary_networks)
    ctx = _Context(
        name, ti, kind, catalog, options, additions, workers, chosen, mpi.slots_per_host(typed), net=net
    )
    warnings = warnings if warnings is not None else []
    specs: dict[str, Any] = {}
    for rtype, role in typed:
        spec: dict[str, Any] = {"replicas": role.count, "template": _pod_template(ctx, rtype, role)}
        if mpi.is_mpi(kind):
            # Both operators accept these two (mpi-operator's validation accepts no others); the
            # launcher retries until the workers answer, a lost worker fails the job.
            spec["restartPolicy"] = "OnFailure" if rtype == "Launcher" else "Never"
        else:
            # Exit codes 1-127 are the program's own failure; 128+ (killed, evicted) are retried.
            spec["restartPolicy"] = "ExitCode"
        specs[rtype] = spec
    body: dict[str, Any] = {kind.replica_key: specs}
    body["runPolicy"] = scheduling.run_policy(
        ti.get("scheduling") or {},
        scheduler=chosen,
        replicas=sum(r.count for _, r in typed),
        gang=scheduling.wants_gang(
            options.gang,
            scheduler=chosen,
            catalog=catalog,
            replicas=sum(r.count for _, r in typed),
            on_gpus=scheduling.uses_gpus(specs),
        ),
        min_resources=scheduling.min_resources(specs),
        queue=options.queue,
        priority=options.priority,
        warnings=warnings,
    )
    if mpi.is_mpi(kind):
        body.update(mpi.spec(kind, slots=ctx.slots, workers=workers))
        # Workers idle (sshd, or v1's `sleep 365d`) once the launcher ends: stop them and free their
        # GPUs; the finished launcher, which holds every rank's output, stays.
        body["runPolicy"].update(cleanPodPolicy="Running", backoffLimit=mpi.LAUNCHER_RETRIES)
    return job_object(
        kind.resource, body, job_id=job_id, ti=ti, labels=labels, options=options, scheduler=chosen
    )


def job_object(
    resource: Resource,
    spec: dict[str, Any],
    *,
    job_id: str,
    ti: Mapping[str, Any],
    labels: Mapping[str, str],
    options: ClusterOptions,
    scheduler: str,
) -> dict[str, Any]:
    """A job of ``resource`` (a v1 kind or a TrainJob) with ``spec``: gcloud's JOB id and labels, the
    queue's labels when Kueue queues it, and the TrainingInput it was made from."""
    meta_labels = {**labels, kf.LABEL_JOB_ID: job_id}
    if options.queue and scheduler in scheduling.KUEUE_QUEUES:
        meta_labels[kf.LABEL_KUEUE_QUEUE] = options.queue
    if options.priority and scheduler == "kueue":
        meta_labels[kf.LABEL_KUEUE_PRIORITY] = options.priority
    metadata: dict[str, Any] = {
        "name": dns_name(job_id),
        **({"namespace": options.namespace} if options.namespace else {}),
    }
    metadata["labels"] = meta_labels
    metadata["annotations"] = {
        kf.ANNOTATION_TRAINING_INPUT: json.dumps(dict(ti), sort_keys=True, separators=(",", ":"))
    }
    return {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata, "spec": spec}


def data_claims(
    *, job_name: str, options: ClusterOptions, catalog: Catalog, replicas: int
) -> list[dict[str, Any]]:
    """One preload PVC per ``--data``: the data loader fills it, the Pods wait for it."""
    settings = catalog.section("data")
    claims = []
    for d in options.data:
        annotations = {preload.ANNOTATION_SOURCE: d.source}
        if options.data_credentials:
            annotations[preload.ANNOTATION_CREDENTIALS] = options.data_credentials
        spec: dict[str, Any] = {
            # Several replicas on several nodes read the same data.
            "accessModes": ["ReadWriteOnce" if replicas == 1 else "ReadWriteMany"],
            "resources": {"requests": {"storage": str(settings.get("size") or "100Gi")}},
        }
        if settings.get("storageClassName"):
            spec["storageClassName"] = str(settings["storageClassName"])
        metadata: dict[str, Any] = {
            "name": d.name,
            **({"namespace": options.namespace} if options.namespace else {}),
        }
        metadata["labels"] = {kf.LABEL_FOR_JOB: job_name}
        metadata["annotations"] = annotations
        claims.append({"apiVersion": PVCS.api_version, "kind": PVCS.kind, "metadata": metadata, "spec": spec})
    return claims


def replica_count(job: Mapping[str, Any]) -> int:
    kind = kf.BY_KIND[str(job["kind"])]
    specs = spec_of(job).get(kind.replica_key) or {}
    return sum(int(s.get("replicas") or 1) for s in specs.values())

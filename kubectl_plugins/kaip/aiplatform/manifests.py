"""A checked TrainingInput plus the cluster's catalog and options -> the Kubeflow job manifest.

gcloud's roles (master, workers, parameter servers, evaluators) become the replica types of the
chosen kind; machine types and accelerators become resources and placement through the catalog;
`--module-name` runs as ``python -m MODULE ARGS`` after the staged packages are installed. Pure.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.aiplatform.catalog import GPU, Catalog, Placement
from kaip.aiplatform.training import ROLE_FLAG, dns_name, normalize_tier, parse_duration, user_args
from kaip.errors import UsageError
from kaip.resources import credentials, preload
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import PVCS
from kaip.storage.source import parse_source

SCHEDULERS = ("kueue", "volcano", "scheduler-plugins", "none")
#: gcloud's default scheduling.maxRunningTime (7 days).
DEFAULT_MAX_RUNNING_SECONDS = 604800
#: Object names of Pods and Services are ``<job>-<type>-<index>``; keep room for that suffix.
MAX_NAME = 63 - len("-evaluator-999")
WAIT_TRIES = 300  # 2 s apart: 10 minutes for a master to come up before a worker gives up
#: MPI launcher restarts before the job fails (mpi-operator's launcher Job would default to it too).
MPI_LAUNCHER_RETRIES = 6
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


@dataclass(frozen=True)
class Role:
    """One gcloud role resolved: how many, on what, running what."""

    role: str  # master | worker | parameterServer | evaluator
    count: int
    machine_type: str
    accelerator: Mapping[str, Any] | None = None
    image: str | None = None
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None


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


# -- roles ---------------------------------------------------------------------------------------
def resolve_roles(ti: Mapping[str, Any], catalog: Catalog) -> list[Role]:
    """Master, workers, parameter servers, evaluators with machine types from the tier or the input."""
    has_types = any(ti.get(k) for k in ("masterType", "workerType", "parameterServerType"))
    tier = normalize_tier(ti["scaleTier"]) if ti.get("scaleTier") else ("custom" if has_types else "basic")
    preset: Mapping[str, Any] = {} if tier == "custom" else catalog.scale_tier(tier)
    roles: list[Role] = []
    for role in ("master", "worker", "parameterServer", "evaluator"):
        source = preset if preset else ti
        count = 1 if role == "master" else int(source.get(f"{role}Count") or 0)
        if not count:
            continue
        config = ti.get(f"{role}Config") or {}
        accelerator = config.get("acceleratorConfig") or preset.get(f"{role}Accelerator")
        if accelerator:
            accelerator = {"type": str(accelerator.get("type")), "count": int(accelerator.get("count") or 1)}
        roles.append(
            Role(
                role=role,
                count=count,
                machine_type=str(source.get(f"{role}Type") or ""),
                accelerator=accelerator,
                image=config.get("imageUri") or (ti.get("masterConfig") or {}).get("imageUri"),
                command=tuple(config["containerCommand"]) if config.get("containerCommand") else None,
                args=tuple(str(a) for a in config["containerArgs"]) if config.get("containerArgs") else None,
            )
        )
    return roles


def replica_types(kind: kf.JobKind, roles: Sequence[Role], *, use_chief: bool) -> list[tuple[str, Role]]:
    """gcloud roles onto the kind's replica types, refusing what the framework has no place for."""
    out: list[tuple[str, Role]] = []
    for role in roles:
        if role.role == "master":
            out.append(("Chief" if (use_chief and kind is kf.TFJOB) else kind.primary, role))
        elif role.role == "worker":
            out.append((kind.worker, role))
        else:
            extra = dict(kind.extra_roles).get(ROLE_FLAG[role.role])
            if extra is None:
                raise UsageError(
                    f"--framework {kind.framework} has no {ROLE_FLAG[role.role].replace('-', ' ')}s "
                    f"({kind.resource.kind} replicas: {kind.primary}, {kind.worker})"
                )
            out.append((extra, role))
    if kind is kf.JAXJOB and len(out) > 1:
        master, worker = out[0][1], out[1][1]
        if (master.machine_type, master.accelerator, master.image) != (
            worker.machine_type,
            worker.accelerator,
            worker.image,
        ):
            raise UsageError(
                "--framework jax runs every process as a Worker: the master and the workers need the same "
                "machine type, accelerator and image"
            )
        return [
            (
                "Worker",
                Role(
                    "master",
                    master.count + worker.count,
                    master.machine_type,
                    master.accelerator,
                    master.image,
                    master.command,
                    master.args,
                ),
            )
        ]
    return out


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


def _wait_for(names: Sequence[str], image: str) -> dict[str, Any]:
    """An init container that holds a replica until its peers' DNS names resolve (start order)."""
    script = (
        'for name in "$@"; do i=0; until nslookup "$name" >/dev/null 2>&1; do '
        f'i=$((i+1)); if [ "$i" -ge {WAIT_TRIES} ]; then echo "$name did not come up" >&2; exit 1; fi; '
        "sleep 2; done; done"
    )
    return {
        "name": "kaip-wait-for-peers",
        "image": image,
        "command": ["sh", "-c", script, "wait"],
        "args": list(names),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }


@dataclass(frozen=True)
class _Context:
    name: str
    ti: Mapping[str, Any]
    kind: kf.JobKind
    catalog: Catalog
    options: ClusterOptions
    additions: PodAdditions
    total_workers: int
    slots: int = 1


def _is_mpi(kind: kf.JobKind) -> bool:
    return kind.framework == kf.MPIJOB.framework


def _container(ctx: _Context, rtype: str, role: Role, placement: Placement) -> dict[str, Any]:
    limits = dict(placement.limits)
    gpu = any(k == GPU or k.startswith("nvidia.com/") for k in limits)
    for net in ctx.options.secondary_networks:
        for res, qty in (ctx.catalog.secondary_network(net).get("resources") or {}).items():
            limits[str(res)] = str(qty)
    container: dict[str, Any] = {
        "name": ctx.kind.container,
        "image": _image(role, ctx.ti, ctx.kind, ctx.catalog, gpu),
        # A program that dies on an exception writes no termination message: the kubelet then keeps
        # the end of its log as the message, which `jobs describe` shows for a failed replica.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    args = list(role.args) if role.args is not None else user_args(ctx.ti)
    module = ctx.ti.get("pythonModule")
    is_launcher = _is_mpi(ctx.kind) and rtype == "Launcher"
    hosts = _mpi_hosts(ctx, limits) if is_launcher else 0
    if role.command:
        container["command"] = list(role.command)
    elif module and (not _is_mpi(ctx.kind) or is_launcher):
        mpirun: list[str] = []
        before: list[str] = []
        if is_launcher:
            mpirun = ["mpirun", "--allow-run-as-root", "-np", str(hosts * ctx.slots),
                      "--hostfile", kf.MPI_HOSTFILE, "-bind-to", "none", "-map-by", "slot",
                      "-x", "PATH", "-x", "LD_LIBRARY_PATH"]  # fmt: skip
            before = _mpi_v1_wait(ctx)
        container["command"] = _module_command(str(module), ctx.additions.install, mpirun, before=before)
    if args and (not _is_mpi(ctx.kind) or is_launcher):
        container["args"] = args
    if ctx.kind.port:
        container["ports"] = [{"name": ctx.kind.port_name, "containerPort": ctx.kind.port}]
    resources: dict[str, Any] = {}
    if placement.requests:
        resources["requests"] = dict(placement.requests)
    if limits:
        resources["limits"] = limits
    if resources:
        container["resources"] = resources
    shm = "/dev/shm"  # noqa: S108 - shared memory for data loaders and NCCL, not a temp file
    mounts = [{"name": "dshm", "mountPath": shm}, *ctx.additions.mounts]
    mounts += [{"name": f"data-{d.name}", "mountPath": d.mount} for d in ctx.options.data]
    container["volumeMounts"] = mounts
    return container


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
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    init = [dict(c) for c in ctx.additions.init_containers]
    peers = _peers(ctx, rtype)
    if peers:
        init.append(_wait_for(peers, ctx.catalog.image("wait")))
    if init:
        spec["initContainers"] = init
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
    if ctx.options.priority and _scheduler(ctx) != "kueue":
        spec["priorityClassName"] = ctx.options.priority
    annotations: dict[str, str] = {}
    if ctx.options.credentials:
        annotations[credentials.ANNOTATION_CREDENTIALS] = ",".join(ctx.options.credentials)
    if ctx.options.secondary_networks:
        annotations[kf.ANNOTATION_MULTUS_NETWORKS] = ",".join(ctx.options.secondary_networks)
    return {"metadata": {"annotations": annotations}, "spec": spec} if annotations else {"spec": spec}


def _slots(typed: Sequence[tuple[str, Role]]) -> int:
    """MPI slots per host: the GPUs of a worker, or of the launcher when it is the only host."""
    hosts = [r for t, r in typed if t == "Worker"] or [r for _, r in typed]
    acc = hosts[0].accelerator if hosts else None
    return int(acc["count"]) if acc else 1


def _mpi_hosts(ctx: _Context, launcher_limits: Mapping[str, str]) -> int:
    """How many hosts the operator's hostfile lists, each with ``slotsPerWorker`` slots.

    mpi-operator (v2beta1) lists the workers, and the launcher with runLauncherAsWorker (no workers);
    training-operator (v1) lists the workers, and the launcher when its limits name a GPU (its
    ``isGPULauncher``: a resource ending in ``.com/gpu`` or containing ``gpu``).
    """
    if ctx.kind is not kf.MPIJOB_V1:
        return max(ctx.total_workers, 1)
    gpu_launcher = any(k.endswith(".com/gpu") or "gpu" in k for k in launcher_limits)
    if not ctx.total_workers and not gpu_launcher:
        raise UsageError(
            "--framework mpi on kubeflow.org/v1 (training-operator) needs workers (--worker-count and "
            "--worker-machine-type) or a GPU on the master: that MPIJob has no runLauncherAsWorker, and "
            "its hostfile lists the workers and only a launcher with GPUs"
        )
    return ctx.total_workers + (1 if gpu_launcher else 0)


def _mpi_v1_wait(ctx: _Context) -> list[str]:
    """v1 workers get no Service (no DNS name to wait for): the launcher waits with the kubectl its
    operator delivers and the Role it grants (get/list/watch Pods) until every worker is Ready."""
    if ctx.kind is not kf.MPIJOB_V1 or not ctx.total_workers:
        return []
    pods = " ".join(f"pod/{ctx.name}-worker-{i}" for i in range(ctx.total_workers))
    return [f"{kf.MPI_V1_KUBECTL} wait --for=condition=Ready --timeout={WAIT_TRIES * 2}s {pods}"]


def _peers(ctx: _Context, rtype: str) -> list[str]:
    """Whom a replica waits for: the master (TF, XGBoost, Paddle) or every worker (the MPI launcher)."""
    if ctx.kind.operator_orders_start or ctx.kind is kf.JAXJOB:
        return []  # init-pytorch does it; JAX's coordinator client retries on its own
    if ctx.kind is kf.MPIJOB_V1:
        return []  # the launcher's command waits (_mpi_v1_wait)
    if ctx.kind is kf.MPIJOB:
        # mpi-operator's headless Service publishes a worker's name once the worker is Ready.
        return (
            [f"{ctx.name}-worker-{i}.{ctx.name}" for i in range(ctx.total_workers)]
            if rtype == "Launcher"
            else []
        )
    if rtype in ("Master", "Chief"):
        return []
    primary = "chief" if ctx.ti.get("useChiefInTfConfig") and ctx.kind is kf.TFJOB else "master"
    return [f"{ctx.name}-{primary}-0"]


def _mpi_kind(version: str | None) -> kf.JobKind:
    chosen = version or kf.DEFAULT_MPI_VERSION
    if chosen not in kf.MPI_KINDS:
        raise UsageError(f"--mpi-api {chosen!r}: must be one of {', '.join(kf.MPI_KINDS)}")
    return kf.MPI_KINDS[chosen]


def _mpi_spec(ctx: _Context) -> dict[str, Any]:
    """The MPIJob fields beyond the replicas and run policy, as each version names them."""
    spec: dict[str, Any] = {"slotsPerWorker": ctx.slots}
    if ctx.kind is kf.MPIJOB_V1:
        # kubexec.sh execs into this container rather than the Pod's first (a webhook may add one).
        spec["mainContainer"] = ctx.kind.container
    elif not ctx.total_workers:
        spec["runLauncherAsWorker"] = True
    return spec


def _scheduler(ctx: _Context) -> str:
    chosen = ctx.options.scheduler or str(ctx.catalog.section("scheduling").get("queueing") or "none")
    if chosen not in SCHEDULERS:
        raise UsageError(f"--scheduler {chosen!r}: must be one of {', '.join(SCHEDULERS)}")
    return chosen


def _run_policy(ctx: _Context, replicas: int, warnings: list[str]) -> dict[str, Any]:
    scheduling = ctx.ti.get("scheduling") or {}
    deadline = DEFAULT_MAX_RUNNING_SECONDS
    if scheduling.get("maxRunningTime"):
        deadline = parse_duration(scheduling["maxRunningTime"], what="scheduling.maxRunningTime")
    policy: dict[str, Any] = {"cleanPodPolicy": "None", "activeDeadlineSeconds": deadline}
    scheduler = _scheduler(ctx)
    gang: dict[str, Any] = {}
    if ctx.options.gang:
        if scheduler not in ("volcano", "scheduler-plugins"):
            raise UsageError(
                "--gang needs --scheduler volcano or scheduler-plugins (the operator's gang scheduler)"
            )
        gang["minAvailable"] = replicas
    if ctx.options.queue and scheduler == "volcano":
        gang["queue"] = ctx.options.queue
    if ctx.options.queue and scheduler == "none":
        raise UsageError("--queue needs a queueing system: --scheduler kueue or volcano")
    if ctx.options.priority and scheduler in ("volcano", "scheduler-plugins"):
        gang["priorityClass"] = ctx.options.priority
    if scheduling.get("maxWaitTime"):
        wait = parse_duration(scheduling["maxWaitTime"], what="scheduling.maxWaitTime")
        if scheduler == "scheduler-plugins":
            gang["scheduleTimeoutSeconds"] = wait
        else:
            warnings.append("scheduling.maxWaitTime is enforced only with --scheduler scheduler-plugins")
    if gang:
        policy["schedulingPolicy"] = gang
    return policy


# -- the job -------------------------------------------------------------------------------------
def build_job(
    *,
    job_id: str,
    ti: Mapping[str, Any],
    labels: Mapping[str, str],
    catalog: Catalog,
    options: ClusterOptions,
    additions: PodAdditions = PodAdditions(),
) -> dict[str, Any]:
    """The Kubeflow job object (without status) for a checked TrainingInput."""
    kind = kf.BY_FRAMEWORK.get(options.framework)
    if kind is None:
        raise UsageError(f"--framework {options.framework!r}: must be one of {', '.join(kf.FRAMEWORKS)}")
    name = dns_name(job_id)
    if len(name) > MAX_NAME:
        raise UsageError(
            f"JOB {job_id!r} is too long: at most {MAX_NAME} characters (Pod names add a suffix)"
        )
    if _is_mpi(kind):
        kind = _mpi_kind(options.mpi_api)
    if _is_mpi(kind) and additions.install:
        how = "the image's own SSH server" if kind is kf.MPIJOB else "kubectl exec into the image"
        raise UsageError(
            f"--framework mpi starts the workers' processes through {how}, where nothing installs "
            "packages: build them into --master-image-uri instead of --package-path/--packages"
        )
    roles = resolve_roles(ti, catalog)
    typed = replica_types(kind, roles, use_chief=bool(ti.get("useChiefInTfConfig")))
    workers = sum(r.count for t, r in typed if t == "Worker")
    ctx = _Context(name, ti, kind, catalog, options, additions, workers, _slots(typed))
    warnings: list[str] = []
    specs: dict[str, Any] = {}
    for rtype, role in typed:
        spec: dict[str, Any] = {"replicas": role.count, "template": _pod_template(ctx, rtype, role)}
        if _is_mpi(kind):
            # Both operators accept these two (mpi-operator's validation accepts no others); the
            # launcher retries until the workers answer, a lost worker fails the job.
            spec["restartPolicy"] = "OnFailure" if rtype == "Launcher" else "Never"
        else:
            # Exit codes 1-127 are the program's own failure; 128+ (killed, evicted) are retried.
            spec["restartPolicy"] = "ExitCode"
        specs[rtype] = spec
    body: dict[str, Any] = {kind.replica_key: specs}
    body["runPolicy"] = _run_policy(ctx, sum(r.count for _, r in typed), warnings)
    if _is_mpi(kind):
        body.update(_mpi_spec(ctx))
        # Workers idle (sshd, or v1's `sleep 365d`) once the launcher ends: stop them and free their
        # GPUs; the finished launcher, which holds every rank's output, stays.
        body["runPolicy"].update(cleanPodPolicy="Running", backoffLimit=MPI_LAUNCHER_RETRIES)
    meta_labels = {**labels, kf.LABEL_JOB_ID: job_id}
    if options.queue and _scheduler(ctx) == "kueue":
        meta_labels[kf.LABEL_KUEUE_QUEUE] = options.queue
    if options.priority and _scheduler(ctx) == "kueue":
        meta_labels[kf.LABEL_KUEUE_PRIORITY] = options.priority
    metadata: dict[str, Any] = {
        "name": name,
        **({"namespace": options.namespace} if options.namespace else {}),
    }
    metadata["labels"] = meta_labels
    metadata["annotations"] = {
        kf.ANNOTATION_TRAINING_INPUT: json.dumps(dict(ti), sort_keys=True, separators=(",", ":"))
    }
    return {
        "apiVersion": kind.resource.api_version,
        "kind": kind.resource.kind,
        "metadata": metadata,
        "spec": body,
    }


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
    specs = (job.get("spec") or {}).get(kind.replica_key) or {}
    return sum(int(s.get("replicas") or 1) for s in specs.values())

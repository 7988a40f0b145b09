"""gcloud's command line onto Kubeflow Trainer v2: which backend a submission takes, and the TrainJob
that references the runtime of its framework. Pure.

A TrainJob says less than a v1 job: every node of a runtime's trainer job runs the same image and
resources (``spec.trainer``), and what else reaches the Pods is ``podSpecOverrides`` (ServiceAccount,
node selector, tolerations, volumes and their mounts; no node affinity, no Pod annotations, no new
init containers). gcloud's roles therefore map onto ``numNodes`` nodes alike: the master and the
workers must ask for the same machine, accelerator and image, and what a TrainJob cannot express
(parameter servers, evaluators, remote packages, secondary networks, ...) is refused naming the flag,
with the backend that can. Upstream facts: kubeflow/trainer v2.0.0 ``trainjob_types.go``,
``pkg/runtime/framework/plugins`` (jobset builder, torch, mpi) and ``manifests/base/runtimes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaip.aiplatform import manifests
from kaip.aiplatform.builtin_catalog import GPU
from kaip.aiplatform.catalog import Catalog, Placement
from kaip.aiplatform.roles import Role, resolve_roles
from kaip.aiplatform.tenancy import Tenancy
from kaip.aiplatform.training import dns_name, user_args
from kaip.errors import UsageError
from kaip.resources import credentials, trainer
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import SERVICEACCOUNTS

#: Frameworks Trainer v2 serves through an upstream runtime; the others keep the v1 kinds.
FRAMEWORKS = tuple(trainer.RUNTIMES)
_V1_HINT = "(--backend v1 renders it as a training-operator job)"

#: torch's PET_* variables (torch plugin) under the names a gcloud PyTorch program reads, as
#: training-operator's PyTorchJob sets them: one process per node, RANK the node's rank.
_TORCH_ENV = (
    'export MASTER_ADDR="$PET_MASTER_ADDR" MASTER_PORT="$PET_MASTER_PORT" '
    'WORLD_SIZE="$PET_NNODES" RANK="$PET_NODE_RANK"'
)


def _refuse(flag: str, why: str) -> UsageError:
    return UsageError(f"{flag}: {why} on Kubeflow Trainer v2 (--backend trainer-v2) {_V1_HINT}")


# -- which backend -------------------------------------------------------------------------------
def choose_backend(
    *,
    wanted: str | None,
    framework: str,
    served: bool | None,
    catalog: Catalog,
    tuning: bool = False,
) -> str:
    """The backend a submission takes.

    ``wanted`` is ``--backend``; else the catalog's ``trainer.backend`` (``v1``, ``trainer-v2`` or
    ``auto``); ``auto`` is Trainer v2 for the frameworks it serves when the cluster serves TrainJob
    (``served``; None: not asked, as with ``--dry-run=client``: v1). Tuning jobs stay on v1 (Katib's
    trials are v1 jobs); ``--framework deepspeed`` exists on Trainer v2 only.
    """
    choice = wanted or str(catalog.section("trainer").get("backend") or "auto")
    if choice not in (*trainer.BACKENDS, "auto"):
        raise UsageError(f"catalog trainer.backend {choice!r}: must be v1, trainer-v2 or auto")
    if choice == "auto":
        choice = trainer.BACKEND_TRAINER_V2 if served or framework == "deepspeed" else trainer.BACKEND_V1
        if framework not in FRAMEWORKS or tuning:
            choice = trainer.BACKEND_V1
    if choice == trainer.BACKEND_TRAINER_V2:
        if framework not in FRAMEWORKS:
            flag = "--backend trainer-v2" if wanted else "the catalog's trainer.backend: trainer-v2"
            raise UsageError(
                f"{flag} serves --framework {', '.join(FRAMEWORKS)}; --framework {framework} runs as a "
                "training-operator job: give --backend v1"
            )
        if tuning:
            raise _refuse("--config trainingInput.hyperparameters", "Katib v0.19.0 runs trials as v1 jobs")
    elif framework == "deepspeed":
        raise UsageError("--framework deepspeed runs on Kubeflow Trainer v2 only: give --backend trainer-v2")
    return choice


def runtime_for(framework: str, catalog: Catalog) -> str:
    """The ClusterTrainingRuntime of ``framework``: the catalog's ``trainer.runtimes``, else upstream's."""
    runtimes = catalog.section("trainer").get("runtimes") or {}
    return str(
        (runtimes if isinstance(runtimes, Mapping) else {}).get(framework) or trainer.RUNTIMES[framework]
    )


# -- the TrainJob --------------------------------------------------------------------------------
def _nodes(ti: Mapping[str, Any], catalog: Catalog, framework: str) -> tuple[Role, int]:
    """The master's role and the node count: gcloud's master and workers, which must be alike."""
    roles = resolve_roles(ti, catalog)
    master = roles[0]
    nodes = 1
    for role in roles[1:]:
        if role.role == "parameterServer":
            tier = str(ti.get("scaleTier") or "custom").lower().replace("_", "-")
            flag = (
                "--parameter-server-count"
                if tier == "custom"
                else f"--scale-tier {tier} (its parameter servers)"
            )
            raise _refuse(flag, "a TrainJob has no parameter servers")
        if role.role == "evaluator":
            raise _refuse("--config trainingInput.evaluatorCount", "a TrainJob has no separate evaluator")
        for flag, mine, theirs in (
            ("--worker-machine-type", role.machine_type, master.machine_type),
            ("--worker-accelerator", role.accelerator, master.accelerator),
            ("--worker-image-uri", role.image, master.image),
            ("--config trainingInput.workerConfig.containerCommand", role.command, master.command),
        ):
            if mine != theirs:
                raise _refuse(flag, "every node of a TrainJob runs alike, so it must equal the master's")
        nodes += role.count
    if framework in trainer.MPI_POLICY and nodes > 1:
        raise _refuse(
            "--worker-count",
            "Trainer v2.0.0 gives a TrainJob's image and resources to the MPI launcher only, so its worker "
            "nodes would run the runtime's own image without accelerators",
        )
    return master, nodes


def _image(ti: Mapping[str, Any], master: Role, catalog: Catalog, framework: str, gpu: bool) -> str | None:
    if master.image:
        return str(master.image)
    if framework == "deepspeed":
        return None  # the runtime's own image carries DeepSpeed; the catalog has none
    python = ti.get("pythonVersion")
    return catalog.runtime_image(
        version=str(ti.get("runtimeVersion") or catalog.default_runtime),
        framework=framework,
        python=str(python) if python else None,
        gpu=gpu,
    )


def _selector(placement: Placement, warnings: list[str]) -> dict[str, str]:
    """The node selector; a requirement with one value joins it, others are said (no affinity here)."""
    selector = dict(placement.node_selector)
    for expression in placement.match_expressions:
        values = [str(v) for v in expression.get("values") or []]
        if expression.get("operator") == "In" and len(values) == 1:
            selector.setdefault(str(expression.get("key")), values[0])
            continue
        shown = ", ".join(values[:3]) + (f", ... ({len(values)} values)" if len(values) > 3 else "")
        warnings.append(
            "a TrainJob has no node affinity (podSpecOverrides carry a node selector only): requirement "
            f"{expression.get('key')} {expression.get('operator')} [{shown}] is not enforced; the catalog "
            "can name one product per accelerator to select it"
        )
    return selector


def _check_options(
    ti: Mapping[str, Any], options: manifests.ClusterOptions, additions: manifests.PodAdditions
) -> None:
    if options.secondary_networks:
        raise _refuse("--secondary-network", "a TrainJob cannot annotate its Pods for Multus")
    if options.tenancy != Tenancy():
        raise _refuse(
            "--run-as-user/--run-as-group/--fs-group/--exclusive (or the catalog's tenancy of the namespace)",
            "a TrainJob cannot set its Pods' securityContext or Guaranteed resources",
        )
    if options.gang or options.scheduler in ("volcano", "scheduler-plugins"):
        flag = "--gang" if options.gang else f"--scheduler {options.scheduler}"
        raise _refuse(flag, "gang scheduling is the runtime's podGroupPolicy")
    if options.priority and options.scheduler not in (None, "kueue"):
        raise _refuse("--priority", "a TrainJob cannot set its Pods' priorityClassName")
    if additions.init_containers:
        raise _refuse(
            "--packages gs://|s3:// (or --staging-bucket)",
            "a TrainJob cannot add an init container to fetch them",
        )
    if options.credentials and ti.get("serviceAccount"):
        raise UsageError(
            "--credentials with --service-account: a TrainJob reaches its Pods' credentials through their "
            f"ServiceAccount; annotate ServiceAccount {ti['serviceAccount']} with "
            f"{credentials.ANNOTATION_CREDENTIALS}={','.join(options.credentials)} instead"
        )


def build_trainjob(
    *,
    job_id: str,
    ti: Mapping[str, Any],
    labels: Mapping[str, str],
    catalog: Catalog,
    options: manifests.ClusterOptions,
    additions: manifests.PodAdditions | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects of a Trainer v2 submission (a ServiceAccount for ``--credentials``, then the
    TrainJob) and what the user should know."""
    additions = additions or manifests.PodAdditions()
    framework = options.framework
    if framework not in FRAMEWORKS:
        raise UsageError(f"--backend trainer-v2 serves --framework {', '.join(FRAMEWORKS)}, not {framework}")
    name = dns_name(job_id)
    if len(name) > manifests.MAX_NAME:
        raise UsageError(
            f"JOB {job_id!r} is too long: at most {manifests.MAX_NAME} characters (Pod names add a suffix)"
        )
    _check_options(ti, options, additions)
    master, nodes = _nodes(ti, catalog, framework)
    warnings: list[str] = []
    placement = catalog.placement(
        machine_type=master.machine_type,
        accelerator=master.accelerator,
        region=str(ti["region"]) if ti.get("region") else None,
    )
    limits = dict(placement.limits)
    gpus = sum(int(v) for k, v in limits.items() if k == GPU or k.startswith("nvidia.com/"))
    section: dict[str, Any] = {"numNodes": nodes}
    image = _image(ti, master, catalog, framework, gpus > 0)
    if image:
        section["image"] = image
    module = ti.get("pythonModule")
    args = list(master.args) if master.args is not None else user_args(ti)
    if master.command:
        section["command"] = list(master.command)
    elif module:
        mpi = framework in trainer.MPI_POLICY
        section["command"] = manifests._module_command(  # one form of the module's shell for both backends
            str(module), additions.install, ["mpirun"] if mpi else [], before=[] if mpi else [_TORCH_ENV]
        )
    else:
        raise _refuse("--module-name", "the runtime runs its own command unless the TrainJob names one")
    if args:
        section["args"] = args
    resources: dict[str, Any] = {}
    if placement.requests:
        resources["requests"] = dict(placement.requests)
    if limits:
        resources["limits"] = limits
    if resources:
        section["resourcesPerNode"] = resources
    # One process per node for torch (the program is not torchrun); MPI: one slot per GPU, as v1.
    section["numProcPerNode"] = max(gpus, 1) if framework in trainer.MPI_POLICY else 1
    spec: dict[str, Any] = {
        "runtimeRef": {
            "name": runtime_for(framework, catalog),
            "apiGroup": trainer.GROUP,
            "kind": trainer.CLUSTER_TRAINING_RUNTIMES.kind,
        },
        "trainer": section,
        "podSpecOverrides": [
            _overrides(
                ti,
                options=options,
                additions=additions,
                placement=placement,
                framework=framework,
                name=name,
                warnings=warnings,
            )
        ],
    }
    job = manifests.job_object(
        trainer.TRAINJOBS, spec, job_id=job_id, ti=ti, labels=labels, options=options,
        scheduler=_queued(options, catalog),
    )  # fmt: skip
    objects = [_service_account(name, options)] if options.credentials else []
    if options.queue:
        warnings.append(
            f"--queue {options.queue}: the TrainJob carries Kueue's queue label, but Kueue v0.17 admits a "
            "TrainJob only on Trainer v2.2 or later (spec.runtimePatches), not on the Trainer v2.0 this "
            "TrainJob is written for; where Kueue does not manage TrainJobs it runs without waiting for quota"
        )
    return [*objects, job], warnings


def _overrides(
    ti: Mapping[str, Any],
    *,
    options: manifests.ClusterOptions,
    additions: manifests.PodAdditions,
    placement: Placement,
    framework: str,
    name: str,
    warnings: list[str],
) -> dict[str, Any]:
    targets = (
        [trainer.LAUNCHER_JOB, trainer.NODE_JOB] if framework in trainer.MPI_POLICY else [trainer.NODE_JOB]
    )
    override: dict[str, Any] = {"targetJobs": [{"name": t} for t in targets]}
    account = ti.get("serviceAccount") or (name if options.credentials else None)
    if account:
        override["serviceAccountName"] = str(account)
    selector = _selector(placement, warnings)
    if selector:
        override["nodeSelector"] = selector
    if placement.tolerations:
        override["tolerations"] = [dict(t) for t in placement.tolerations]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    volumes += [dict(v) for v in additions.volumes]
    volumes += [
        {"name": f"data-{d.name}", "persistentVolumeClaim": {"claimName": d.name}} for d in options.data
    ]
    volumes += [
        {
            "name": v.name,
            "persistentVolumeClaim": {"claimName": v.claim, **({"readOnly": True} if v.read_only else {})},
        }
        for v in options.volumes
    ]
    mounts = [{"name": "dshm", "mountPath": manifests.SHM}, *(dict(m) for m in additions.mounts)]
    mounts += [{"name": f"data-{d.name}", "mountPath": d.mount} for d in options.data]
    mounts += [
        {"name": v.name, "mountPath": v.mount, **({"readOnly": True} if v.read_only else {})}
        for v in options.volumes
    ]
    override["volumes"] = volumes
    override["containers"] = [{"name": trainer.CONTAINER, "volumeMounts": mounts}]
    return override


def _service_account(name: str, options: manifests.ClusterOptions) -> dict[str, Any]:
    """The Pods' ServiceAccount carrying ``--credentials``: kaip's credentials webhook mounts what a
    Pod's ServiceAccount names (a TrainJob cannot annotate its Pods)."""
    metadata: dict[str, Any] = {
        "name": name,
        **({"namespace": options.namespace} if options.namespace else {}),
    }
    metadata["labels"] = {kf.LABEL_FOR_JOB: name}
    metadata["annotations"] = {credentials.ANNOTATION_CREDENTIALS: ",".join(options.credentials)}
    return {"apiVersion": SERVICEACCOUNTS.api_version, "kind": SERVICEACCOUNTS.kind, "metadata": metadata}


def _queued(options: manifests.ClusterOptions, catalog: Catalog) -> str:
    """The queueing system of a TrainJob: Kueue's labels on it, or none."""
    from kaip.aiplatform.scheduling import choose_scheduler

    chosen = choose_scheduler(options.scheduler, catalog)
    if options.queue and chosen != "kueue":
        raise _refuse("--queue", "a TrainJob is queued by Kueue only (--scheduler kueue)")
    return chosen

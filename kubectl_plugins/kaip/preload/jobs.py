"""The loader Job of a PVC, and the narrow access its Pod gets to report progress: manifests, pure.

One Job per PVC and request: its name is derived from the PVC's name and :attr:`LoadRequest.key`, so
a controller that restarts at any point finds the Job it made instead of making a second one, and a
changed source (or a retry) gets a new name. The Job is owned by the PVC (deleted with it), mounts
it, receives credentials only by reference (``secretKeyRef`` for AWS, a Secret volume for GCP) and
runs under the restricted Pod Security profile. Its ServiceAccount ``kaip-data-loader`` can do one
thing: get and patch the status of this one PVC (a Role per PVC, ``resourceNames``), which the
loader uses to write its progress into the ``DataLoaded`` condition.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kaip.kube.objects import name_of, namespace_of, status_of, uid_of
from kaip.preload.contract import LoadRequest
from kaip.resources import credentials as cr
from kaip.resources import preload as names

IMAGE = "ghcr.io/kaip-dev/kaip:v0.1.0"
LOADER_COMMAND = "kaip-loader"
CONTAINER = "loader"
VOLUME = "data"
MOUNT_PATH = "/kaip/volume"
TERMINATION_LOG = "/dev/termination-log"
SERVICE_ACCOUNT = "kaip-data-loader"
RUN_AS = 65532

#: Exit codes of ``kaip-loader``. 1: may pass when tried again (the Job's backoff retries it);
#: 2 and 3: retrying cannot help (bad arguments; source missing, access denied, unsafe keys), so the
#: Job's podFailurePolicy fails the Job at once.
EXIT_OK = 0
EXIT_TEMPORARY = 1
EXIT_USAGE = 2
EXIT_PERMANENT = 3

_MAX_JOB_NAME = 63  # the job-name label on its Pods is limited to 63 characters
_MAX_LABEL = 63
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class LoaderConfig:
    """The controller's settings for the Jobs it makes (flags of ``kaip-controller``)."""

    image: str = IMAGE
    #: Default requests (and the memory limit) of the loader; the PVC's annotation overrides them.
    resources: tuple[tuple[str, str], ...] = (("cpu", "500m"), ("memory", "512Mi"))
    backoff_limit: int = 3
    active_deadline_seconds: int = 6 * 3600
    workers: int = 32
    #: Shards of a PVC without ``preload.kaip.dev/parallelism`` that asks for at least
    #: ``parallelism_threshold`` bytes (``--default-parallelism``, ``--parallelism-threshold``).
    default_parallelism: int = 1
    parallelism_threshold: int | None = None


def _stem(name: str, room: int) -> str:
    return name[:room].rstrip("-.") or "x"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def job_name(pvc_name: str, request: LoadRequest) -> str:
    """``kaip-load-<pvc>-<key>``, at most 63 characters."""
    prefix, suffix = "kaip-load-", f"-{request.key}"
    return prefix + _stem(pvc_name, _MAX_JOB_NAME - len(prefix) - len(suffix)) + suffix


def access_name(pvc_name: str) -> str:
    """Name of the Role and RoleBinding that let the loader write this PVC's status."""
    prefix, suffix = "kaip-data-loader-", f"-{_short_hash(pvc_name)}"
    return prefix + _stem(pvc_name, 253 - len(prefix) - len(suffix)) + suffix


def pvc_label(pvc_name: str) -> str:
    """The PVC's name as a label value (cut and hashed when longer than a label allows)."""
    if len(pvc_name) <= _MAX_LABEL and _LABEL_VALUE.match(pvc_name):
        return pvc_name
    return f"{_stem(pvc_name, _MAX_LABEL - 11)}-{_short_hash(pvc_name)}"


def labels(pvc_name: str) -> dict[str, str]:
    return {names.LABEL_COMPONENT: names.COMPONENT_LOADER, names.LABEL_PVC: pvc_label(pvc_name)}


def owner_reference(pvc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "name": name_of(pvc),
        "uid": uid_of(pvc),
        "controller": True,
    }


def target_dir(request: LoadRequest) -> str:
    return f"{MOUNT_PATH}/{request.path}" if request.path else MOUNT_PATH


def _resources(request: LoadRequest, config: LoaderConfig) -> dict[str, Any]:
    wanted = dict(config.resources)
    wanted.update(dict(request.resources))
    limits = {"memory": wanted["memory"]} if "memory" in wanted else {}
    return {"requests": wanted, "limits": limits} if limits else {"requests": wanted}


def _credential_env(
    request: LoadRequest,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumes, volumeMounts) that hand the credentials Secret to the loader by reference."""
    secret = request.credentials
    if secret is None:
        return [], [], []
    if request.source.scheme == "s3":
        env = [
            {
                "name": variable,
                "valueFrom": {
                    "secretKeyRef": {
                        "name": secret,
                        "key": key,
                        **({} if key in cr.AWS_REQUIRED_KEYS else {"optional": True}),
                    }
                },
            }
            for variable, key in cr.AWS_ENV
        ]
        return env, [], []
    volume = cr.gcp_volume_name(secret)
    env = [{"name": cr.GCP_ENV, "value": cr.gcp_key_path(secret)}]
    volumes = [
        {
            "name": volume,
            "secret": {"secretName": secret, "items": [{"key": cr.GCP_KEY_FILE, "path": cr.GCP_KEY_FILE}]},
        }
    ]
    mounts = [{"name": volume, "mountPath": cr.gcp_mount_path(secret), "readOnly": True}]
    return env, volumes, mounts


_QUANTITY = re.compile(
    r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([-+]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?)$"
)
_SUFFIX = {
    **{s: 1024**i for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: 1000**i for i, s in enumerate(("k", "M", "G", "T", "P", "E"), start=1)},
}


def quantity_bytes(text: object) -> int | None:
    """A Kubernetes quantity of bytes (``100Gi``, ``1G``, ``5e9``, ``1.5Ti``) as an integer, rounded up;
    None when it is no quantity we read (the loader then checks the file system's size only)."""
    match = _QUANTITY.match(str(text or "").strip())
    if not match:
        return None
    number, exponent, suffix = match.groups()
    value = Decimal(number)
    if exponent is not None:
        value *= Decimal(10) ** int(exponent)
    elif suffix == "m":
        value /= 1000
    else:
        value *= _SUFFIX[suffix or ""]
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def capacity_of(pvc: Mapping[str, Any]) -> int | None:
    """The bound PVC's capacity in bytes (``status.capacity.storage``), None before it is bound.

    Not the request: a provisioner may give more than asked (a GCE PD is at least 10 GiB), and an
    unbound claim (WaitForFirstConsumer: the loader is its first consumer) has no capacity yet; the
    loader then checks the file system's own size and free space."""
    capacity = (status_of(pvc).get("capacity") or {}).get("storage")
    return quantity_bytes(capacity) if capacity is not None else None


def loader_args(
    pvc_name: str,
    request: LoadRequest,
    *,
    config: LoaderConfig,
    capacity: int | None = None,
    shards: int = 1,
) -> list[str]:
    args = [
        f"--source={request.source.url}",
        f"--target={target_dir(request)}",
        f"--pvc={pvc_name}",
        f"--termination-log={TERMINATION_LOG}",
        f"--workers={config.workers}",
    ]
    if capacity:
        args.append(f"--capacity={capacity}")
    if shards > 1:
        args.append(f"--shards={shards}")  # the index: JOB_COMPLETION_INDEX, set by the Job controller
    if request.credentials is None:
        args.append("--anonymous")
    return args


def loader_job(
    pvc: Mapping[str, Any], request: LoadRequest, *, config: LoaderConfig, shards: int = 1
) -> dict[str, Any]:
    """The Job that fills ``pvc`` as ``request`` asks; with ``shards`` above 1 an Indexed Job whose
    Pod ``i`` fetches the keys of shard ``i`` (:mod:`kaip.preload.shards`)."""
    pvc_name = name_of(pvc)
    name = job_name(pvc_name, request)
    env, volumes, mounts = _credential_env(request)
    pod_labels = labels(pvc_name)
    container = {
        "name": CONTAINER,
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [LOADER_COMMAND],
        "args": loader_args(pvc_name, request, config=config, capacity=capacity_of(pvc), shards=shards),
        "env": [
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            *env,
        ],
        "resources": _resources(request, config),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": VOLUME, "mountPath": MOUNT_PATH},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir of the Pod's own
            *mounts,
        ],
    }
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace_of(pvc) or None,
            "labels": dict(pod_labels),
            "annotations": {names.ANNOTATION_SOURCE: request.source.url},
            "ownerReferences": [owner_reference(pvc)],
        },
        "spec": {
            "backoffLimit": config.backoff_limit,
            "activeDeadlineSeconds": config.active_deadline_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": [EXIT_USAGE, EXIT_PERMANENT],
                        },
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": {"labels": dict(pod_labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": SERVICE_ACCOUNT,
                    # The token can only get and patch this PVC's status (see loader_access).
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "fsGroupChangePolicy": "OnRootMismatch",
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": VOLUME, "persistentVolumeClaim": {"claimName": pvc_name}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        *volumes,
                    ],
                },
            },
        },
    }
    if shards > 1:
        _index(job["spec"], shards)
    return job


def _index(spec: dict[str, Any], shards: int) -> None:
    """An Indexed Job: one Pod per shard, each index retried on its own (``backoffLimitPerIndex``),
    the whole Job failed at once by a permanent exit code of any shard, or when an index has used
    up its retries (``maxFailedIndexes`` 0: the load cannot end whole)."""
    limit = spec.pop("backoffLimit")
    spec.update(
        completionMode="Indexed",
        completions=shards,
        parallelism=shards,
        backoffLimitPerIndex=limit,
        maxFailedIndexes=0,
    )


def service_account() -> dict[str, Any]:
    """The loaders' ServiceAccount of a namespace (shared; it holds no permission of its own)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": SERVICE_ACCOUNT,
            "labels": {names.LABEL_COMPONENT: names.COMPONENT_LOADER},
        },
        "automountServiceAccountToken": False,
    }


def loader_access(pvc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Role, RoleBinding): the loaders of this namespace may get and patch this one PVC's status."""
    pvc_name = name_of(pvc)
    name = access_name(pvc_name)
    common = {
        "name": name,
        "labels": labels(pvc_name),
        "ownerReferences": [owner_reference(pvc)],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": dict(common),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["persistentvolumeclaims/status"],
                "resourceNames": [pvc_name],
                "verbs": ["get", "patch"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": dict(common),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace_of(pvc) or None}
        ],
    }
    return role, binding

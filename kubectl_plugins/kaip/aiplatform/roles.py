"""gcloud's roles (master, workers, parameter servers, evaluators) resolved and put in the replica
types of a Kubeflow job kind.

A role's count and machine type come from the scale tier's preset or from the TrainingInput, its
accelerator, image and command from its ``*Config``; the kind decides which replica type each role
becomes and refuses the roles it has no place for. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.training import ROLE_FLAG, normalize_tier
from kaip.errors import UsageError
from kaip.resources import kubeflow as kf


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

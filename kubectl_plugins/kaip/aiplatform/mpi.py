"""What an MPIJob needs beyond the other kinds, for both versions: mpi-operator's ``v2beta1`` and
training-operator's ``kubeflow.org/v1``. Which version runs, how many hosts the operator's hostfile
lists and how many slots each has, the launcher's ``mpirun`` line, and the spec fields each version
names. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaip.aiplatform.roles import Role
from kaip.errors import UsageError
from kaip.resources import kubeflow as kf

#: MPI launcher restarts before the job fails (mpi-operator's launcher Job would default to it too).
LAUNCHER_RETRIES = 6


def is_mpi(kind: kf.JobKind) -> bool:
    return kind.framework == kf.MPIJOB.framework


def version_kind(version: str | None) -> kf.JobKind:
    """The MPIJob kind of ``--mpi-api`` (None: the default version)."""
    chosen = version or kf.DEFAULT_MPI_VERSION
    if chosen not in kf.MPI_KINDS:
        raise UsageError(f"--mpi-api {chosen!r}: must be one of {', '.join(kf.MPI_KINDS)}")
    return kf.MPI_KINDS[chosen]


def slots_per_host(typed: Sequence[tuple[str, Role]]) -> int:
    """MPI slots per host: the GPUs of a worker, or of the launcher when it is the only host."""
    hosts = [r for t, r in typed if t == "Worker"] or [r for _, r in typed]
    acc = hosts[0].accelerator if hosts else None
    return int(acc["count"]) if acc else 1


def hosts(kind: kf.JobKind, *, workers: int, launcher_limits: Mapping[str, str]) -> int:
    """How many hosts the operator's hostfile lists, each with ``slotsPerWorker`` slots.

    mpi-operator (v2beta1) lists the workers, and the launcher with runLauncherAsWorker (no workers);
    training-operator (v1) lists the workers, and the launcher when its limits name a GPU (its
    ``isGPULauncher``: a resource ending in ``.com/gpu`` or containing ``gpu``).
    """
    if kind is not kf.MPIJOB_V1:
        return max(workers, 1)
    gpu_launcher = any(k.endswith(".com/gpu") or "gpu" in k for k in launcher_limits)
    if not workers and not gpu_launcher:
        raise UsageError(
            "--framework mpi on kubeflow.org/v1 (training-operator) needs workers (--worker-count and "
            "--worker-machine-type) or a GPU on the master: that MPIJob has no runLauncherAsWorker, and "
            "its hostfile lists the workers and only a launcher with GPUs"
        )
    return workers + (1 if gpu_launcher else 0)


def mpirun(*, hosts: int, slots: int, forward: Sequence[str] = ()) -> list[str]:
    """The launcher's ``mpirun``: one process per slot of every host the hostfile lists, with the
    launcher's ``forward`` variables (a network's NCCL/UCX settings) passed to every rank: mpi-operator's
    ranks start over ssh, whose sessions do not carry the worker container's environment."""
    exported = [arg for name in ("PATH", "LD_LIBRARY_PATH", *forward) for arg in ("-x", name)]
    return ["mpirun", "--allow-run-as-root", "-np", str(hosts * slots),
            "--hostfile", kf.MPI_HOSTFILE, "-bind-to", "none", "-map-by", "slot", *exported]  # fmt: skip


def spec(kind: kf.JobKind, *, slots: int, workers: int) -> dict[str, Any]:
    """The MPIJob fields beyond the replicas and run policy, as each version names them."""
    fields: dict[str, Any] = {"slotsPerWorker": slots}
    if kind is kf.MPIJOB_V1:
        # kubexec.sh execs into this container rather than the Pod's first (a webhook may add one).
        fields["mainContainer"] = kind.container
    elif not workers:
        fields["runLauncherAsWorker"] = True
    return fields

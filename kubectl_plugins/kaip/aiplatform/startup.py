"""Start order: whom a replica waits for before its program runs, and how it waits.

TensorFlow, XGBoost and Paddle replicas wait for the master's DNS name (an init container); the
mpi-operator launcher waits for every worker's; training-operator's v1 MPIJob gives its workers no
Service, so its launcher waits for them with kubectl. PyTorch (init-pytorch) and JAX (its
coordinator client retries) need nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaip.resources import kubeflow as kf

WAIT_TRIES = 300  # 2 s apart: 10 minutes for a master to come up before a worker gives up


def wait_for(names: Sequence[str], image: str) -> dict[str, Any]:
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


def peers(kind: kf.JobKind, *, job: str, rtype: str, workers: int, use_chief: bool) -> list[str]:
    """Whom a replica of ``rtype`` waits for: the master (TF, XGBoost, Paddle) or every worker (the
    MPI launcher); ``job`` is the job's object name, ``workers`` its count of workers."""
    if kind.operator_orders_start or kind is kf.JAXJOB:
        return []  # init-pytorch does it; JAX's coordinator client retries on its own
    if kind is kf.MPIJOB_V1:
        return []  # the launcher's command waits (mpi_v1_wait)
    if kind is kf.MPIJOB:
        # mpi-operator's headless Service publishes a worker's name once the worker is Ready.
        return [f"{job}-worker-{i}.{job}" for i in range(workers)] if rtype == "Launcher" else []
    if rtype in ("Master", "Chief"):
        return []
    primary = "chief" if use_chief and kind is kf.TFJOB else "master"
    return [f"{job}-{primary}-0"]


def mpi_v1_wait(kind: kf.JobKind, *, job: str, workers: int) -> list[str]:
    """v1 workers get no Service (no DNS name to wait for): the launcher waits with the kubectl its
    operator delivers and the Role it grants (get/list/watch Pods) until every worker is Ready."""
    if kind is not kf.MPIJOB_V1 or not workers:
        return []
    pods = " ".join(f"pod/{job}-worker-{i}" for i in range(workers))
    return [f"{kf.MPI_V1_KUBECTL} wait --for=condition=Ready --timeout={WAIT_TRIES * 2}s {pods}"]

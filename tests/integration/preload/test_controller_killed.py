"""The data-loader controller SIGKILLed while its workers are creating Jobs, against the real API
server and kube-controller-manager: the replica that takes over ends with exactly one Job per PVC.

200 annotated PVCs are created at once; the controller (a ``kaip-controller`` subprocess under the
manifest's RBAC, several workers) is killed twice, once after its first Jobs and once about halfway,
each time with creates in flight. A Job's name is a function of its PVC and request, so a create
the killed replica had sent meets 409 in the next one, which adopts it.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.kube.objects import name_of, owners_of, uid_of
from kaip.resources import kinds
from kaip_testbed import waiting
from kaip_testbed.dataloader import ControllerProcess, grant_lease

pytestmark = pytest.mark.integration

CLAIMS = 200
LOADER = "app.kubernetes.io/component=kaip-data-loader"


wait_for = functools.partial(waiting.wait_for, interval=0.1)


def loader_jobs(kube: Kube) -> list[dict[str, Any]]:
    return kube.list(kinds.JOBS, label_selector=LOADER).get("items") or []


@pytest.fixture
def controllers(
    controller_kubeconfig: Path, admin_kube: Kube, namespace: str, tmp_path: Path
) -> Iterator[Callable[[str], ControllerProcess]]:
    grant_lease(admin_kube, namespace)
    started: list[ControllerProcess] = []

    def start(identity: str) -> ControllerProcess:
        started.append(ControllerProcess(controller_kubeconfig, namespace, identity, tmp_path))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


def test_a_controller_killed_while_creating_jobs_leaves_exactly_one_job_per_pvc(
    kube: Kube, controllers: Callable[[str], ControllerProcess]
) -> None:
    names = [f"data-{i:03d}" for i in range(CLAIMS)]

    def pvc(name: str) -> dict[str, Any]:
        return kube.create(
            kinds.PVCS,
            {
                "metadata": {
                    "name": name,
                    "annotations": {"preload.kaip.dev/source": f"s3://datasets/{name}"},
                },
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            },
        )

    first = controllers("first")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(pvc, names))
    at_kill = []
    for proc, enough in ((first, 10), (controllers("second"), CLAIMS // 2)):
        wait_for(lambda: len(loader_jobs(kube)) >= enough, timeout=90, what=f"{enough} Jobs")  # noqa: B023
        proc.kill()
        at_kill.append(len(loader_jobs(kube)))
    assert at_kill[-1] < CLAIMS, f"the kills came after the last Job ({at_kill}): the test proves nothing"

    controllers("last")
    wait_for(lambda: len(loader_jobs(kube)) >= CLAIMS, timeout=90, what="a Job per PVC")
    time.sleep(3)  # a second Job for a PVC, if any were made, shows by now
    found = loader_jobs(kube)
    uids = {uid_of(p): name_of(p) for p in kube.list(kinds.PVCS).get("items") or ()}
    per_pvc = Counter(uids.get(str(o.get("uid")), "?") for j in found for o in owners_of(j))
    assert len(found) == CLAIMS
    assert set(per_pvc) == set(names) and set(per_pvc.values()) == {1}

"""The data-loader loop decides from its watches' stores but writes only on fresh state: a look with
nothing to do costs no API call; a PVC's first load goes without reads, on a condition write that
names the stored resourceVersion; a stored PVC that is behind the server never makes a Job."""

from __future__ import annotations

import copy
import itertools
from typing import TYPE_CHECKING, Any, cast

from kaip.kube.errors import Conflict, NotFound
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip.resources.kinds import Resource
from kaip_incluster.controller.loop import Controller, Settings

if TYPE_CHECKING:
    from kaip.kube.client import Kube


class FakeKube:
    """PVCs and Jobs of one namespace in memory; a patch naming a resourceVersion is conditional."""

    def __init__(self) -> None:
        self.pvcs: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._versions = itertools.count(100)

    def put_pvc(self, name: str, source: str) -> dict[str, Any]:
        self.pvcs[name] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": "ml",
                "uid": f"uid-{name}",
                "resourceVersion": str(next(self._versions)),
                "annotations": {names.ANNOTATION_SOURCE: source},
            },
        }
        return copy.deepcopy(self.pvcs[name])

    def get(self, resource: Resource, name: str, **_: Any) -> dict[str, Any]:
        self.calls.append(f"get {resource.plural}")
        found = (self.pvcs if resource is kinds.PVCS else self.jobs).get(name)
        if found is None:
            raise NotFound(f"{name} not found", status=404, details={"name": name})
        return copy.deepcopy(found)

    def create(self, resource: Resource, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append(f"create {resource.plural}")
        if resource is kinds.JOBS:
            if obj["metadata"]["name"] in self.jobs:
                raise Conflict("already exists", status=409)
            self.jobs[obj["metadata"]["name"]] = obj
        return obj

    def patch(self, resource: Resource, name: str, patch: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append(f"patch {resource.plural}")
        pvc = self.pvcs[name]
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != pvc["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified", status=409)
        if "status" in patch:
            pvc["status"] = patch["status"]
        pvc["metadata"]["resourceVersion"] = str(next(self._versions))
        return pvc


def controller() -> tuple[Controller, FakeKube]:
    kube = FakeKube()
    loop = Controller(cast("Kube", kube), Settings())
    loop.jobs_listed.set()  # as after the Jobs' first list
    return loop, kube


def test_a_first_load_makes_its_job_without_reading_and_a_quiet_look_costs_nothing() -> None:
    loop, kube = controller()
    loop.pvcs.apply("ADDED", kube.put_pvc("data", "s3://bucket/a"))
    loop.sync_pvc("ml", "data")
    assert "get persistentvolumeclaims" not in kube.calls and "get jobs" not in kube.calls
    assert kube.calls[0] == "patch persistentvolumeclaims" and kube.calls[-1] == "create jobs"
    (job,) = kube.jobs.values()

    # The watches bring the condition and the Job back: the next look has nothing to do.
    loop.pvcs.apply("MODIFIED", copy.deepcopy(kube.pvcs["data"]))
    loop.jobs.apply("ADDED", {"apiVersion": "batch/v1", "kind": "Job", **copy.deepcopy(job)})
    kube.calls.clear()
    loop.sync_pvc("ml", "data")
    assert kube.calls == []


def test_a_stored_pvc_behind_the_server_never_makes_a_job_for_its_old_request() -> None:
    loop, kube = controller()
    loop.pvcs.apply("ADDED", kube.put_pvc("data", "s3://bucket/old"))
    kube.put_pvc("data", "s3://bucket/new")  # changed; the watch has not told yet
    loop.sync_pvc("ml", "data")
    (job,) = kube.jobs.values()
    assert job["metadata"]["annotations"][names.ANNOTATION_SOURCE] == "s3://bucket/new/"
    assert "get persistentvolumeclaims" in kube.calls  # the refused write sent it to a fresh read


def test_a_job_the_store_has_not_seen_yet_is_adopted_not_made_twice() -> None:
    loop, kube = controller()
    pvc = kube.put_pvc("data", "s3://bucket/a")
    loop.pvcs.apply("ADDED", pvc)
    loop.sync_pvc("ml", "data")
    # A restarted controller: its store has the PVC with its condition, not yet the Job.
    again, _ = controller()
    again.kube = cast("Kube", kube)
    again.act.kube = cast("Kube", kube)
    again.pvcs.apply("ADDED", copy.deepcopy(kube.pvcs["data"]))
    again.sync_pvc("ml", "data")
    assert len(kube.jobs) == 1 and kube.calls.count("create jobs") == 1

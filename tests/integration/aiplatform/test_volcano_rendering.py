"""`--scheduler volcano` checked against Volcano's published PodGroup CRD; unproven at run time.

kaip renders training-operator's ``runPolicy.schedulingPolicy`` (``minAvailable``, ``queue``,
``priorityClass``, ``minResources``) and the Pods' ``priorityClassName``. training-operator v1.9.2, run
with ``--gang-scheduler-name=volcano``, turns that policy into a Volcano PodGroup
(``scheduling.volcano.sh/v1beta1``) and points the Pods at the ``volcano`` scheduler. Here the job is
rendered by the CLI (``--dry-run=client -o yaml``), accepted by training-operator's CRD, the PodGroup is
built from it as the operator would (:func:`operator_podgroup`, :func:`operator_pod_template`) and
created with a server dry run and ``fieldValidation=Strict`` against Volcano's own CRD (copied from the
``volcano.sh/volcano`` module by hack/testbin.sh, see :data:`VOLCANO_CRD`): every field must be kept.

No Volcano scheduler or controller runs here: whether Volcano then schedules the job as intended is
not proven.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import Invalid
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import Resource
from kaip_testbed import binaries
from kaip_testbed.kubeflow import install_crds, remove_crds, yaml_documents
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]

#: Where hack/testbin.sh copies Volcano's PodGroup CRD (from volcano.sh/volcano at the version it stamps
#: in ``volcano.version``).
VOLCANO_CRD = "volcano-crds/config/crd/volcano/bases/scheduling.volcano.sh_podgroups.yaml"
VOLCANO_PODGROUPS = Resource("scheduling.volcano.sh", "v1beta1", "podgroups", "PodGroup")
#: training-operator v1.9.2 pkg/controller.v1/control/podgroup_control.go, VolcanoControl.GetSchedulerName.
VOLCANO_SCHEDULER = "volcano"
#: volcano.sh/apis v1.9.0 (training-operator v1.9.2's dependency): scheduling/v1beta1/labels.go
#: KubeGroupNameAnnotationKey and batch/v1alpha1/labels.go TaskSpecKey.
GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"
TASK_SPEC_ANNOTATION = "volcano.sh/task-spec"

JOB = (
    "jobs", "submit", "training", "volcano_gang", "--framework=pytorch",
    "--master-image-uri=registry.local/train:1", "--scale-tier=custom",
    "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-tesla-a100,count=4",
    "--worker-count=3", "--worker-machine-type=n1-standard-8",
    "--worker-accelerator=type=nvidia-tesla-a100,count=4",
    "--scheduler=volcano", "--gang", "--queue=q", "--priority=p", "--dry-run=client", "-o", "yaml",
)  # fmt: skip


def volcano_crd_path() -> Path:
    """Volcano's published PodGroup CRD, as hack/testbin.sh copied it (never written by hand)."""
    path = binaries.folder(need=("volcano-crds",)) / VOLCANO_CRD
    if not path.exists():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


@pytest.fixture(scope="module")
def volcano_crd(admin_kube: Kube) -> Iterator[list[str]]:
    """Volcano's PodGroup CRD installed on the test bed's kube-apiserver for this module, then removed."""
    docs = [d for d in yaml_documents([volcano_crd_path()]) if d["kind"] == "CustomResourceDefinition"]
    assert [d["metadata"]["name"] for d in docs] == ["podgroups.scheduling.volcano.sh"]
    names = install_crds(admin_kube, docs)
    try:
        yield names
    finally:
        remove_crds(admin_kube, names)


def strict_create(kube: Kube, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """A server dry-run create with ``fieldValidation=Strict``: an unknown or mistyped field is refused."""
    query = {"fieldValidation": "Strict", "dryRun": "All"}
    return kube.request(  # type: ignore[no-any-return]
        "POST", resource.path(namespace=kube.namespace), query=query, body=obj, resource=resource
    )


def total_replicas(replica_specs: dict[str, Any]) -> int:
    """training-operator v1.9.2 pkg/util/k8sutil/k8sutil.go GetTotalReplicas: unset replicas count 1."""
    return sum(int(s["replicas"]) if s.get("replicas") is not None else 1 for s in replica_specs.values())


def operator_podgroup(job: dict[str, Any], *, replica_key: str) -> dict[str, Any]:
    """The Volcano PodGroup training-operator v1.9.2 makes for ``job`` (a created Kubeflow job: it needs
    its uid), as JSON.

    pkg/controller.v1/common/job.go ``JobController.ReconcileJobs`` (the ``GangSchedulerVolcano`` case):
    minMember = all replicas unless ``schedulingPolicy.minAvailable``; queue ``default`` unless
    ``schedulingPolicy.queue``; priorityClassName = ``schedulingPolicy.priorityClass``; minResources =
    ``schedulingPolicy.minResources`` (else ``calcPGMinResources``, which kaip never leaves to it).
    pkg/controller.v1/common/scheduling.go ``JobController.SyncPodGroup``: the job's name, namespace and
    annotations, and the controller reference of job_controller.go ``GenOwnerReference``. The Go
    struct's ``omitempty`` leaves out an empty priorityClassName and a nil minResources.
    """
    policy = job["spec"].get("runPolicy", {}).get("schedulingPolicy") or {}
    min_member = policy.get("minAvailable", total_replicas(job["spec"][replica_key]))
    if "minResources" not in policy:
        raise NotImplementedError("calcPGMinResources: kaip always renders minResources with --gang")
    spec: dict[str, Any] = {"minMember": min_member, "queue": policy.get("queue") or "default"}
    if policy.get("priorityClass"):
        spec["priorityClassName"] = policy["priorityClass"]
    spec["minResources"] = dict(policy["minResources"])
    meta = job["metadata"]
    metadata: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "ownerReferences": [
            {
                "apiVersion": job["apiVersion"],
                "kind": job["kind"],
                "name": meta["name"],
                "uid": meta["uid"],
                "blockOwnerDeletion": True,
                "controller": True,
            }
        ],
    }
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": metadata,
        "spec": spec,
    }


def operator_pod_template(template: dict[str, Any], *, job_name: str, replica_type: str) -> dict[str, Any]:
    """A replica's Pod template as training-operator v1.9.2 decorates it under Volcano:
    pkg/controller.v1/control/podgroup_control.go ``VolcanoControl.DecoratePodTemplateSpec`` (called from
    pkg/controller.v1/common/pod.go ``createNewPod`` with the lower-cased replica type): the scheduler
    name only when the template has none, and the PodGroup and task annotations."""
    pod = copy.deepcopy(template)
    if not pod["spec"].get("schedulerName"):
        pod["spec"]["schedulerName"] = VOLCANO_SCHEDULER
    annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[GROUP_NAME_ANNOTATION] = job_name
    annotations[TASK_SPEC_ANNOTATION] = replica_type.lower()
    return pod


def with_server_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with what training-operator's CRD and kube-apiserver default: ``runPolicy.suspend`` and
    each container port's ``protocol``."""
    spec = copy.deepcopy(spec)
    spec["runPolicy"].setdefault("suspend", False)
    for replica in spec["pytorchReplicaSpecs"].values():
        for container in replica["template"]["spec"]["containers"]:
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    return spec


@pytest.fixture
def created_job(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> dict[str, Any]:
    """The job `--scheduler volcano --gang --queue q --priority p` renders, as the server (training-operator's
    CRD, strict, dry run) returns it: with its uid and every schedulingPolicy field kept."""
    code, out, err = ai(capsys, kubeconfig, namespace, *JOB)
    assert code == 0, err
    (job,) = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "PyTorchJob"]
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 4,
        "minResources": {"cpu": "32", "memory": "120Gi", "nvidia.com/gpu": "16"},
        "queue": "q",
        "priorityClass": "p",
    }
    created = strict_create(kube, kf.PYTORCHJOBS, job)
    # Nothing kaip sent is pruned; the server adds only its defaults.
    assert created["spec"] == with_server_defaults(job["spec"])
    assert created["metadata"]["uid"]
    return created


def test_the_podgroup_training_operator_makes_is_accepted_whole_by_volcanos_crd(
    volcano_crd: list[str], kube: Kube, created_job: dict[str, Any]
) -> None:
    group = operator_podgroup(created_job, replica_key="pytorchReplicaSpecs")
    assert group["spec"] == {
        "minMember": 4,
        "queue": "q",
        "priorityClassName": "p",
        "minResources": {"cpu": "32", "memory": "120Gi", "nvidia.com/gpu": "16"},
    }
    accepted = strict_create(kube, VOLCANO_PODGROUPS, group)
    # Nothing pruned or defaulted away: Volcano's schema keeps every field the operator sets.
    assert accepted["spec"] == group["spec"]
    assert accepted["metadata"]["ownerReferences"] == group["metadata"]["ownerReferences"]
    assert accepted["metadata"]["annotations"] == group["metadata"]["annotations"]
    assert not kube.list(VOLCANO_PODGROUPS)["items"]  # a dry run: nothing stored


def test_the_pods_go_to_volcano_with_the_priority(created_job: dict[str, Any]) -> None:
    for rtype, spec in created_job["spec"]["pytorchReplicaSpecs"].items():
        template = spec["template"]
        # kaip leaves the scheduler to the operator, which sets it only where the template names none.
        assert "schedulerName" not in template["spec"]
        assert template["spec"]["priorityClassName"] == "p"
        pod = operator_pod_template(template, job_name=created_job["metadata"]["name"], replica_type=rtype)
        assert pod["spec"]["schedulerName"] == VOLCANO_SCHEDULER
        assert pod["metadata"]["annotations"][GROUP_NAME_ANNOTATION] == created_job["metadata"]["name"]


def _unknown_field(group: dict[str, Any]) -> None:
    group["spec"]["minMembers"] = group["spec"].pop("minMember")


def _bad_quantity(group: dict[str, Any]) -> None:
    group["spec"]["minResources"]["nvidia.com/gpu"] = "16 GPUs"


def _mistyped_min_member(group: dict[str, Any]) -> None:
    group["spec"]["minMember"] = "all"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_unknown_field, 'unknown field "spec.minMembers"'),
        (_bad_quantity, r'spec\.minResources\.nvidia\.com/gpu: Invalid value: "16 GPUs"'),
        (_mistyped_min_member, "spec.minMember in body must be of type integer"),
    ],
    ids=["unknown-field", "bad-quantity", "mistyped-minMember"],
)
def test_a_podgroup_volcano_does_not_define_is_refused(
    volcano_crd: list[str],
    kube: Kube,
    created_job: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    """The check can fail: a PodGroup off Volcano's schema is refused, so acceptance above means something."""
    group = operator_podgroup(created_job, replica_key="pytorchReplicaSpecs")
    mutate(group)
    with pytest.raises(Invalid, match=message):
        strict_create(kube, VOLCANO_PODGROUPS, group)

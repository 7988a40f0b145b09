"""``--secondary-network`` with what NCCL/UCX need for RoCEv2, and tenancy and placement: UID/GID/fsGroup
from flags or the catalog's tenant, ``--exclusive`` Guaranteed QoS with whole CPUs."""

from __future__ import annotations

from typing import Any

import pytest

from kaip.aiplatform import networks, submit, tenancy, training
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog, merge
from kaip.aiplatform.manifests import ClusterOptions
from kaip.aiplatform.tenancy import Tenancy
from kaip.errors import OperationFailed, UsageError

ROCE = {
    "network": "rdma/roce-net",
    "interface": "net1",
    "resources": {"rdma/rdma_shared_device_a": "1"},
    "hcas": ["mlx5_0", "mlx5_1"],
    "gidIndex": 3,
    "env": {"OMPI_MCA_pml": "ucx"},
}
CATALOG = Catalog(merge(BUILTIN, {"secondaryNetworks": {"roce": ROCE}}), source="test")


def plan(catalog: Catalog = CATALOG, **kw: Any) -> submit.Plan:
    options = {k: kw.pop(k) for k in list(kw) if k in ClusterOptions.__dataclass_fields__}
    return submit.plan(
        flags=training.SubmitFlags(job_id="j", **kw),
        config=None,
        options=ClusterOptions(**options),
        catalog=catalog,
    )


HOROVOD = {
    "framework": "mpi",
    "module_name": "tf_cnn_benchmarks",
    "master_image_uri": "horovod/horovod:0.28.1",
    "master_machine_type": "n1-standard-4",
    "worker_count": 2,
    "worker_machine_type": "a2-highgpu-8g",
    "secondary_networks": ("roce",),
}


def test_a_roce_network_gives_every_replica_what_nccl_and_ucx_need() -> None:
    job = plan(**HOROVOD).main
    for rtype, replica in job["spec"]["mpiReplicaSpecs"].items():
        template = replica["template"]
        assert template["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "rdma/roce-net@net1"
        main = template["spec"]["containers"][0]
        assert main["resources"]["limits"]["rdma/rdma_shared_device_a"] == "1", rtype
        assert main["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}
        assert {e["name"]: e["value"] for e in main["env"]} == {
            "NCCL_IB_HCA": "=mlx5_0:1,mlx5_1:1",
            "UCX_NET_DEVICES": "mlx5_0:1,mlx5_1:1",
            "NCCL_IB_GID_INDEX": "3",
            "UCX_IB_GID_INDEX": "3",
            "OMPI_MCA_pml": "ucx",
        }
    # Ranks start over ssh, outside the workers' environment: mpirun hands them the launcher's.
    script = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"][2]
    for name in ("NCCL_IB_HCA", "UCX_NET_DEVICES", "NCCL_IB_GID_INDEX", "UCX_IB_GID_INDEX", "OMPI_MCA_pml"):
        assert f"-x {name} " in script


def test_a_network_the_catalog_does_not_list_is_attached_alone() -> None:
    got = networks.additions(Catalog(BUILTIN), ["macvlan-a", "b"])
    assert got == networks.NetworkAdditions(networks=("macvlan-a", "b"))


def test_without_a_gid_index_nccl_finds_it_and_capabilities_can_be_switched_off() -> None:
    entry = {"resources": {"rdma/hca": "1"}, "hcas": ["mlx5_2"], "port": 2, "capabilities": []}
    got = networks.additions(Catalog(merge(BUILTIN, {"secondaryNetworks": {"n": entry}})), ["n"])
    assert got.env == {"NCCL_IB_HCA": "=mlx5_2:2", "UCX_NET_DEVICES": "mlx5_2:2"}
    assert got.capabilities == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"gidIndex": "three"}, r"secondaryNetworks.n.gidIndex must be a whole number"),
        ({"hcas": "mlx5_0"}, r"secondaryNetworks.n.hcas must be a list"),
        ({"hca": ["mlx5_0"]}, r"secondaryNetworks.n: unknown field hca"),
    ],
)
def test_a_broken_catalog_entry_is_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(OperationFailed, match=message):
        networks.additions(Catalog(merge(BUILTIN, {"secondaryNetworks": {"n": entry}}), source="test"), ["n"])


def test_two_networks_that_disagree_are_refused() -> None:
    doc = {"secondaryNetworks": {"a": {"gidIndex": 3}, "b": {"gidIndex": 1}}}
    with pytest.raises(UsageError, match="networks disagree on NCCL_IB_GID_INDEX"):
        networks.additions(Catalog(merge(BUILTIN, doc)), ["a", "b"])


def test_ids_reach_every_replicas_pod_security_context() -> None:
    job = plan(
        master_image_uri="i",
        master_machine_type="n1-standard-4",
        worker_count=1,
        worker_machine_type="n1-standard-4",
        tenancy=Tenancy(run_as_user=20001, run_as_group=20002, fs_group=20003),
    ).main
    for replica in job["spec"]["tfReplicaSpecs"].values():
        assert replica["template"]["spec"]["securityContext"] == {
            "runAsUser": 20001,
            "runAsGroup": 20002,
            "fsGroup": 20003,
        }


def test_exclusive_replicas_are_guaranteed_with_whole_cpus_init_containers_too() -> None:
    job = plan(
        master_image_uri="i",
        master_machine_type="n1-standard-8",
        worker_count=1,
        worker_machine_type="a2-highgpu-1g",
        secondary_networks=("roce",),
        tenancy=Tenancy(exclusive=True),
    ).main
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    resources = worker["containers"][0]["resources"]
    assert (
        resources["requests"]
        == resources["limits"]
        == {
            "cpu": "12",
            "memory": "85Gi",
            "nvidia.com/gpu": "1",
            "rdma/rdma_shared_device_a": "1",
        }
    )
    # The peer wait keeps its own small size, requests equal to limits.
    wait = worker["initContainers"][0]["resources"]
    assert wait["requests"] == wait["limits"] == {"cpu": "10m", "memory": "32Mi"}


def test_exclusive_needs_whole_cpus() -> None:
    catalog = Catalog(merge(BUILTIN, {"machineTypes": {"half": {"cpu": "500m", "memory": "1Gi"}}}))
    with pytest.raises(UsageError, match=r"--exclusive needs whole CPUs .* machine type half has 500m"):
        plan(catalog, master_image_uri="i", master_machine_type="half", tenancy=Tenancy(exclusive=True))
    assert tenancy.whole_cpus("8000m") == 8 and tenancy.whole_cpus("x") is None


TENANCY = {
    "tenancy": {
        "label": "example.org/project",
        "default": {"exclusive": True, "runAsUser": 1000},
        "tenants": {"lab-a": {"runAsUser": 20001, "fsGroup": 20001}},
    }
}


def test_the_catalog_chooses_the_tenant_by_namespace_label_and_flags_win() -> None:
    catalog = Catalog(merge(BUILTIN, TENANCY))
    assert tenancy.label_of(catalog) == "example.org/project"
    lab_a = tenancy.defaults(catalog, {"example.org/project": "lab-a"})
    assert lab_a == Tenancy(run_as_user=20001, fs_group=20001, exclusive=True)
    assert tenancy.defaults(catalog, {}) == Tenancy(run_as_user=1000, exclusive=True)
    flags = Tenancy(run_as_user=5, exclusive=False)
    assert flags.over(lab_a) == Tenancy(run_as_user=5, fs_group=20001, exclusive=False)
    assert tenancy.label_of(Catalog(BUILTIN)) is None  # no tenants: the namespace is not read


def test_a_broken_tenant_entry_is_named() -> None:
    doc = {"tenancy": {"tenants": {"lab-a": {"runAsUser": "root"}}}}
    with pytest.raises(OperationFailed, match=r"tenancy.tenants.lab-a.runAsUser must be a whole number"):
        tenancy.defaults(Catalog(merge(BUILTIN, doc)), {"kaip.dev/tenant": "lab-a"})


class _Namespaces:
    """A cluster that answers only for namespaces: the labels given, or a refusal."""

    namespace = "lab-a-ns"

    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels
        self.asked: list[str] = []

    def get(self, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        from kaip.kube.errors import Forbidden

        self.asked.append(name)
        if self.labels is None:
            raise Forbidden("namespaces is forbidden", status=403, reason="Forbidden")
        return {"metadata": {"name": name, "labels": self.labels}}


def test_the_namespace_label_is_read_only_where_the_catalog_names_tenants() -> None:
    from kaip.aiplatform.preflight import with_tenancy

    catalog = Catalog(merge(BUILTIN, TENANCY))
    cluster = _Namespaces({"example.org/project": "lab-a"})
    options, warning = with_tenancy(cluster, catalog, ClusterOptions(tenancy=Tenancy(fs_group=7)))  # type: ignore[arg-type]
    assert options.tenancy == Tenancy(run_as_user=20001, fs_group=7, exclusive=True) and not warning
    refusing = _Namespaces(None)
    options, warning = with_tenancy(refusing, catalog, ClusterOptions())  # type: ignore[arg-type]
    assert options.tenancy == Tenancy(run_as_user=1000, exclusive=True)  # the default still applies
    assert "cannot read namespace lab-a-ns (forbidden), whose label example.org/project names" in warning
    quiet = _Namespaces({})
    assert with_tenancy(quiet, Catalog(BUILTIN), ClusterOptions())[0].tenancy == Tenancy()  # type: ignore[arg-type]
    assert quiet.asked == []

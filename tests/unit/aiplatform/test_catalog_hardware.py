"""What the catalog makes of hardware and runtimes, seen in the rendered job: which nodes a replica's
Pod can land on (GPU feature discovery's labels) and which image it runs."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.aiplatform import builtin_catalog, catalog, submit, training
from kaip.aiplatform.manifests import ClusterOptions
from kaip.errors import OperationFailed, UsageError
from kaip.resources import kubeflow as kf

PRODUCT = "nvidia.com/gpu.product"
BUILTIN = catalog.Catalog(builtin_catalog.BUILTIN)
SPEC_KEYS = {"tensorflow": "tfReplicaSpecs", "mpi": "mpiReplicaSpecs", "jax": "jaxReplicaSpecs"}
PRIMARY = {"mpi": "Launcher", "jax": "Worker"}


def admin(text: str) -> catalog.Catalog:
    return catalog.from_configmap_text(text, where="ConfigMap kaip-system/ai-platform-catalog")


def pod(cat: catalog.Catalog = BUILTIN, *, framework: str = "tensorflow", **kw: Any) -> dict[str, Any]:
    """The primary replica's Pod spec for a command line's flags."""
    kw.setdefault("job_id", "hw_job")
    kw.setdefault("module_name", "trainer.task")
    if kw.get("master_accelerator") or kw.get("master_machine_type"):
        kw.setdefault("scale_tier", "custom")
        kw.setdefault("master_machine_type", "n1-standard-8")
    plan = submit.plan(
        flags=training.SubmitFlags(**kw),
        config=None,
        options=ClusterOptions(framework=framework),
        catalog=cat,
    )
    key = SPEC_KEYS.get(framework, kf.BY_FRAMEWORK[framework].replica_key)
    spec: dict[str, Any] = plan.main["spec"][key][PRIMARY.get(framework, "Master")]["template"]["spec"]
    return spec


def limits(spec: Mapping[str, Any]) -> Mapping[str, str]:
    return spec["containers"][0]["resources"]["limits"]  # type: ignore[no-any-return]


def image(spec: Mapping[str, Any]) -> str:
    return str(spec["containers"][0]["image"])


def _holds(requirement: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    assert set(requirement) <= {"key", "operator", "values"}, requirement
    key, op, values = requirement["key"], requirement["operator"], requirement.get("values") or []
    if op == "In":
        assert values, "In needs values"
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    assert op == "DoesNotExist", op
    return key not in labels


def fits(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """kube-scheduler's node selection for a Pod spec and a node's labels: nodeSelector and every
    required node affinity term's shape checked, then both evaluated."""
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    affinity = spec.get("affinity") or {}
    assert set(affinity) <= {"nodeAffinity", "podAffinity", "podAntiAffinity"}, affinity
    node = affinity.get("nodeAffinity") or {}
    assert set(node) <= {"requiredDuringSchedulingIgnoredDuringExecution"}, node
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    assert set(required) == {"nodeSelectorTerms"}, required
    terms = required["nodeSelectorTerms"]
    assert terms and all(set(t) == {"matchExpressions"} for t in terms), terms
    return any(all(_holds(r, labels) for r in t["matchExpressions"]) for t in terms)


def gfd(product: str, **more: str) -> dict[str, str]:
    """The labels GPU feature discovery puts on a node whose GPUs are ``product``."""
    return {"kubernetes.io/hostname": "node-1", PRODUCT: product, **more}


# -- accelerators select hardware -------------------------------------------------------------------
@pytest.mark.parametrize("accelerator", sorted(builtin_catalog.BUILTIN["accelerators"]))
def test_every_builtin_accelerator_requires_its_gpu_product(accelerator: str) -> None:
    spec = pod(master_accelerator=f"type={accelerator},count=1")
    products = builtin_catalog.BUILTIN["accelerators"][accelerator]["products"]
    assert products and all(" " not in p for p in products)  # GFD's form: no spaces
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": PRODUCT, "operator": "In", "values": products}]}]
    }
    assert all(fits(spec, gfd(p)) for p in products)
    assert not fits(spec, {"kubernetes.io/hostname": "cpu-node"})  # no GPU, no product label
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]


@pytest.mark.parametrize(
    ("accelerator", "fits_on", "not_on"),
    [
        ("nvidia-tesla-k80", ["Tesla-K80"], ["Tesla-T4", "Tesla-P4"]),
        ("nvidia-tesla-p4", ["Tesla-P4"], ["Tesla-P100-PCIE-16GB", "Tesla-T4"]),
        ("nvidia-tesla-p100", ["Tesla-P100-PCIE-16GB", "Tesla-P100-SXM2-16GB"], ["Tesla-P4"]),
        ("nvidia-tesla-t4", ["Tesla-T4"], ["NVIDIA-L4", "Tesla-V100-SXM2-16GB"]),
        (
            "nvidia-tesla-v100",
            ["Tesla-V100-SXM2-16GB", "Tesla-V100-SXM2-32GB", "Tesla-V100-PCIE-32GB"],
            ["Tesla-T4", "NVIDIA-A100-SXM4-40GB"],
        ),
        (
            "nvidia-tesla-a100",
            ["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB", "A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB"],
            # a node whose A100s are cut into slices (GFD "single") has no whole A100 to give
            ["Tesla-V100-SXM2-32GB", "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"],
        ),
        ("nvidia-a100-80gb", ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"], ["NVIDIA-A100-SXM4-40GB"]),
        ("nvidia-h100-80gb", ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"], ["NVIDIA-A100-SXM4-80GB"]),
        ("nvidia-l4", ["NVIDIA-L4"], ["Tesla-T4", "NVIDIA-L40S"]),
    ],
)
def test_a_gpu_type_lands_on_its_boards_and_no_other(
    accelerator: str, fits_on: list[str], not_on: list[str]
) -> None:
    spec = pod(master_accelerator=f"type={accelerator},count=2")
    assert limits(spec)["nvidia.com/gpu"] == "2"
    assert [p for p in fits_on if not fits(spec, gfd(p))] == []
    assert [p for p in not_on if fits(spec, gfd(p))] == []


def test_a2_machine_types_carry_the_a100_selection() -> None:
    spec = pod(master_machine_type="a2-highgpu-4g")
    assert limits(spec)["nvidia.com/gpu"] == "4"
    assert fits(spec, gfd("NVIDIA-A100-SXM4-40GB")) and not fits(spec, gfd("Tesla-T4"))


def test_cpu_replicas_are_not_tied_to_gpu_nodes() -> None:
    spec = pod(master_machine_type="n1-standard-8")
    assert "affinity" not in spec and "nodeSelector" not in spec and "tolerations" not in spec


# -- MIG ----------------------------------------------------------------------------------------------
def test_mig_slice_with_the_mixed_strategy_asks_for_its_resource_on_the_parent_gpu() -> None:
    spec = pod(master_accelerator="type=nvidia-a100-mig-1g.5gb,count=2")
    assert limits(spec)["nvidia.com/mig-1g.5gb"] == "2" and "nvidia.com/gpu" not in limits(spec)
    mixed = {"nvidia.com/mig.strategy": "mixed"}
    assert fits(spec, gfd("NVIDIA-A100-PCIE-40GB", **mixed))
    assert fits(spec, gfd("NVIDIA-A100-SXM4-40GB", **mixed))
    assert not fits(spec, gfd("NVIDIA-A100-SXM4-80GB", **mixed))  # its slices are 1g.10gb
    assert not fits(spec, gfd("NVIDIA-H100-80GB-HBM3", **mixed))


def test_same_mig_resource_on_two_gpus_is_told_apart_by_the_product() -> None:
    # nvidia.com/mig-1g.10gb exists on A100 80GB and H100 alike: the product picks the GPU asked for.
    h100 = pod(master_accelerator="type=nvidia-h100-80gb-mig-1g.10gb,count=1")
    a100 = pod(master_accelerator="type=nvidia-a100-80gb-mig-1g.10gb,count=1")
    assert limits(h100)["nvidia.com/mig-1g.10gb"] == limits(a100)["nvidia.com/mig-1g.10gb"] == "1"
    assert fits(h100, gfd("NVIDIA-H100-80GB-HBM3")) and not fits(h100, gfd("NVIDIA-A100-SXM4-80GB"))
    assert fits(a100, gfd("NVIDIA-A100-SXM4-80GB")) and not fits(a100, gfd("NVIDIA-H100-80GB-HBM3"))


def test_mig_slice_with_the_single_strategy() -> None:
    # GFD "single": slices are counted as nvidia.com/gpu and the product names the profile.
    single = {"nvidia.com/mig.strategy": "single"}
    default_products = pod(master_accelerator="type=nvidia-a100-mig-3g.20gb,count=1")
    assert fits(default_products, gfd("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", **single))
    assert fits(default_products, gfd("A100-SXM4-40GB-MIG-3g.20gb", **single))  # GFD README's example
    assert not fits(default_products, gfd("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", **single))
    # The admin of a single-strategy cluster switches the resource and keeps only the sliced nodes.
    cat = admin(
        """
accelerators:
  nvidia-a100-mig-3g.20gb:
    resource: nvidia.com/gpu
    products: [NVIDIA-A100-SXM4-40GB-MIG-3g.20gb, NVIDIA-A100-PCIE-40GB-MIG-3g.20gb]
"""
    )
    spec = pod(cat, master_accelerator="type=nvidia-a100-mig-3g.20gb,count=1")
    assert limits(spec)["nvidia.com/gpu"] == "1" and "nvidia.com/mig-3g.20gb" not in limits(spec)
    assert fits(spec, gfd("NVIDIA-A100-PCIE-40GB-MIG-3g.20gb", **single))
    assert not fits(spec, gfd("NVIDIA-A100-PCIE-40GB"))  # a whole A100 is not what was asked for
    assert not fits(spec, gfd("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", **single))


# -- merging with machine types and regions, admin overrides -----------------------------------------
DGX = """
machineTypes:
  dgx-a100:
    cpu: "120"
    memory: 900Gi
    nodeSelector: {pool: dgx}
    matchExpressions: [{key: kaip.dev/maintenance, operator: DoesNotExist}]
    accelerator: {type: nvidia-tesla-a100, count: 8}
regions:
  on-prem-a:
    nodeSelector: {topology.kubernetes.io/region: a}
    matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [a1, a2]}]
"""


def test_product_selection_adds_to_machine_type_and_region_placement() -> None:
    spec = pod(admin(DGX), master_machine_type="dgx-a100", region="on-prem-a")
    assert spec["nodeSelector"] == {"pool": "dgx", "topology.kubernetes.io/region": "a"}
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [e["key"] for e in term["nodeSelectorTerms"][0]["matchExpressions"]] == [
        "kaip.dev/maintenance",
        "topology.kubernetes.io/zone",
        PRODUCT,
    ]
    node = gfd("NVIDIA-A100-SXM4-80GB", pool="dgx", **{"topology.kubernetes.io/region": "a"})
    node["topology.kubernetes.io/zone"] = "a2"
    assert fits(spec, node)
    assert not fits(spec, {**node, PRODUCT: "Tesla-V100-SXM2-32GB"})
    assert not fits(spec, {**node, "topology.kubernetes.io/zone": "b1"})
    assert not fits(spec, {**node, "kaip.dev/maintenance": "true"})
    assert not fits(spec, {**node, "pool": "other"})


@pytest.mark.parametrize(
    ("entry", "selector"),
    [
        ("{products: []}", None),
        ("{products: null}", None),
        # the admin's pinned product (the layout this catalog documented before) wins over the list
        ("{nodeSelector: {nvidia.com/gpu.product: Custom-A100}}", {PRODUCT: "Custom-A100"}),
    ],
)
def test_admin_switches_product_selection_off_or_pins_a_product(
    entry: str, selector: dict[str, str] | None
) -> None:
    spec = pod(
        admin(f"accelerators: {{nvidia-tesla-a100: {entry}}}"),
        master_accelerator="type=nvidia-tesla-a100,count=1",
    )
    assert "affinity" not in spec
    assert spec.get("nodeSelector") == selector
    assert limits(spec)["nvidia.com/gpu"] == "1"  # the rest of the built-in entry stays


def test_admin_lists_its_own_products_and_adds_a_type() -> None:
    cat = admin(
        """
accelerators:
  nvidia-tesla-t4: {products: [Tesla-T4, Tesla-T4-SHARED]}
  nvidia-rtx-6000:
    resource: nvidia.com/gpu
    products: [NVIDIA-RTX-6000-Ada-Generation]
    matchExpressions: [{key: nvidia.com/gpu.memory, operator: Gt, values: ["40000"]}]
"""
    )
    t4 = pod(cat, master_accelerator="type=nvidia-tesla-t4,count=1")
    assert fits(t4, gfd("Tesla-T4-SHARED")) and fits(t4, gfd("Tesla-T4"))
    rtx = pod(cat, master_accelerator="type=nvidia-rtx-6000,count=1")
    expressions = rtx["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"]
    assert expressions == [
        {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["40000"]},
        {"key": PRODUCT, "operator": "In", "values": ["NVIDIA-RTX-6000-Ada-Generation"]},
    ]


def test_an_admin_expression_on_the_product_replaces_the_list() -> None:
    cat = admin(
        "accelerators: {nvidia-tesla-v100: {matchExpressions: "
        "[{key: nvidia.com/gpu.product, operator: NotIn, values: [Tesla-V100-PCIE-16GB]}]}}"
    )
    spec = pod(cat, master_accelerator="type=nvidia-tesla-v100,count=1")
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ] == [{"matchExpressions": [{"key": PRODUCT, "operator": "NotIn", "values": ["Tesla-V100-PCIE-16GB"]}]}]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{products: Tesla-T4}", "accelerators.nvidia-tesla-t4.products must be a list"),
        (
            "{matchExpressions: [{key: a}]}",
            "accelerators.nvidia-tesla-t4.matchExpressions entries need key, operator",
        ),
        ("{matchExpressions: {key: a}}", "accelerators.nvidia-tesla-t4.matchExpressions must be a list"),
    ],
)
def test_broken_admin_accelerator_entries_name_the_field(entry: str, message: str) -> None:
    with pytest.raises(OperationFailed, match=message):
        pod(
            admin(f"accelerators: {{nvidia-tesla-t4: {entry}}}"),
            master_accelerator="type=nvidia-tesla-t4,count=1",
        )


# -- images run what they claim ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("runtime", "framework", "python", "gpu", "expected"),
    [
        ("2.11", "tensorflow", None, False, "tensorflow/tensorflow:2.11.0"),
        ("2.11", "tensorflow", "3.8", True, "tensorflow/tensorflow:2.11.0-gpu"),
        ("1.15", "tensorflow", "3.6", True, "tensorflow/tensorflow:1.15.5-gpu-py3"),
        ("2.15", "tensorflow", None, False, "tensorflow/tensorflow:2.15.0"),
        ("2.15", "tensorflow", "3.11", True, "tensorflow/tensorflow:2.15.0-gpu"),
        ("2.11", "pytorch", "3.10", True, "pytorch/pytorch:1.13.1-cuda11.6-cudnn8-runtime"),
        ("2.15", "pytorch", None, False, "pytorch/pytorch:2.1.2-cuda12.1-cudnn8-runtime"),
        ("2.11", "xgboost", None, True, "rapidsai/rapidsai-core:23.06-cuda11.8-runtime-ubuntu22.04-py3.10"),
        ("2.15", "xgboost", "3.10", False, "rapidsai/base:23.12-cuda12.0-py3.10"),
        ("2.11", "jax", None, True, "nvcr.io/nvidia/jax:23.10-py3"),
        ("2.11", "paddle", "3.7", False, "paddlepaddle/paddle:2.4.2"),
        ("2.11", "paddle", None, True, "paddlepaddle/paddle:2.4.2-gpu-cuda11.7-cudnn8.4-trt8.4"),
        ("2.15", "paddle", "3.10", False, "paddlepaddle/paddle:2.6.0"),
        ("2.11", "mpi", None, False, "horovod/horovod-cpu:0.28.1"),
        ("2.11", "mpi", "3.8", True, "horovod/horovod:0.28.1"),
    ],
)
def test_runtime_image_per_framework_python_and_gpu(
    runtime: str, framework: str, python: str | None, gpu: bool, expected: str
) -> None:
    kw: dict[str, Any] = {"runtime_version": runtime, "python_version": python}
    if gpu:
        kw["master_accelerator"] = "type=nvidia-tesla-t4,count=1"
    assert image(pod(framework=framework, **kw)) == expected


def test_default_runtime_serves_every_framework_on_cpu_and_gpu() -> None:
    default = builtin_catalog.BUILTIN["defaultRuntimeVersion"]
    for framework in kf.FRAMEWORKS:
        for gpu in (False, True):
            assert BUILTIN.runtime_image(version=default, framework=framework, python=None, gpu=gpu)


def test_every_builtin_image_entry_is_per_python_with_both_variants() -> None:
    for version, runtime in builtin_catalog.BUILTIN["runtimeVersions"].items():
        assert "pythonVersions" not in runtime  # derived from the images now
        for framework, by_python in runtime["images"].items():
            assert framework in kf.FRAMEWORKS
            for python, images in by_python.items():
                assert python.count(".") == 1 and all(p.isdigit() for p in python.split(".")), python
                assert set(images) == {"cpu", "gpu"}, (version, framework, python)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"runtime_version": "2.11", "python_version": "3.7"},
            "--python-version 3.7 is not served with runtime version 2.11 for --framework tensorflow (served: 3.8)",
        ),
        (
            {"runtime_version": "1.15", "python_version": "2.7"},
            "--python-version 2.7 is not served with runtime version 1.15 for --framework tensorflow (served: 3.6)",
        ),
        (
            {"runtime_version": "2.11", "python_version": "3.8", "framework": "paddle"},
            "--python-version 3.8 is not served with runtime version 2.11 for --framework paddle (served: 3.7)",
        ),
        (
            {"runtime_version": "1.15", "framework": "pytorch"},
            "runtime version 1.15 has no image for --framework pytorch in the built-in catalog "
            "(frameworks served: tensorflow)",
        ),
    ],
)
def test_combinations_no_image_serves_are_refused_in_one_line(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as err:
        pod(**kw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_custom_image_needs_no_runtime_entry() -> None:
    spec = pod(master_image_uri="registry.local/train:1", module_name=None, python_version="3.7")
    assert image(spec) == "registry.local/train:1"


# -- admin overrides of runtime images --------------------------------------------------------------
def test_admin_adds_a_python_version_to_a_runtime() -> None:
    cat = admin(
        """
runtimeVersions:
  "2.11":
    images:
      tensorflow:
        "3.10": {cpu: registry.local/tf:2.11-py3.10, gpu: registry.local/tf:2.11-py3.10-gpu}
"""
    )
    assert image(pod(cat, runtime_version="2.11")) == "registry.local/tf:2.11-py3.10"  # the newest
    assert image(pod(cat, runtime_version="2.11", python_version="3.8")) == "tensorflow/tensorflow:2.11.0"
    assert image(
        pod(
            cat,
            runtime_version="2.11",
            python_version="3.10",
            master_accelerator="type=nvidia-tesla-t4,count=1",
        )
    ) == ("registry.local/tf:2.11-py3.10-gpu")
    with pytest.raises(UsageError, match=r"for --framework tensorflow \(served: 3\.8, 3\.10\)"):
        pod(cat, runtime_version="2.11", python_version="3.9")


def test_admin_catalog_in_the_former_layout_keeps_working() -> None:
    # images.FRAMEWORK.{cpu,gpu} with the runtime's pythonVersions, as this catalog was documented.
    cat = admin(
        """
runtimeVersions:
  "2.11":
    pythonVersions: ["3.7"]
    images: {tensorflow: {cpu: registry.local/tf:2.11, gpu: registry.local/tf:2.11-gpu}}
"""
    )
    assert image(pod(cat, runtime_version="2.11", python_version="3.7")) == "registry.local/tf:2.11"
    gpu = pod(cat, runtime_version="2.11", master_accelerator="type=nvidia-tesla-t4,count=1")
    assert image(gpu) == "registry.local/tf:2.11-gpu"
    with pytest.raises(UsageError, match=r"--python-version 3\.8 is not served .* \(served: 3\.7\)"):
        pod(cat, runtime_version="2.11", python_version="3.8")
    # other frameworks of the runtime keep the built-in per-Python images
    assert image(pod(cat, framework="paddle", runtime_version="2.11")) == "paddlepaddle/paddle:2.4.2"


def test_admin_removes_an_image_and_is_told_about_unquoted_versions() -> None:
    gone = admin('runtimeVersions: {"2.11": {images: {xgboost: {"3.10": null}}}}')
    with pytest.raises(UsageError, match="no image for --framework xgboost"):
        pod(gone, framework="xgboost", runtime_version="2.11")
    unquoted = admin('runtimeVersions: {"2.11": {images: {tensorflow: {3.10: {cpu: x, gpu: y}}}}}')
    with pytest.raises(OperationFailed, match=r"Python version 3\.1 must be a quoted string"):
        pod(unquoted, runtime_version="2.11")


def test_a_python_without_a_gpu_image_is_refused_for_gpu_replicas() -> None:
    cat = admin('runtimeVersions: {"2.11": {images: {tensorflow: {"3.12": {cpu: registry.local/tf:cpu}}}}}')
    assert image(pod(cat, runtime_version="2.11", python_version="3.12")) == "registry.local/tf:cpu"
    with pytest.raises(
        UsageError,
        match=r"no GPU image for --framework tensorflow with Python 3\.12 .*\(Python versions with one: 3\.8\)",
    ):
        pod(
            cat,
            runtime_version="2.11",
            python_version="3.12",
            master_accelerator="type=nvidia-tesla-t4,count=1",
        )


def test_the_builtin_catalog_dumps_as_yaml() -> None:
    # `config show` prints it; tuples or other non-YAML values would break that.
    assert yaml.safe_load(yaml.safe_dump(builtin_catalog.BUILTIN)) == builtin_catalog.BUILTIN


# -- what the operators' CRDs accept ----------------------------------------------------------------
REPO = Path(__file__).resolve().parents[3]
#: Go modules of the CRDs (versions pinned by hack/testbin.sh, which downloads them) and their folders.
CRD_MODULES = {
    "training-operator": ("TRAINING_OPERATOR_VERSION", "manifests/base/crds"),
    "mpi-operator": ("MPI_OPERATOR_VERSION", "manifests/base"),
}


def _module_dir(module: str) -> Path:
    pin, _ = CRD_MODULES[module]
    script = (REPO / "hack" / "testbin.sh").read_text()
    match = re.search(rf'^{pin}="\$\{{KAIP_{pin}:-([^}}]+)\}}"', script, re.MULTILINE)
    assert match, f"hack/testbin.sh no longer pins {pin}"
    cache = os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod")
    return Path(cache) / "github.com" / "kubeflow" / f"{module}@{os.environ.get(f'KAIP_{pin}') or match[1]}"


@functools.cache
def template_spec_schema(kind: str, api_version: str) -> Mapping[str, Any]:
    """The Pod spec schema inside the replica specs of the upstream CRD serving ``kind``."""
    version = api_version.split("/")[1]
    for module, (_, folder) in CRD_MODULES.items():
        file = _module_dir(module) / folder / f"kubeflow.org_{kind.lower()}s.yaml"
        if not file.is_file():
            continue
        crd = yaml.load(file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for served in crd["spec"]["versions"]:
            if served["name"] == version:
                spec = served["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                replicas = spec[kf.BY_KIND[kind].replica_key]["additionalProperties"]
                return replicas["properties"]["template"]["properties"]["spec"]  # type: ignore[no-any-return]
    pytest.fail(f"no upstream {kind} {version} CRD in the Go module cache: run hack/testbin.sh")


def refused(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """What structural validation with fieldValidation=Strict refuses: types, required fields,
    unknown fields."""
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, (int, str)) else [f"{path}: neither integer nor string"]
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}
    kind = schema.get("type")
    if kind in kinds and not isinstance(value, kinds[kind]):
        return [f"{path}: not of type {kind}"]
    errors: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            errors += refused(item, schema.get("items") or {}, f"{path}[{i}]")
    if kind == "object":
        errors += [f"{path}.{k}: required" for k in schema.get("required") or () if k not in value]
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += refused(item, props[key], f"{path}.{key}")
            elif isinstance(extra, Mapping):
                errors += refused(item, extra, f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{key}: unknown field")
    return errors


@pytest.mark.testbin  # the upstream CRDs, from the Go modules hack/testbin.sh downloads
@pytest.mark.parametrize("framework", ["tensorflow", "pytorch", "xgboost", "jax", "paddle", "mpi"])
def test_placement_passes_the_operators_crd_schemas(framework: str) -> None:
    flags = training.SubmitFlags(
        job_id="placed",
        module_name="trainer.task",
        scale_tier="custom",
        region="on-prem-a",
        master_machine_type="dgx-a100",
        **({} if framework == "jax" else {"worker_count": 1, "worker_machine_type": "n1-standard-8"}),
        **({} if framework == "jax" else {"worker_accelerator": "type=nvidia-h100-80gb-mig-3g.40gb,count=1"}),
    )
    job = submit.plan(
        flags=flags, config=None, options=ClusterOptions(framework=framework), catalog=admin(DGX)
    ).main
    schema = template_spec_schema(job["kind"], job["apiVersion"])
    specs = job["spec"][kf.BY_KIND[job["kind"]].replica_key]
    for rtype, replica in specs.items():
        spec = replica["template"]["spec"]
        assert spec["affinity"]["nodeAffinity"], rtype  # the region's requirement reaches every replica
        assert refused(spec, schema, f".{rtype}") == []

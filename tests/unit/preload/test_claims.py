"""The PVC `kubectl pvc-preload create` sends, and how a claim's condition reads in list/status."""

from __future__ import annotations

import pytest

from kaip.errors import UsageError
from kaip.preload.claims import build_claim, retry_patch, view
from kaip.resources.preload import (
    ANNOTATION_CREDENTIALS,
    ANNOTATION_PATH,
    ANNOTATION_RETRY,
    ANNOTATION_SOURCE,
    CONDITION_LOADED,
)
from kaip.storage.source import parse_source

SRC = parse_source("s3://bucket/data")


def test_claim_carries_the_contract_annotations() -> None:
    claim = build_claim(
        name="imagenet",
        source=SRC,
        size="100Gi",
        storage_class="fast",
        access_modes=("RWX", "ReadWriteMany"),
        credentials="aws",
        path="/train/",
    )
    assert claim["metadata"]["annotations"] == {
        ANNOTATION_SOURCE: "s3://bucket/data/",
        ANNOTATION_CREDENTIALS: "aws",
        ANNOTATION_PATH: "train",
    }
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "fast",
    }


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"name": "Bad_Name"}, "NAME"),
        ({"size": "lots"}, "--size"),
        ({"access_modes": ("RW",)}, "--access-mode"),
        ({"path": "../up"}, "--path"),
        ({"path": "a//b"}, "--path"),
        ({"credentials": "Not A Secret"}, "--credentials"),
    ],
)
def test_bad_flags_are_named(kwargs: dict, flag: str) -> None:
    args = {"name": "ok", "source": SRC, "size": "1Gi", **kwargs}
    with pytest.raises(UsageError, match=flag):
        build_claim(**args)


def pvc(condition: dict | None = None, **annotations: str) -> dict:
    obj = {
        "metadata": {
            "name": "d",
            "namespace": "ns",
            "resourceVersion": "7",
            "annotations": {ANNOTATION_SOURCE: "gs://b/p/", **annotations},
        },
        "spec": {"resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}},
    }
    if condition:
        obj["status"]["conditions"] = [
            {"type": "Resizing", "status": "True"},
            {"type": CONDITION_LOADED, **condition},
        ]
    return obj


def test_states_from_the_condition() -> None:
    loading = view(pvc({"status": "Unknown", "reason": "Loading", "message": "3/4 objects, 10/40 bytes"}))
    assert (loading.state, loading.progress_text(), loading.size) == ("Loading", "25% (3/4)", "2Gi")
    assert view(pvc({"status": "True", "reason": "Succeeded", "message": "done"})).state == "Loaded"
    failed = view(pvc({"status": "False", "reason": "AccessDenied", "message": "denied"}))
    assert (failed.state, failed.reason, failed.done) == ("Failed", "AccessDenied", True)
    assert view(pvc()).state == "Pending"
    assert view(pvc()).progress_text() == "-"


def test_retry_bumps_a_counter_guarded_by_the_resource_version() -> None:
    assert retry_patch(pvc()) == {
        "metadata": {"annotations": {ANNOTATION_RETRY: "1"}, "resourceVersion": "7"}
    }
    assert retry_patch(pvc(**{ANNOTATION_RETRY: "4"}))["metadata"]["annotations"][ANNOTATION_RETRY] == "5"

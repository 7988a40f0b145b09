"""Accelerators as data: vendors' resource names and product labels, the admin's additions, and
look-alike resources shown rather than hidden."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kaip.errors import UsageError
from kaip.nodehealth import accelerators, listing, polarity
from kaip.nodehealth.nodeview import node_view

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TABLE = accelerators.builtin()


@pytest.mark.parametrize(
    ("resource", "vendor"),
    [
        ("nvidia.com/gpu", "nvidia"),
        ("nvidia.com/mig-1g.10gb", "nvidia"),
        ("nvidia.com/gpu.shared", "nvidia"),
        ("amd.com/gpu", "amd"),
        ("gpu.intel.com/i915", "intel"),
        ("gpu.intel.com/xe", "intel"),
        ("habana.ai/gaudi", "habana"),
        ("aws.amazon.com/neuroncore", "aws-neuron"),
        ("google.com/tpu", "google-tpu"),
        ("example.com/vgpu", accelerators.UNKNOWN),  # looks like one: shown, vendor unknown
        ("acme.io/npu", accelerators.UNKNOWN),
        ("cpu", None),
        ("memory", None),
        ("hugepages-2Mi", None),
        ("ephemeral-storage", None),
        ("example.com/fuse", None),
        ("kubernetes.io/gpu-ish", None),  # Kubernetes' own domain
    ],
)
def test_vendors_and_look_alikes(resource: str, vendor: str | None) -> None:
    assert TABLE.vendor(resource) == vendor


def test_the_admin_adds_a_vendor_with_its_product_label() -> None:
    admin = accelerators.parse_text(
        "vendors:\n  mncore:\n    resources: ['preferred.jp/mncore*']\n    productLabels: [preferred.jp/mncore.product]\n",
        source="cm",
    )
    table = TABLE.extended(admin)
    assert table.vendor("preferred.jp/mncore") == "mncore"
    assert TABLE.vendor("preferred.jp/mncore") is None  # not a look-alike: only the table knows it
    obj = {
        "metadata": {"name": "mn-1", "labels": {"preferred.jp/mncore.product": "MN-Core2"}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "capacity": {"preferred.jp/mncore": "4"},
            "allocatable": {"preferred.jp/mncore": "4"},
        },
    }
    v = node_view(obj, polarity.builtin(), now=NOW, accelerators=table)
    assert [(a.resource, a.vendor, a.capacity) for a in v.accelerators] == [
        ("preferred.jp/mncore", "mncore", 4)
    ]
    assert v.product == "MN-Core2"
    row = listing.row(v, now=NOW, wide=True, pool_label="p", requested=None)
    assert row[4] == "4/4 mncore" and "MN-Core2" in row


def test_a_node_with_an_unknown_accelerator_is_shown_not_hidden() -> None:
    obj = {
        "metadata": {"name": "x-1", "labels": {"amd.com/gpu.product-name": "MI300X"}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "capacity": {"example.com/vgpu": "16", "amd.com/gpu": "8"},
        },
    }
    v = node_view(obj, polarity.builtin(), now=NOW)
    assert [(a.resource, a.vendor) for a in v.accelerators] == [
        ("amd.com/gpu", "amd"),
        ("example.com/vgpu", "unknown"),
    ]
    assert v.product == "MI300X"
    doc = listing.document(v, pool_label="p", requested=None)
    assert [a["knownVendor"] for a in doc["accelerators"]] == [True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vendors: [a]", 'cm: expected a mapping "vendors:'),
        ("vendors: {x: {productLabels: [a]}}", "cm: vendors.x.resources: name at least one resource"),
        ("vendors: {x: {resources: 3}}", "cm: vendors.x.resources: expected a list of strings"),
        ("vendors: {", "cm: not valid YAML"),
    ],
)
def test_a_bad_table_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        accelerators.parse_text(text, source="cm")
    assert str(info.value).startswith(message)

"""The controller's stores of what its watches saw: slim objects, an index, a re-list that drops
what it no longer returns."""

from __future__ import annotations

from typing import Any

from kaip_incluster.controller.cache import Table, label


def job(name: str, pvc: str, *, ns: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"preload.kaip.dev/pvc": pvc},
            "managedFields": [{"manager": "x"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "loader"}]}}},
        "status": {"active": 1},
    }


def test_objects_are_kept_slim_and_found_by_their_index() -> None:
    table = Table(label("preload.kaip.dev/pvc"))
    table.apply("ADDED", job("kaip-load-a-1", "a"))
    table.apply("ADDED", job("kaip-load-a-2", "a"))
    table.apply("ADDED", job("kaip-load-b-1", "b"))
    table.apply("ADDED", job("kaip-load-a-3", "a", ns="other"))
    assert [j["metadata"]["name"] for j in table.by("ml", "a")] == ["kaip-load-a-1", "kaip-load-a-2"]
    kept = table.get("ml", "kaip-load-b-1")
    assert kept is not None and "spec" not in kept and "managedFields" not in kept["metadata"]
    assert kept["status"] == {"active": 1}
    table.apply("DELETED", job("kaip-load-a-1", "a"))
    assert [j["metadata"]["name"] for j in table.by("ml", "a")] == ["kaip-load-a-2"]
    moved = job("kaip-load-a-2", "b")
    table.apply("MODIFIED", moved)
    assert table.by("ml", "a") == [] and len(table.by("ml", "b")) == 2


def test_a_relist_drops_what_it_did_not_return() -> None:
    table = Table(label("preload.kaip.dev/pvc"))
    for name in ("one", "two", "three"):
        table.apply("LISTED", job(name, "a"))
    assert table.synced() == []
    table.apply("LISTED", job("one", "a"))  # a failed list, midway
    table.restart()
    table.apply("LISTED", job("two", "a"))
    gone = table.synced()
    assert sorted(g["metadata"]["name"] for g in gone) == ["one", "three"]
    assert [j["metadata"]["name"] for j in table.by("ml", "a")] == ["two"]

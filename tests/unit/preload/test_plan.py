"""Which keys land where: the copier's path-safety decisions, from a listing alone."""

from __future__ import annotations

import pytest

from kaip.preload.plan import listing_digest, make_plan
from kaip.storage.base import ObjectInfo

PREFIX = "data/"


def plan_of(*keys: str, sizes: dict[str, int] | None = None):
    objects = [ObjectInfo(key=k, size=(sizes or {}).get(k, 5), version=f"v-{k}") for k in keys]
    return make_plan(source_url="s3://b/data/", prefix=PREFIX, objects=objects)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("data/../etc/passwd", "'..' path segment"),
        ("data/a/../../x", "'..' path segment"),
        ("data/..", "'..' path segment"),
        ("data/./a", "'.' path segment"),
        ("data//etc/passwd", "absolute path"),
        ("data/a//b", "empty path segment ('//')"),
        ("data/a\x00b", "contains a NUL character"),
        ("data/bad\udcff", "not valid UTF-8 (the store listed bytes that are no text)"),
        ("data/" + "n" * 256, "a name longer than 255 bytes"),
        ("data/" + "é" * 128, "a name longer than 255 bytes"),
        ("data/.kaip-preload.json", "reserved name (kaip manifest)"),
        ("data/x/.kaip-tmp-0123", "reserved name (kaip temporary file)"),
    ],
)
def test_hostile_keys_are_refused_with_the_reason(key: str, why: str) -> None:
    plan = plan_of(key, "data/fine.txt")
    assert plan.refused == ((key, why),)
    assert [e.path for e in plan.entries] == ["fine.txt"]


def test_a_path_over_4000_bytes_is_refused() -> None:
    key = "data/" + "/".join(["d" * 200] * 21)
    assert plan_of(key).refused[0][1] == "path longer than 4000 bytes"


def test_names_that_only_look_odd_are_kept() -> None:
    keys = ["data/file..txt", "data/..hidden", "data/a b/c", "data/back\\slash", "data/ünï/cödé", "data/.dot"]
    plan = plan_of(*keys)
    assert plan.refused == ()
    assert sorted(e.path for e in plan.entries) == sorted(k[len(PREFIX) :] for k in keys)


def test_an_object_that_is_also_a_directory_is_refused_and_its_children_kept() -> None:
    plan = plan_of("data/a", "data/a/b", "data/x/y", "data/x/y/z")
    assert sorted(e.path for e in plan.entries) == ["a/b", "x/y/z"]
    assert [k for k, _ in plan.refused] == ["data/a", "data/x/y"]
    assert "also a directory" in plan.refused[0][1]


def test_directory_markers_are_skipped_not_refused_unless_they_hold_data() -> None:
    plan = plan_of(
        "data/", "data/sub/", "data/bad/", "data/sub/f", sizes={"data/": 0, "data/sub/": 0, "data/bad/": 3}
    )
    assert plan.skipped == (("data/", "directory marker"), ("data/sub/", "directory marker"))
    assert plan.refused == (("data/bad/", "key ends with '/' but holds data"),)
    assert [e.path for e in plan.entries] == ["sub/f"]


def test_large_objects_are_planned_first_and_totals_count_only_planned_bytes() -> None:
    plan = plan_of("data/s", "data/l", "data/../x", sizes={"data/s": 1, "data/l": 100, "data/../x": 1000})
    assert [e.path for e in plan.entries] == ["l", "s"]
    assert plan.bytes_total == 101


def test_digest_changes_with_any_object_and_not_with_order() -> None:
    a = ObjectInfo("data/a", 1, "e1")
    b = ObjectInfo("data/b", 2, "e2")
    same = listing_digest("s3://b/data/", [b, a])
    assert listing_digest("s3://b/data/", [a, b]) == same
    assert listing_digest("s3://b/data/", [a, ObjectInfo("data/b", 2, "e3")]) != same
    assert listing_digest("s3://b/other/", [a, b]) != same

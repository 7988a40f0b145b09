"""Sharded loading, pure: key ownership, the shard count, the Indexed Job, and how N shards add up."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from kaip.preload import jobs
from kaip.preload.contract import BadAnnotation, read_request
from kaip.preload.plan import path_problem
from kaip.preload.shards import Shard, combined_outcome, parallelism_for, shard_of
from kaip.preload.status import Outcome
from kaip_incluster.controller.cache import slim
from kaip_incluster.controller.reconcile import (
    CreateJob,
    Emit,
    Observed,
    RecordDigest,
    SetCondition,
    outcome_missing,
    reconcile,
)

CONFIG = jobs.LoaderConfig()


def pvc(
    modes: tuple[str, ...] = ("ReadWriteMany",),
    size: str = "1Gi",
    conditions: list[dict[str, Any]] | None = None,
    **annotations: str,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "data",
            "namespace": "ml",
            "uid": "u-1",
            "annotations": {f"preload.kaip.dev/{k}": v for k, v in annotations.items()},
        },
        "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}},
        "status": {"conditions": conditions or []},
    }


def sharded_job(claim: dict[str, Any], shards: int, state: str | None = None) -> dict[str, Any]:
    request = read_request(claim)
    assert request is not None
    job = jobs.loader_job(claim, request, config=CONFIG, shards=shards)
    job["metadata"]["uid"] = "job-uid"
    job["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    if state:
        job["status"] = {"conditions": [{"type": state, "status": "True", "reason": "r", "message": "m"}]}
    return job


def shard_pod(
    job: dict[str, Any], index: int, code: int, outcome: Outcome, at: str = "2026-01-01T00:00:0"
) -> dict[str, Any]:
    term = {"exitCode": code, "message": outcome.to_json(), "finishedAt": f"{at}{index}Z"}
    return {
        "metadata": {
            "name": f"{job['metadata']['name']}-{index}-x",
            "labels": {
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
                "batch.kubernetes.io/job-completion-index": str(index),
            },
        },
        "status": {"containerStatuses": [{"name": "loader", "state": {"terminated": term}}]},
    }


def test_a_key_belongs_to_one_shard_by_crc32_stable_across_processes() -> None:
    keys = [f"set/{i}/f{i:05d}.bin" for i in range(2000)]
    owners = [[s for s in range(4) if Shard(s, 4).owns(k)] for k in keys]
    assert all(len(o) == 1 for o in owners)
    assert shard_of("set/1/f00001.bin", 4) == zlib.crc32(b"set/1/f00001.bin") % 4
    counts = [sum(1 for o in owners if o == [s]) for s in range(4)]
    assert min(counts) > 400  # an even spread
    assert shard_of("anything", 1) == 0


def test_the_annotation_sets_the_count_and_a_bad_value_names_it() -> None:
    request = read_request(pvc(source="s3://bkt/p", parallelism="4"))
    assert request is not None and request.parallelism == 4
    unset = read_request(pvc(source="s3://bkt/p"))
    assert unset is not None and unset.parallelism is None
    assert unset.key != request.key  # a new count is a new Job
    for bad in ("0", "-1", "four", "65", "2.5"):
        with pytest.raises(BadAnnotation, match=r"preload\.kaip\.dev/parallelism"):
            read_request(pvc(source="s3://bkt/p", parallelism=bad))


def test_the_cluster_default_applies_to_large_rwx_claims_only() -> None:
    config = {"default": 4, "threshold": 100 * 1024**3}
    large = pvc(size="200Gi", source="s3://bkt/p")
    request = read_request(large)
    assert request is not None
    assert parallelism_for(large, request, **config) == 4
    assert parallelism_for(pvc(size="10Gi", source="s3://bkt/p"), request, **config) == 1
    rwo = pvc(("ReadWriteOnce",), size="200Gi", source="s3://bkt/p")
    assert parallelism_for(rwo, request, **config) == 1  # falls back, never refused
    assert parallelism_for(large, request, default=4, threshold=None) == 1


def test_shard_records_are_reserved_names() -> None:
    assert path_problem(".kaip-preload.json.shard-1-of-4") == "reserved name (kaip manifest)"
    assert path_problem(".kaip-preload.json.shard-1-of-4.journal") == "reserved name (kaip manifest)"
    assert path_problem("sub/.kaip-preload.json.shard-1-of-4") is None


def test_an_indexed_job_retries_each_shard_on_its_own() -> None:
    claim = pvc(source="s3://bkt/p", parallelism="4")
    job = sharded_job(claim, 4)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    assert spec["backoffLimitPerIndex"] == CONFIG.backoff_limit and spec["maxFailedIndexes"] == 0
    assert "backoffLimit" not in spec
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "FailJob"
    assert "--shards=4" in spec["template"]["spec"]["containers"][0]["args"]
    single = jobs.loader_job(claim, read_request(claim), config=CONFIG)  # type: ignore[arg-type]
    assert "completionMode" not in single["spec"] and single["spec"]["backoffLimit"] == 3


def test_a_read_write_once_claim_refuses_more_than_one_shard() -> None:
    claim = pvc(("ReadWriteOnce",), source="s3://bkt/p", parallelism="4")
    actions = reconcile(Observed(pvc=claim), config=CONFIG)
    assert not any(isinstance(a, CreateJob) for a in actions)
    (cond,) = [a.condition for a in actions if isinstance(a, SetCondition)]
    assert (cond.status, cond.reason) == ("False", "InvalidParallelism")
    assert "ReadWriteOnce" in cond.message and "ReadWriteMany" in cond.message
    assert [(a.type, a.reason) for a in actions if isinstance(a, Emit)] == [("Warning", "InvalidParallelism")]
    # Once told, nothing more.
    told = pvc(
        ("ReadWriteOnce",),
        source="s3://bkt/p",
        parallelism="4",
        conditions=[
            {"type": "DataLoaded", "status": "False", "reason": cond.reason, "message": cond.message}
        ],
    )
    assert reconcile(Observed(pvc=told), config=CONFIG) == []


def test_a_read_write_many_claim_gets_an_indexed_job_that_the_store_keeps_enough_of() -> None:
    claim = pvc(source="s3://bkt/p", parallelism="4")
    actions = reconcile(Observed(pvc=slim(claim)), config=CONFIG)
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    assert create.manifest["spec"]["completions"] == 4
    assert slim(create.manifest)["spec"] == {"completionMode": "Indexed", "completions": 4}


def test_the_shards_progress_is_summed_into_the_condition() -> None:
    shard_conditions = [
        {"type": "DataLoaded", "status": "Unknown", "reason": "Pending", "message": "waiting"},
        {
            "type": "DataLoadedShard0",
            "status": "Unknown",
            "reason": "Loading",
            "message": "1/3 objects, 10/30 bytes",
            "lastProbeTime": "2026-01-01T00:00:05Z",
        },
        {  # left by an earlier load: not counted
            "type": "DataLoadedShard1",
            "status": "True",
            "reason": "Succeeded",
            "message": "9/9 objects, 90/90 bytes",
            "lastProbeTime": "2025-12-31T00:00:05Z",
        },
        {
            "type": "DataLoadedShard2",
            "status": "Unknown",
            "reason": "Loading",
            "message": "2/2 objects, 5/5 bytes",
            "lastProbeTime": "2026-01-01T00:00:00Z",
        },
    ]
    claim = pvc(source="s3://bkt/p", parallelism="4", conditions=shard_conditions)
    actions = reconcile(Observed(pvc=claim, jobs=[sharded_job(claim, 4)]), config=CONFIG)
    (cond,) = [a.condition for a in actions if isinstance(a, SetCondition)]
    assert (cond.status, cond.reason, cond.message) == ("Unknown", "Loading", "3/5 objects, 15/35 bytes")
    assert not any(isinstance(a, Emit) for a in actions)


def _done(objects: int, copied: int) -> Outcome:
    return Outcome(
        "Succeeded",
        "m",
        digest="sha256:d",
        objects=objects,
        bytes=objects * 10,
        copied=copied,
        reused=objects - copied,
    )


def test_a_complete_job_adds_up_every_index_and_waits_for_a_missing_one() -> None:
    claim = pvc(source="s3://bkt/p", parallelism="3")
    job = sharded_job(claim, 3, "Complete")
    pods = [shard_pod(job, i, 0, _done(i + 1, 1)) for i in range(3)]
    assert outcome_missing(job, pods[:2]) and not outcome_missing(job, pods)
    assert combined_outcome(pods[:2], container="loader", count=3) is None
    actions = reconcile(Observed(pvc=claim, jobs=[job], pods=pods), config=CONFIG)
    (cond,) = [a.condition for a in actions if isinstance(a, SetCondition)]
    assert (cond.status, cond.reason) == ("True", "Succeeded")
    assert cond.message.startswith("6/6 objects, 60/60 bytes; 3 copied, 3 already there; by 3 loader Pods")
    assert RecordDigest("sha256:d") in actions


def test_a_failed_job_names_the_shard_that_failed_for_good() -> None:
    claim = pvc(source="s3://bkt/p", parallelism="3")
    job = sharded_job(claim, 3, "Failed")
    pods = [
        shard_pod(job, 0, 1, Outcome("Throttled", "slow down")),
        shard_pod(job, 2, 3, Outcome("AccessDenied", "403 on bkt/p/x")),
        shard_pod(job, 1, 0, _done(2, 2)),
    ]
    actions = reconcile(Observed(pvc=claim, jobs=[job], pods=pods), config=CONFIG)
    (cond,) = [a.condition for a in actions if isinstance(a, SetCondition)]
    assert (cond.status, cond.reason) == ("False", "AccessDenied")
    assert cond.message.startswith("loader Pod 2 of 3: 403 on bkt/p/x")
    assert json.loads(pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"])

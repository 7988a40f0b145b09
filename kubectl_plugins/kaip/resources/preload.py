"""Public names of the PVC data loader (part 2 of the product).

A PVC annotated ``preload.kaip.dev/source: s3://bucket/prefix`` (or ``gs://``) is filled by the
controller through a Job; the outcome is the PVC condition ``DataLoaded``; Pods that mount such a PVC
wait behind the scheduling gate ``kaip.dev/data-preload`` until it is True.
"""

from __future__ import annotations

GROUP = "preload.kaip.dev"

#: ``s3://bucket/prefix`` or ``gs://bucket/prefix``; a prefix is a directory (``data/a`` never matches ``data/ab``).
ANNOTATION_SOURCE = f"{GROUP}/source"
#: A kaip credentials Secret (``kaip.dev/aws-credentials`` or ``kaip.dev/gcp-credentials``) in the PVC's namespace.
ANNOTATION_CREDENTIALS = f"{GROUP}/credentials"
#: Sub-directory of the volume to fill (default: its root).
ANNOTATION_PATH = f"{GROUP}/path"
#: Bumped by ``kubectl pvc-preload retry`` to ask for a new attempt after a failure.
ANNOTATION_RETRY = f"{GROUP}/retry"
#: Written by the controller: digest of the source listing that the volume holds (reuse, not re-download).
ANNOTATION_LOADED_DIGEST = f"{GROUP}/loaded-digest"
#: Resources of the loader Job (``cpu=2,memory=1Gi``), overriding the controller's defaults.
ANNOTATION_RESOURCES = f"{GROUP}/resources"
#: Number of loader Pods (shards) of an Indexed Job, each fetching a disjoint share of the keys;
#: needs a ReadWriteMany volume when above 1.
ANNOTATION_PARALLELISM = f"{GROUP}/parallelism"

#: Label on loader Jobs and their Pods.
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT_LOADER = "kaip-data-loader"
LABEL_PVC = f"{GROUP}/pvc"

CONDITION_LOADED = "DataLoaded"

REASON_LOADING = "Loading"
REASON_PENDING = "Pending"
REASON_SUCCEEDED = "Succeeded"
REASON_FAILED = "LoadFailed"
REASON_INVALID = "InvalidSource"
REASON_CREDENTIALS = "CredentialsNotFound"
#: The source holds more bytes than the PVC's capacity or the volume's free space (checked before copying).
REASON_INSUFFICIENT_CAPACITY = "InsufficientCapacity"
#: The volume filled up (ENOSPC, EDQUOT) during the copy; that run's partial files are removed.
REASON_TARGET_FULL = "TargetFull"
#: More than one shard asked for a volume that only one node can mount (not ReadWriteMany).
REASON_INVALID_PARALLELISM = "InvalidParallelism"
#: Condition type prefix of one shard's progress (``DataLoadedShard0``…), written by that shard only.
CONDITION_SHARD_PREFIX = f"{CONDITION_LOADED}Shard"

#: Scheduling gate the mutating webhook adds to Pods that mount a PVC whose data is not loaded yet.
SCHEDULING_GATE = "kaip.dev/data-preload"

#: The Job's file on the volume that records what is loaded (resume, reuse).
MANIFEST_FILE = ".kaip-preload.json"

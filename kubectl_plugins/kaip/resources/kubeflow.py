"""Kubeflow's API names that `kubectl ai-platform` creates and reads, and our own names on them.

Training Operator v1 (``kubeflow.org/v1``: TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob, MPIJob),
the MPI Operator (``kubeflow.org/v2beta1`` MPIJob) and Katib (``kubeflow.org/v1beta1`` Experiment). Field
and label names follow the upstream Go types (kubeflow/training-operator release-1.9
``pkg/apis/kubeflow.org/v1``, kubeflow/mpi-operator ``pkg/apis/kubeflow/v2beta1``, kubeflow/katib
``pkg/apis/controller/experiments/v1beta1``). Pure data.

MPIJob has two APIs under one CRD name (``mpijobs.kubeflow.org``), so a cluster serves one of them:
training-operator's ``v1`` (ranks started through ``kubectl exec``, Pods labelled by replica type) or
mpi-operator's ``v2beta1`` (ranks started over SSH, Pods labelled by job role).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaip.resources.kinds import Resource

GROUP = "kubeflow.org"

INSTALL_TRAINING_OPERATOR = (
    "install the Kubeflow Training Operator v1 (kubectl apply --server-side -k "
    '"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.2")'
)
INSTALL_MPI_OPERATOR = (
    "install the MPI Operator v2 (kubectl apply --server-side -f "
    "https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.8.0/deploy/v2beta1/mpi-operator.yaml)"
)
INSTALL_KATIB = (
    "install Katib (kubectl apply -k "
    '"github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.19.0")'
)


# -- labels the operators put on a job's Pods (common_types.go, mpi-operator constants.go) ---------
LABEL_JOB_NAME = "training.kubeflow.org/job-name"
LABEL_REPLICA_TYPE = "training.kubeflow.org/replica-type"
LABEL_REPLICA_INDEX = "training.kubeflow.org/replica-index"
LABEL_JOB_ROLE = "training.kubeflow.org/job-role"


@dataclass(frozen=True)
class JobKind:
    """One Kubeflow job kind: where its replicas live and what the operator expects of them."""

    framework: str  # our --framework value
    resource: Resource
    replica_key: str  # the spec field holding the replica map
    container: str  # the container name the operator injects its environment into
    port: int
    port_name: str
    primary: str  # the replica type that runs the "master" of gcloud
    worker: str = "Worker"
    #: Replica types beyond master and workers, by gcloud's role name.
    extra_roles: tuple[tuple[str, str], ...] = ()
    #: The operator itself holds workers until the master answers (PyTorch's init-pytorch).
    operator_orders_start: bool = False
    #: The Pod label whose value (lower case) is the replica type: mpi-operator sets only job-role.
    role_label: str = LABEL_REPLICA_TYPE


def _v1(plural: str, kind: str) -> Resource:
    return Resource(GROUP, "v1", plural, kind, install_hint=INSTALL_TRAINING_OPERATOR)


TFJOBS = _v1("tfjobs", "TFJob")
PYTORCHJOBS = _v1("pytorchjobs", "PyTorchJob")
XGBOOSTJOBS = _v1("xgboostjobs", "XGBoostJob")
JAXJOBS = _v1("jaxjobs", "JAXJob")
PADDLEJOBS = _v1("paddlejobs", "PaddleJob")
MPIJOBS = Resource(GROUP, "v2beta1", "mpijobs", "MPIJob", install_hint=INSTALL_MPI_OPERATOR)
MPIJOBS_V1 = _v1("mpijobs", "MPIJob")
EXPERIMENTS = Resource(GROUP, "v1beta1", "experiments", "Experiment", install_hint=INSTALL_KATIB)
TRIALS = Resource(GROUP, "v1beta1", "trials", "Trial", install_hint=INSTALL_KATIB)

TFJOB = JobKind(
    "tensorflow",
    TFJOBS,
    "tfReplicaSpecs",
    "tensorflow",
    2222,
    "tfjob-port",
    "Master",
    extra_roles=(("parameter-server", "PS"), ("evaluator", "Evaluator")),
)
PYTORCHJOB = JobKind(
    "pytorch",
    PYTORCHJOBS,
    "pytorchReplicaSpecs",
    "pytorch",
    23456,
    "pytorchjob-port",
    "Master",
    operator_orders_start=True,
)
XGBOOSTJOB = JobKind("xgboost", XGBOOSTJOBS, "xgbReplicaSpecs", "xgboost", 9999, "xgboostjob-port", "Master")
JAXJOB = JobKind("jax", JAXJOBS, "jaxReplicaSpecs", "jax", 6666, "jaxjob-port", "Worker")
PADDLEJOB = JobKind("paddle", PADDLEJOBS, "paddleReplicaSpecs", "paddle", 36543, "master", "Master")
# MPI workers are reached over SSH (v2beta1) or kubectl exec (v1); no port is declared. Both operators
# inject their hostfile and launch agent into the first container, named "mpi" here.
MPIJOB = JobKind("mpi", MPIJOBS, "mpiReplicaSpecs", "mpi", 0, "", "Launcher", role_label=LABEL_JOB_ROLE)
MPIJOB_V1 = JobKind("mpi", MPIJOBS_V1, "mpiReplicaSpecs", "mpi", 0, "", "Launcher")

#: MPIJob by API version, the default first (the one assumed when the cluster is not asked).
MPI_KINDS: dict[str, JobKind] = {"v2beta1": MPIJOB, "v1": MPIJOB_V1}
MPI_OPERATORS = {"v2beta1": "mpi-operator", "v1": "training-operator"}
DEFAULT_MPI_VERSION = "v2beta1"
#: Where both operators mount the hostfile they write (configMountPath + hostfileName).
MPI_HOSTFILE = "/etc/mpi/hostfile"
#: training-operator's v1 launcher gets kubectl here from its kubectl-delivery init container.
MPI_V1_KUBECTL = "/opt/kube/kubectl"

#: One kind per --framework (MPIJob's default version), and every kind a cluster may serve, which
#: `jobs list` and `describe` look for.
_DEFAULT_KINDS = (TFJOB, PYTORCHJOB, XGBOOSTJOB, JAXJOB, PADDLEJOB, MPIJOB)
JOB_KINDS: tuple[JobKind, ...] = (*_DEFAULT_KINDS, MPIJOB_V1)
BY_FRAMEWORK = {k.framework: k for k in _DEFAULT_KINDS}
#: By kind name alone: enough for the replica map and container name, the same in both MPIJobs.
BY_KIND = {k.resource.kind: k for k in _DEFAULT_KINDS}
FRAMEWORKS = tuple(BY_FRAMEWORK)
_BY_API_KIND = {(k.resource.api_version, k.resource.kind): k for k in JOB_KINDS}


def kind_of(obj: Mapping[str, Any]) -> JobKind:
    """The kind of a job object by its apiVersion and kind (MPIJob exists in two versions)."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    return _BY_API_KIND.get(key) or BY_KIND[key[1]]


# -- job conditions (JobConditionType) -------------------------------------------------------------
CREATED = "Created"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
SUSPENDED = "Suspended"
FAILED = "Failed"

# -- Katib ----------------------------------------------------------------------------------------
LABEL_KATIB_EXPERIMENT = "katib.kubeflow.org/experiment"
LABEL_KATIB_TRIAL = "katib.kubeflow.org/trial"

# -- scheduling and networking names of other projects ---------------------------------------------
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
LABEL_KUEUE_PRIORITY = "kueue.x-k8s.io/priority-class"
ANNOTATION_MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks"

# -- ours: `kubectl ai-platform` on the objects it creates -----------------------------------------
AI_GROUP = "ai-platform.kaip.dev"
#: gcloud's JOB id as typed (mixed case, underscores); the object name is its DNS-1123 form.
LABEL_JOB_ID = f"{AI_GROUP}/job-id"
#: The gcloud TrainingInput the job was made from (JSON), shown by `jobs describe`.
ANNOTATION_TRAINING_INPUT = f"{AI_GROUP}/training-input"
#: Set by `jobs cancel` (RFC 3339 time); the job is suspended, its record kept.
ANNOTATION_CANCEL_REQUESTED = f"{AI_GROUP}/cancel-requested"
#: On ConfigMaps holding staged packages and on preload PVCs made for a job.
LABEL_FOR_JOB = f"{AI_GROUP}/for-job"

#: Where the admin's catalog lives.
CATALOG_NAMESPACE = "kaip-system"
CATALOG_CONFIGMAP = "ai-platform-catalog"
CATALOG_KEY = "catalog.yaml"

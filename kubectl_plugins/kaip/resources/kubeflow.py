"""Kubeflow's API names that `kubectl ai-platform` creates and reads, and our own names on them.

Training Operator v1 (``kubeflow.org/v1``: TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob), the MPI
Operator (``kubeflow.org/v2beta1`` MPIJob) and Katib (``kubeflow.org/v1beta1`` Experiment). Field and
label names follow the upstream Go types (kubeflow/training-operator release-1.9
``pkg/apis/kubeflow.org/v1``, kubeflow/mpi-operator ``pkg/apis/kubeflow/v2beta1``, kubeflow/katib
``pkg/apis/controller/experiments/v1beta1``). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _v1(plural: str, kind: str) -> Resource:
    return Resource(GROUP, "v1", plural, kind, install_hint=INSTALL_TRAINING_OPERATOR)


TFJOBS = _v1("tfjobs", "TFJob")
PYTORCHJOBS = _v1("pytorchjobs", "PyTorchJob")
XGBOOSTJOBS = _v1("xgboostjobs", "XGBoostJob")
JAXJOBS = _v1("jaxjobs", "JAXJob")
PADDLEJOBS = _v1("paddlejobs", "PaddleJob")
MPIJOBS = Resource(GROUP, "v2beta1", "mpijobs", "MPIJob", install_hint=INSTALL_MPI_OPERATOR)
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
# MPI v2 workers talk over SSH; the operator declares no port.
MPIJOB = JobKind("mpi", MPIJOBS, "mpiReplicaSpecs", "mpi", 0, "", "Launcher")

JOB_KINDS: tuple[JobKind, ...] = (TFJOB, PYTORCHJOB, XGBOOSTJOB, JAXJOB, PADDLEJOB, MPIJOB)
BY_FRAMEWORK = {k.framework: k for k in JOB_KINDS}
BY_KIND = {k.resource.kind: k for k in JOB_KINDS}
FRAMEWORKS = tuple(BY_FRAMEWORK)

# -- labels the operators put on a job's Pods (common_types.go, mpi-operator constants.go) ---------
LABEL_JOB_NAME = "training.kubeflow.org/job-name"
LABEL_REPLICA_TYPE = "training.kubeflow.org/replica-type"
LABEL_REPLICA_INDEX = "training.kubeflow.org/replica-index"
LABEL_JOB_ROLE = "training.kubeflow.org/job-role"

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

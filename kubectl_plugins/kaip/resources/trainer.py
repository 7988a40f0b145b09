"""Kubeflow Trainer v2's API names that `kubectl ai-platform` creates and reads. Pure data.

Trainer v2 (``trainer.kubeflow.org/v1alpha1``: TrainJob, TrainingRuntime, ClusterTrainingRuntime)
renders every TrainJob into a JobSet (``jobset.x-k8s.io/v1alpha2``), whose Jobs make the Pods. Field,
label and condition names follow the upstream Go types at the versions the test bed runs:
kubeflow/trainer v2.0.0 ``pkg/apis/trainer/v1alpha1/trainjob_types.go`` and ``pkg/constants``, and
kubernetes-sigs/jobset v0.8.2 ``api/jobset/v1alpha2/jobset_types.go``.
"""

from __future__ import annotations

from kaip.resources.kinds import Resource

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"

INSTALL_TRAINER = (
    "install Kubeflow Trainer v2 (kubectl apply --server-side -k "
    '"github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.0.0", then its runtimes: '
    'kubectl apply --server-side -k "github.com/kubeflow/trainer.git/manifests/overlays/runtimes?ref=v2.0.0")'
)

TRAINJOBS = Resource(GROUP, VERSION, "trainjobs", "TrainJob", install_hint=INSTALL_TRAINER)
CLUSTER_TRAINING_RUNTIMES = Resource(
    GROUP, VERSION, "clustertrainingruntimes", "ClusterTrainingRuntime", namespaced=False,
    install_hint=INSTALL_TRAINER,
)  # fmt: skip
JOBSETS = Resource("jobset.x-k8s.io", "v1alpha2", "jobsets", "JobSet", install_hint=INSTALL_TRAINER)

# -- TrainJob conditions (trainjob_types.go) ------------------------------------------------------
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"

# -- the upstream ClusterTrainingRuntimes (manifests/base/runtimes) --------------------------------
TORCH_DISTRIBUTED = "torch-distributed"
MPI_DISTRIBUTED = "mpi-distributed"
DEEPSPEED_DISTRIBUTED = "deepspeed-distributed"
#: The runtime for each framework kaip submits to Trainer v2 (the catalog's ``trainer.runtimes``
#: may name others).
RUNTIMES = {"pytorch": TORCH_DISTRIBUTED, "mpi": MPI_DISTRIBUTED, "deepspeed": DEEPSPEED_DISTRIBUTED}
#: Runtimes whose replicated jobs are an MPI launcher and SSH nodes (mpi plugin), not torch nodes.
MPI_POLICY = frozenset({"mpi", "deepspeed"})

#: The container of a runtime's job that the TrainJob's ``trainer`` section sets (constants.Node).
CONTAINER = "node"
#: Replicated job names of the upstream runtimes.
NODE_JOB = "node"
LAUNCHER_JOB = "launcher"
#: The volume of the SSH keys the mpi plugin mounts into an MPI runtime's launcher and nodes.
MPI_SSH_VOLUME = "mpi-ssh-auth"

# -- labels JobSet puts on the Pods it makes (jobset_types.go) -------------------------------------
LABEL_JOBSET_NAME = "jobset.sigs.k8s.io/jobset-name"
LABEL_REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"
LABEL_JOB_INDEX = "jobset.sigs.k8s.io/job-index"
#: An Indexed Job's Pod: its index among the Job's completions (the node rank).
LABEL_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

#: kaip's backends of `jobs submit training`: training-operator's v1 kinds, or Trainer v2's TrainJob.
BACKEND_V1 = "v1"
BACKEND_TRAINER_V2 = "trainer-v2"
BACKENDS = (BACKEND_V1, BACKEND_TRAINER_V2)

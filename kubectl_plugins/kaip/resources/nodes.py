"""Public names around Nodes: the seed's conditions, the labels we read, the remediation marker.

Condition names are those of the seed (PFN's node-failure automation): set by node-problem-detector
custom plugins (``GPUIsLost``, ``GPUPendingPage``, ``DStateProcess``, ``PCIeLinkDegraded``) and by the
active GPU check (``GPURuntimeError``). In node-problem-detector's vocabulary a condition that is
``True`` means the problem is present.

Remediation marker (written by the remediation controller, read by ``kubectl node-health``):

* label ``kaip.dev/remediation=<phase>`` on a Node under remediation, phase one of
  :data:`REMEDIATION_PHASES`; the label is removed when the node is handed back;
* taint ``kaip.dev/remediation:NoSchedule`` while the node is drained and operated on.

node-operation-controller's taint ``nodeops.k8s.preferred.jp/operating`` counts as remediation too.
"""

from __future__ import annotations

# -- conditions -------------------------------------------------------------------------------------
READY = "Ready"

GPU_IS_LOST = "GPUIsLost"
GPU_PENDING_PAGE = "GPUPendingPage"
D_STATE_PROCESS = "DStateProcess"
PCIE_LINK_DEGRADED = "PCIeLinkDegraded"
GPU_RUNTIME_ERROR = "GPURuntimeError"

#: The seed's custom conditions, in the order the seed names them.
SEED_CONDITIONS = (GPU_IS_LOST, GPU_PENDING_PAGE, D_STATE_PROCESS, PCIE_LINK_DEGRADED, GPU_RUNTIME_ERROR)

#: The other failure classes of the seed, set by kaip's node checks (docs/node-health.md); all mean a
#: problem when True.
GPU_COUNT_MISMATCH = "GPUCountMismatch"
GPU_UNCORRECTABLE_ERROR = "GPUUncorrectableError"
NETWORK_LINK_DOWN = "NetworkLinkDown"
NETWORK_LINK_FLAPPING = "NetworkLinkFlapping"
NETWORK_INTERFACE_MISSING = "NetworkInterfaceMissing"
NETWORK_TRANSCEIVER_ERROR = "NetworkTransceiverError"
NFS_MOUNT_HUNG = "NFSMountHung"
NODE_CHECK_CONDITIONS = (
    GPU_COUNT_MISMATCH,
    GPU_UNCORRECTABLE_ERROR,
    NETWORK_LINK_DOWN,
    NETWORK_LINK_FLAPPING,
    NETWORK_INTERFACE_MISSING,
    NETWORK_TRANSCEIVER_ERROR,
    NFS_MOUNT_HUNG,
)

#: The kubelet's conditions that mean a problem when True.
KUBELET_PROBLEM_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")

#: The conditions of node-problem-detector's standard monitors (kernel, docker, systemd counters,
#: health checkers, the example NTP, XFS and CPER plugins) and of the managed clouds' NPD
#: configurations (GKE, AKS): all mean a problem when True.
NPD_CONDITIONS = (
    "KernelDeadlock",
    "ReadonlyFilesystem",
    "CorruptDockerOverlay2",
    "FrequentUnregisterNetDevice",
    "FrequentKubeletRestart",
    "FrequentDockerRestart",
    "FrequentContainerdRestart",
    "XfsShutdown",
    "CperHardwareErrorFatal",
    "KubeletUnhealthy",
    "ContainerRuntimeUnhealthy",
    "KubeProxyUnhealthy",
    "NTPProblem",
    "KubeletProblem",
    "ContainerRuntimeProblem",
    "FilesystemCorruptionProblem",
    "VMEventScheduled",
)

#: Condition names that never read as "healthy when True", whatever else they end in
#: (``KubeletNotReady`` ends in ``Ready`` but means a problem when True).
PROBLEM_SUFFIXES = ("NotReady", "Unavailable", "Failed")

#: node-problem-detector re-sends every condition at least this often (--k8s-exporter-heartbeat-period).
DETECTOR_HEARTBEAT_SECONDS = 300

# -- labels read from GPU feature discovery / the GPU operator --------------------------------------
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_PRESENT = "nvidia.com/gpu.present"
LABEL_DRIVER_VERSION = "nvidia.com/cuda.driver-version.full"
#: Default pool label for grouping; clusters may name their own with ``--pool-label``.
LABEL_POOL = "kaip.dev/pool"

#: Accelerators by vendor: the extended resources their device plugins offer (fnmatch patterns:
#: whole GPUs, MIG profiles, time-sliced replicas) and the node labels that name the product, first
#: found wins. Data, not code: the admin adds vendors in the ConfigMap key ``accelerators.yaml``.
ACCELERATOR_VENDORS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "nvidia",
        ("nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-*"),
        (LABEL_GPU_PRODUCT, "cloud.google.com/gke-accelerator"),
    ),
    ("amd", ("amd.com/gpu",), ("amd.com/gpu.product-name", "beta.amd.com/gpu.product-name")),
    ("intel", ("gpu.intel.com/*",), ()),
    ("habana", ("habana.ai/gaudi*",), ()),
    ("aws-neuron", ("aws.amazon.com/neuron*",), ()),
    ("google-tpu", ("google.com/tpu",), ("cloud.google.com/gke-tpu-accelerator",)),
)
#: An extended resource of no listed vendor whose name holds one of these words is shown as an
#: accelerator of an unknown vendor rather than hidden.
ACCELERATOR_WORDS = ("gpu", "tpu", "npu", "accelerator", "fpga")
#: Domains of Kubernetes' own resources, never accelerators.
KUBERNETES_DOMAINS = ("kubernetes.io", "k8s.io")
#: The ConfigMap key (in the polarity ConfigMap) whose vendors extend :data:`ACCELERATOR_VENDORS`.
ACCELERATORS_CONFIGMAP_KEY = "accelerators.yaml"

# -- facts of a node derived from its Pods ----------------------------------------------------------
#: A node fact that remediation rules match as if it were a condition: True while a Pod bound to the
#: node is past its deletion grace period (``deletionTimestamp``), since the oldest such deadline.
STUCK_TERMINATING_PODS = "StuckTerminatingPods"

# -- remediation marker -----------------------------------------------------------------------------
LABEL_REMEDIATION = "kaip.dev/remediation"
TAINT_REMEDIATION = "kaip.dev/remediation"
TAINT_NODE_OPERATION = "nodeops.k8s.preferred.jp/operating"
REMEDIATION_PHASES = ("Pending", "Draining", "Operating", "Verifying", "Failed")

# -- taints of the node lifecycle controller --------------------------------------------------------
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# -- admin configuration of condition polarity ------------------------------------------------------
#: ConfigMap (in this namespace, with this name) whose key ``polarity.yaml`` extends the built-in table.
POLARITY_CONFIGMAP_NAMESPACE = "kube-system"
POLARITY_CONFIGMAP_NAME = "kaip-node-health"
POLARITY_CONFIGMAP_KEY = "polarity.yaml"

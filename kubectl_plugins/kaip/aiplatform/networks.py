"""What ``--secondary-network NAME`` adds to every replica, from the catalog's ``secondaryNetworks.NAME``:
the Multus network, the RDMA device, ``IPC_LOCK``, and what NCCL and UCX read to use RoCEv2.

An entry (docs/ai-platform.md, "Secondary networks and RDMA")::

    roce:
      network: rdma/roce-net        # the NetworkAttachmentDefinition, [NAMESPACE/]NAME (default: the key)
      interface: net1               # the Pod's interface on it (Multus ``NAME@IFNAME``)
      resources: {rdma/rdma_shared_device_a: "1"}
      hcas: [mlx5_0, mlx5_1]        # NCCL_IB_HCA, UCX_NET_DEVICES (port: 1 unless ``port`` says)
      gidIndex: 3                   # NCCL_IB_GID_INDEX, UCX_IB_GID_INDEX
      capabilities: [IPC_LOCK]      # the default where the entry names a device
      env: {OMPI_MCA_pml: ucx}      # anything else, over what kaip derives

The variables' meanings: NCCL's environment variables (docs.nvidia.com/deeplearning/nccl, "Environment
Variables": ``NCCL_IB_HCA`` takes ``=`` for exact names and ``:PORT``; ``NCCL_IB_GID_INDEX`` defaults
to -1, which NCCL 2.21 and later resolve to the port's RoCE v2 GID, src/transport/net_ib) and UCX's
(``UCX_NET_DEVICES=mlx5_0:1``; ``UCX_IB_GID_INDEX``). Memory registration pins pages, which needs
``IPC_LOCK`` unless the node lifts the memlock limit. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.aiplatform.catalog import Catalog
from kaip.errors import OperationFailed, UsageError

IPC_LOCK = "IPC_LOCK"
_FIELDS = frozenset({"network", "interface", "resources", "hcas", "port", "gidIndex", "capabilities", "env"})


@dataclass(frozen=True)
class NetworkAdditions:
    """What the chosen networks add to each replica's Pod and main container."""

    #: Entries of the Multus annotation ``k8s.v1.cni.cncf.io/networks``.
    networks: tuple[str, ...] = ()
    limits: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()


def additions(catalog: Catalog, names: Sequence[str]) -> NetworkAdditions:
    """The networks ``names`` as the catalog describes them; a name it does not list is attached as
    given (the Multus annotation alone)."""
    networks: list[str] = []
    limits: dict[str, str] = {}
    env: dict[str, str] = {}
    capabilities: list[str] = []
    hcas: list[str] = []
    for name in names:
        entry = catalog.secondary_network(name)
        where = f"catalog {catalog.source}: secondaryNetworks.{name}"
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise OperationFailed(
                f"{where}: unknown field {unknown[0]} (known: {', '.join(sorted(_FIELDS))})"
            )
        network = str(entry.get("network") or name)
        if entry.get("interface") and "@" not in network:
            network += f"@{entry['interface']}"
        networks.append(network)
        limits.update({str(k): str(v) for k, v in _mapping(entry, "resources", where).items()})
        port = int(entry.get("port") or 1)
        hcas += [f"{h}:{port}" for h in _strings(entry, "hcas", where)]
        derived = _gid_env(entry, where)
        default_caps = [IPC_LOCK] if entry.get("resources") or entry.get("hcas") else []
        for cap in _strings(entry, "capabilities", where) if "capabilities" in entry else default_caps:
            if cap not in capabilities:
                capabilities.append(cap)
        derived.update({str(k): str(v) for k, v in _mapping(entry, "env", where).items()})
        for key, value in derived.items():
            if env.get(key, value) != value:
                raise UsageError(
                    f"--secondary-network {','.join(names)}: the networks disagree on {key} "
                    f"({env[key]} and {value}); attach one of them"
                )
            env[key] = value
    if hcas:
        env = {"NCCL_IB_HCA": "=" + ",".join(hcas), "UCX_NET_DEVICES": ",".join(hcas), **env}
    return NetworkAdditions(tuple(networks), limits, env, tuple(capabilities))


def _gid_env(entry: Mapping[str, Any], where: str) -> dict[str, str]:
    gid = entry.get("gidIndex")
    if gid is None:
        return {}
    if isinstance(gid, bool) or not isinstance(gid, int) or gid < 0:
        raise OperationFailed(f"{where}.gidIndex must be a whole number (the RoCE v2 GID's index)")
    return {"NCCL_IB_GID_INDEX": str(gid), "UCX_IB_GID_INDEX": str(gid)}


def _mapping(entry: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise OperationFailed(f"{where}.{key} must be a mapping")
    return value


def _strings(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key) or []
    if isinstance(value, str) or not isinstance(value, list):
        raise OperationFailed(f"{where}.{key} must be a list")
    return [str(v) for v in value]


def env_list(env: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in env.items()]

"""Reading the watched network links under a root directory: Ethernet (and IPoIB) interfaces from
``/sys/class/net/<if>/`` and RDMA ports from ``/sys/class/infiniband/<dev>/ports/<n>/``.

Which links to watch is configuration (the plugin's ``--interface`` and ``--rdma`` arguments, per node
pool in the NPD config): a link that is configured and absent is a NIC that is not recognised.

What the kernel exposes, and what we read of it:

* Ethernet: ``operstate`` (``up``, ``down``, ``lowerlayerdown``…), ``carrier_changes`` (+1 on every
  carrier loss and every carrier return: a flap is 2), ``statistics/rx_crc_errors`` and
  ``statistics/rx_frame_errors`` (bit errors on the wire: a failing transceiver, AOC or cable);
* RDMA (InfiniBand, RoCE): ``state`` (``4: ACTIVE``), ``phys_state`` (``5: LinkUp``; ``2: Polling`` is
  a port with no partner: cable or transceiver), ``counters/link_downed`` (one per flap) and
  ``counters/symbol_error`` (physical-layer errors: transceiver or cable). The module diagnostics
  (``ethtool -m``: optical power, temperature) are not in sysfs and are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kaip_incluster.nodechecks.host import read_text, to_int


@dataclass(frozen=True)
class Link:
    name: str  # "eth0", "rdma mlx5_0/1"
    present: bool
    up: bool | None = None
    state: str = ""
    flaps: int | None = None  # flaps since the driver loaded
    errors: int | None = None  # physical-layer receive errors since the driver loaded


def interface(root: Path, name: str) -> Link:
    base = root / "sys" / "class" / "net" / name
    if not base.is_dir():
        return Link(name, present=False)
    state = read_text(base / "operstate") or "unknown"
    changes = to_int(read_text(base / "carrier_changes"))
    counters = [to_int(read_text(base / "statistics" / f)) for f in ("rx_crc_errors", "rx_frame_errors")]
    known = [c for c in counters if c is not None]
    return Link(
        name,
        present=True,
        # "unknown" is what drivers without operstate support say; carrier tells then
        up=state == "up" or (state == "unknown" and read_text(base / "carrier") == "1"),
        state=state,
        flaps=changes // 2 if changes is not None else None,
        errors=sum(known) if known else None,
    )


def rdma_ports(root: Path, spec: str) -> list[Link]:
    """``mlx5_0`` (every port of the device) or ``mlx5_0:1`` (one port)."""
    device, _, port = spec.partition(":")
    ports = root / "sys" / "class" / "infiniband" / device / "ports"
    names = [port] if port else (sorted(p.name for p in ports.iterdir()) if ports.is_dir() else [])
    if not names:
        return [Link(f"rdma {device}", present=False)]
    out = []
    for n in names:
        base = ports / n
        label = f"rdma {device}/{n}"
        if not base.is_dir():
            out.append(Link(label, present=False))
            continue
        state = read_text(base / "state") or ""
        phys = read_text(base / "phys_state") or ""
        out.append(
            Link(
                label,
                present=True,
                up=state.endswith("ACTIVE"),
                state=f"{state.partition(': ')[2] or state}, {phys.partition(': ')[2] or phys}".strip(", "),
                flaps=to_int(read_text(base / "counters" / "link_downed")),
                errors=to_int(read_text(base / "counters" / "symbol_error")),
            )
        )
    return out


def links(root: Path, interfaces: list[str], rdma: list[str]) -> list[Link]:
    return [interface(root, i) for i in interfaces] + [p for spec in rdma for p in rdma_ports(root, spec)]

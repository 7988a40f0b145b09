"""``--volume NAME=pvc:CLAIM:/path[:ro]``: an existing PVC (a Lustre or NFS share that already holds the
data) mounted into every replica, beside ``--data``, whose PVCs kaip preloads.

Parsing the flag and the ``--config`` section ``kubernetes.volumes``, the Pod's volumes and mounts,
mount paths that collide with another flag's, and whether a claim's access modes can serve every Pod
of the job at once. Pure: the claims are read by :mod:`kaip.aiplatform.preflight`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kaip.errors import UsageError

_FORM = "NAME=pvc:CLAIM:/PATH[:ro]"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
#: Access modes (core/v1 PersistentVolumeClaimSpec.accessModes).
RWO, ROX, RWX, RWOP = "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"


@dataclass(frozen=True)
class ClaimVolume:
    """One ``--volume``: the Pod volume ``name`` from PVC ``claim`` at ``mount``."""

    name: str
    claim: str
    mount: str
    read_only: bool = False

    @property
    def flag(self) -> str:
        return f"--volume {self.name}"


def parse_volume(value: str) -> ClaimVolume:
    """``NAME=pvc:CLAIM:/PATH`` or ``NAME=pvc:CLAIM:/PATH:ro`` (``:rw``, the default, is accepted)."""
    name, sep, rest = value.partition("=")
    kind, _, rest = rest.partition(":")
    claim, _, path = rest.partition(":")
    mode = ""
    if path.endswith((":ro", ":rw")):
        path, mode = path[:-3], path[-2:]
    if not sep or kind != "pvc" or not claim or not path:
        raise UsageError(f"--volume {value!r}: expected {_FORM} (an existing PersistentVolumeClaim)")
    return checked(ClaimVolume(name, claim, path, mode == "ro"), where=f"--volume {value!r}")


def checked(volume: ClaimVolume, *, where: str) -> ClaimVolume:
    """``volume`` when its names and path are ones Kubernetes takes, else a UsageError at ``where``."""
    if not _LABEL.fullmatch(volume.name):
        raise UsageError(f"{where}: NAME must be a DNS-1123 label (it names the Pod's volume)")
    if not _SUBDOMAIN.fullmatch(volume.claim):
        raise UsageError(f"{where}: CLAIM must be a PersistentVolumeClaim's name")
    if not volume.mount.startswith("/") or ":" in volume.mount:
        raise UsageError(f"{where}: the mount path must be absolute and without ':'")
    return replace(volume, mount=posixpath.normpath(volume.mount))


def from_config(doc: Mapping[str, Any], *, source: str) -> tuple[ClaimVolume, ...]:
    """``kubernetes.volumes`` of a ``--config`` file: each entry the flag's text or a mapping
    ``{name, claim, mountPath, readOnly}``."""
    section = doc.get("kubernetes") or {}
    if not isinstance(section, Mapping) or set(section) - {"volumes"}:
        raise UsageError(f"--config {source}: kubernetes must be a mapping with volumes (kaip's own section)")
    entries = section.get("volumes")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise UsageError(f"--config {source}: kubernetes.volumes must be a list")
    out = []
    for i, entry in enumerate(entries):
        where = f"--config {source}: kubernetes.volumes[{i}]"
        if isinstance(entry, str):
            out.append(parse_volume(entry))
            continue
        if not isinstance(entry, Mapping) or set(entry) - {"name", "claim", "mountPath", "readOnly"}:
            raise UsageError(f"{where}: expected {_FORM} or a mapping with name, claim, mountPath, readOnly")
        if not all(isinstance(entry.get(k), str) for k in ("name", "claim", "mountPath")):
            raise UsageError(f"{where}: name, claim and mountPath are required")
        volume = ClaimVolume(entry["name"], entry["claim"], entry["mountPath"], entry.get("readOnly") is True)
        out.append(checked(volume, where=where))
    return tuple(out)


def merge(config: Sequence[ClaimVolume], flags: Sequence[ClaimVolume]) -> tuple[ClaimVolume, ...]:
    """The file's volumes with the flags over them, as flags override ``--config``: a flag's NAME
    replaces the file's. One NAME given twice on the command line is refused."""
    names = [v.name for v in flags]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--volume {twice[0]}: given twice; each NAME once")
    return (*(v for v in config if v.name not in names), *flags)


def check_paths(volumes: Sequence[ClaimVolume], taken: Iterable[tuple[str, str]]) -> None:
    """Refuse a ``--volume`` whose mount path is, contains or lies inside another mount: ``taken``
    holds ``(path, the flag that mounts it)`` for everything else the replicas mount."""
    owners = [*taken, *((v.mount, v.flag) for v in volumes)]
    for volume in volumes:
        for path, owner in owners:
            if owner == volume.flag:
                continue
            if _overlap(volume.mount, path):
                raise UsageError(
                    f"{volume.flag}: mount path {volume.mount} collides with {path} of {owner}; "
                    "give the volume another path"
                )


def _overlap(a: str, b: str) -> bool:
    a, b = posixpath.normpath(a), posixpath.normpath(b)
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def pod_volumes(volumes: Sequence[ClaimVolume]) -> list[dict[str, Any]]:
    return [
        {
            "name": v.name,
            "persistentVolumeClaim": {"claimName": v.claim, **({"readOnly": True} if v.read_only else {})},
        }
        for v in volumes
    ]


def mounts(volumes: Sequence[ClaimVolume]) -> list[dict[str, Any]]:
    return [
        {"name": v.name, "mountPath": v.mount, **({"readOnly": True} if v.read_only else {})} for v in volumes
    ]


def refusal(volume: ClaimVolume, claim: Mapping[str, Any], *, pods: int) -> str | None:
    """Why PVC ``claim`` cannot serve ``pods`` Pods of the job at once (on any nodes), or None.

    ReadWriteOnce binds the volume to one node and ReadWriteOncePod to one Pod; ReadOnlyMany serves
    many only read-only; ReadWriteMany serves all."""
    status = claim.get("status") or {}
    if status.get("phase") == "Lost":
        return f"{volume.flag}: PVC {volume.claim} is Lost (its PersistentVolume is gone); ask the admin"
    modes = set((status.get("accessModes") or (claim.get("spec") or {}).get("accessModes")) or ())
    if RWX in modes or (ROX in modes and volume.read_only) or (pods <= 1 and modes & {RWO, RWOP}):
        return None
    have = ", ".join(sorted(modes)) or "no access mode"
    if ROX in modes and not (pods <= 1 and modes & {RWO, RWOP}):
        return f"{volume.flag}: PVC {volume.claim} is {have}, which mounts only read-only; add :ro"
    return (
        f"{volume.flag}: PVC {volume.claim} is {have}, which cannot serve the job's {pods} Pods on "
        "different nodes; use a ReadWriteMany claim (NFS, Lustre, CephFS), or a ReadOnlyMany one with "
        ":ro, or run one replica"
    )

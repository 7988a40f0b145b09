"""NFS mounts the node's workloads use, and whether each answers, without ever blocking the caller.

A ``stat`` of a hung NFS mount (a ``hard`` mount whose server is gone) sleeps uninterruptibly; done in
the check's own process it would hang the plugin and NPD's rule with it. So each mount is probed by a
child process (``python -c 'os.statvfs(path)'``), all in parallel, and the check waits for them
until one shared deadline; a child still running then is killed and left behind (never waited for:
a process in D state may not die until the server answers), and its mount reads as hung. ``ESTALE``
from the child is a stale mount (the export was removed or re-created on the server).

Mounts come from ``<root>/proc/1/mounts`` (the host's mount namespace; ``<root>/proc/mounts`` when it
is unreadable), NFS types only, under the configured path prefixes: the kubelet's Pod volumes
(``/var/lib/kubelet/pods``, where in-tree ``nfs`` and NFS CSI volumes are mounted) and any host paths
the workloads reach through ``hostPath``. Each is probed at ``<root><mount point>``: the DaemonSet mounts
those host paths at the same place under ``/host`` with ``mountPropagation: HostToContainer``.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kaip_incluster.nodechecks.host import Mount, Probe

NFS_TYPES = ("nfs", "nfs4")
_PROBE = (
    "import os, sys\n"
    "try:\n"
    "    os.statvfs(sys.argv[1])\n"
    "except OSError as exc:\n"
    "    print(exc.errno, exc.strerror)\n"
    "    sys.exit(3)\n"
)


def _unescape(field: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def nfs_mounts(root: Path, prefixes: Sequence[str]) -> list[Mount] | None:
    """NFS mounts under ``prefixes`` (all of them when empty); None when no mount table is readable."""
    for table in (root / "proc" / "1" / "mounts", root / "proc" / "mounts"):
        try:
            text = table.read_text()
        except OSError:
            continue
        out = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 3 or fields[2] not in NFS_TYPES:
                continue
            point = _unescape(fields[1])
            if prefixes and not any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
                continue
            out.append(Mount(_unescape(fields[0]), point, fields[2]))
        return out
    return None


def probe(
    root: Path, mounts: Sequence[Mount], *, timeout: float, python: str = sys.executable
) -> list[Probe]:
    """``statvfs`` every mount in its own child process, all within ``timeout`` seconds in total."""
    children = []
    for mount in mounts:
        path = str(root / mount.point.lstrip("/"))
        child = subprocess.Popen(
            [python, "-I", "-c", _PROBE, path],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        children.append((mount, child))
    deadline = time.monotonic() + timeout
    out = []
    for mount, child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()  # not waited for: it may sleep uninterruptibly until the server answers
            out.append(Probe(mount, "hung"))
            continue
        said = (child.stdout.read() if child.stdout else "").strip()
        if child.returncode == 0:
            out.append(Probe(mount, "ok"))
        elif said.split(" ", 1)[0] == str(errno.ESTALE):
            out.append(Probe(mount, "stale"))
        else:
            out.append(Probe(mount, f"error: {said.partition(' ')[2] or f'exit {child.returncode}'}"))
    return out

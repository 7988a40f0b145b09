"""The reads behind ``kubectl node-health``: one Node list, Pods only when asked, and a watch.

Speed rules (5,000 nodes): Nodes come in one consistent LIST read in pages of 500 (served from the
API server's watch cache on current servers), gzip-compressed, decoded as plain dicts and turned
into small views page by page, so the raw list is never held whole (peak memory); Pods are read
only when asked for (``--gpu-usage``, ``--stuck-pods``, ``describe``), as one field-selected list of
the non-terminal Pods bound to a node (``resourceVersion=0``: from the watch cache); the Pods stuck
terminating are among them (no field selector finds a ``deletionTimestamp``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kaip.errors import UsageError
from kaip.kube.objects import metadata, version_of
from kaip.nodehealth import accelerators
from kaip.nodehealth import polarity as polarity_table
from kaip.nodehealth.accelerators import AcceleratorTable
from kaip.nodehealth.polarity import Polarity
from kaip.resources import kinds, nodes

if TYPE_CHECKING:
    from kaip.kube.client import Kube

T = TypeVar("T")
#: Nodes per page: about 10 MB of JSON, decoded and dropped before the next page comes.
PAGE = 500
NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
#: The watch is renewed this often; bookmarks keep its resourceVersion fresh in between.
WATCH_SECONDS = 300


def load_tables(
    kube: Kube | None, *, file: str | None, configmap: tuple[str, str] | None
) -> tuple[Polarity, AcceleratorTable, list[str]]:
    """The built-in polarity extended by the ConfigMap, then by the flag file; the built-in accelerator
    vendors extended by the same ConfigMap (key ``accelerators.yaml``); and warnings to show."""
    from kaip.kube.errors import Forbidden, NotFound

    table = polarity_table.builtin()
    vendors = accelerators.BUILTIN
    warnings: list[str] = []
    if kube is not None and configmap is not None:
        namespace, name = configmap
        try:
            cm = kube.get(kinds.CONFIGMAPS, name, namespace=namespace)
        except NotFound:
            cm = None
        except Forbidden:
            cm = None
            warnings.append(
                f"cannot read ConfigMap {namespace}/{name} (forbidden); using the built-in condition polarity"
            )
        data = (cm or {}).get("data") or {}
        if text := data.get(nodes.POLARITY_CONFIGMAP_KEY):
            source = f"ConfigMap {namespace}/{name} key {nodes.POLARITY_CONFIGMAP_KEY}"
            table = table.extended(polarity_table.parse_text(text, source=source))
        if text := data.get(nodes.ACCELERATORS_CONFIGMAP_KEY):
            source = f"ConfigMap {namespace}/{name} key {nodes.ACCELERATORS_CONFIGMAP_KEY}"
            vendors = vendors.extended(accelerators.parse_text(text, source=source))
    if file:
        try:
            text = Path(file).read_text()
        except OSError as exc:
            raise UsageError(f"--polarity-file {file}: cannot be read ({exc.strerror})") from exc
        table = table.extended(polarity_table.parse_text(text, source=f"--polarity-file {file}"))
    return table, vendors, warnings


def read_nodes(
    kube: Kube, *, label_selector: str | None, convert: Callable[[dict[str, Any]], T], page: int = PAGE
) -> tuple[list[T], str]:
    """Every Node, each turned by ``convert`` as soon as its page arrives, and the list's resourceVersion.

    Pages keep the memory of 5,000 Nodes low (only one page of raw objects is alive at a time); on
    current API servers every page of the consistent list is served from the watch cache's snapshot.
    """
    out: list[T] = []
    version = ""
    token: str | None = None
    while True:
        chunk = kube.list(kinds.NODES, label_selector=label_selector, limit=page, continue_token=token)
        version = version or version_of(chunk)
        token = metadata(chunk).get("continue")
        out.extend(convert(item) for item in chunk.get("items") or ())
        del chunk
        if not token:
            return out, version


def get_node(kube: Kube, name: str) -> dict[str, Any]:
    return kube.get(kinds.NODES, name)


def list_gpu_pods(kube: Kube, *, node: str | None = None) -> list[dict[str, Any]]:
    """Non-terminal Pods bound to ``node`` (or to any node), all namespaces, from the watch cache."""
    bound = f"spec.nodeName={node}" if node else "spec.nodeName!="
    result = kube.list(
        kinds.PODS, all_namespaces=True, field_selector=f"{bound},{NON_TERMINAL}", resource_version="0"
    )
    items: list[dict[str, Any]] = result.get("items") or []
    return items


def node_events(kube: Kube, name: str) -> list[dict[str, Any]]:
    result = kube.list(
        kinds.EVENTS,
        all_namespaces=True,
        field_selector=f"involvedObject.kind=Node,involvedObject.name={name}",
    )
    items: list[dict[str, Any]] = result.get("items") or []
    return items


def watch_nodes(
    kube: Kube, *, label_selector: str | None, resource_version: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Node changes for ever: ``(ADDED|MODIFIED|DELETED, node)``, or ``(SYNC, {"items": [...]})``
    after the watch fell too far behind (410 Gone) and the list was read again."""
    from kaip.kube import watching

    listed: list[dict[str, Any]] = []
    for kind, obj in watching.list_watch(
        kube,
        kinds.NODES,
        label_selector=label_selector,
        resource_version=resource_version,
        watch_seconds=WATCH_SECONDS,
        page=PAGE,
    ):
        if kind == watching.RESET:  # the list broke off: a new one follows
            listed = []
        elif kind == watching.LISTED:
            listed.append(obj)
        elif kind == watching.SYNCED:
            yield "SYNC", {"items": listed}
            listed = []
        else:
            yield kind, obj


def batches(events: Iterator[Any], *, settle: float = 1.0) -> Iterator[list[Any]]:
    """Group a blocking event stream into batches: a batch ends when the stream is quiet for
    ``settle`` seconds, so a burst of changes is shown once, and the last change is never held back."""
    import queue
    import threading

    box: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def pump() -> None:
        try:
            for event in events:
                box.put((True, event))
        except BaseException as exc:  # handed to the reading thread, which raises it
            box.put((False, exc))
        else:
            box.put((False, None))

    threading.Thread(target=pump, name="node-watch", daemon=True).start()
    while True:
        ok, item = box.get()
        batch: list[Any] = []
        while True:
            if not ok:
                if batch:
                    yield batch
                if item is None:
                    return
                raise item
            batch.append(item)
            try:
                ok, item = box.get(timeout=settle)
            except queue.Empty:
                break
        yield batch

"""`kubectl pvc-preload`: Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command
from kaip.cli.options import (
    KubectlGroup,
    all_namespaces_option,
    cluster_options,
    dry_run_option,
    output_option,
)
from kaip.cli.output import Table, dump_json, dump_yaml, echo, note, render
from kaip.errors import OperationFailed
from kaip.kube.config import ClusterTarget
from kaip.resources import kinds, timestamps

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.preload.claims import ClaimView
    from kaip.preload.status import Progress

PROG = "kubectl pvc-preload"


@click.group(
    cls=KubectlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
def cli() -> None:
    """Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""


cli.add_command(version_command())


# -- create ------------------------------------------------------------------------------------
@cli.command("create")
@click.argument("name")
@click.option("--source", required=True, metavar="URL", help="s3://BUCKET/PREFIX or gs://BUCKET/PREFIX.")
@click.option("--size", required=True, metavar="QUANTITY", help="Requested storage, e.g. 100Gi.")
@click.option("--storage-class", metavar="NAME", help="StorageClass (default: the cluster's default).")
@click.option(
    "--access-mode",
    "access_modes",
    multiple=True,
    default=("ReadWriteOnce",),
    show_default=True,
    metavar="MODE",
    help="ReadWriteOnce|ReadOnlyMany|ReadWriteMany|ReadWriteOncePod (or RWO/ROX/RWX/RWOP); repeatable.",
)
@click.option(
    "--credentials", metavar="SECRET", help="A kaip credentials Secret in the namespace (default: anonymous)."
)
@click.option("--path", metavar="DIR", help="Sub-directory of the volume to fill (default: its root).")
@click.option(
    "--wait", is_flag=True, help="Wait until the data is loaded (or the load failed), showing progress."
)
@output_option("yaml", "json", "name", default=None, help="Print the claim in this format.")
@dry_run_option
@cluster_options
def create(
    *,
    name: str,
    source: str,
    size: str,
    storage_class: str | None,
    access_modes: tuple[str, ...],
    credentials: str | None,
    path: str | None,
    wait: bool,
    output: str | None,
    dry_run: str,
    target: ClusterTarget,
) -> None:
    """Create a PVC that the data loader fills from SOURCE."""
    from kaip.preload.claims import build_claim
    from kaip.storage.source import parse_source

    claim = build_claim(
        name=name,
        source=parse_source(source, field="--source"),
        size=size,
        namespace=target.namespace,
        storage_class=storage_class,
        access_modes=access_modes,
        credentials=credentials,
        path=path,
    )
    if dry_run == "client":
        _print_created(claim, output, suffix=" (dry run)")
        return
    from kaip.kube import connect

    kube = connect(target)
    created = kube.create(kinds.PVCS, claim, dry_run=dry_run == "server")
    _print_created(created, output, suffix=" (server dry run)" if dry_run == "server" else "")
    if wait and dry_run == "none":
        _finish(_follow_live(kube, name))


def _print_created(obj: dict[str, Any], output: str | None, *, suffix: str) -> None:
    if output == "yaml":
        echo(dump_yaml(obj))
    elif output == "json":
        echo(dump_json(obj))
    elif output == "name":
        echo(f"persistentvolumeclaim/{obj['metadata']['name']}")
    else:
        echo(f"persistentvolumeclaim/{obj['metadata']['name']} created{suffix}")


# -- list --------------------------------------------------------------------------------------
@cli.command("list")
@output_option("table", "wide", "json", "yaml", "name")
@all_namespaces_option
@cluster_options
def list_(*, output: str, all_namespaces: bool, target: ClusterTarget) -> None:
    """List the PVCs filled from a bucket: source, state, progress, size, age."""
    from kaip.kube import connect
    from kaip.preload.claims import is_preload, view

    kube = connect(target)
    items = [p for p in kube.list_all(kinds.PVCS, all_namespaces=all_namespaces) if is_preload(p)]
    items.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
    if not items and output in ("table", "wide"):
        where = "any namespace" if all_namespaces else f"namespace {kube.namespace}"
        note(f"No preloaded PVCs found in {where}.")
        return
    views = [view(p) for p in items]

    def table(wide: bool) -> Table:
        headers = ["NAME", "SOURCE", "STATE", "PROGRESS", "SIZE", "AGE"]
        if wide:
            headers += ["STORAGECLASS", "CREDENTIALS", "PATH", "MESSAGE"]
        if all_namespaces:
            headers.insert(0, "NAMESPACE")
        rows = []
        for v in views:
            row = [v.name, v.source, v.state, v.progress_text(), v.size, timestamps.age(v.created)]
            if wide:
                row += [
                    v.storage_class or "<default>",
                    v.credentials or "<none>",
                    v.path or "/",
                    _short(v.message),
                ]
            if all_namespaces:
                row.insert(0, v.namespace)
            rows.append(row)
        return Table(headers, rows)

    echo(render(output, items, table=table))


# -- status ------------------------------------------------------------------------------------
@cli.command("status")
@click.argument("name")
@click.option("-w", "--watch", is_flag=True, help="Follow the load live (progress bars, ETA) until it ends.")
@output_option("table", "json", "yaml")
@cluster_options
def status(*, name: str, watch: bool, output: str, target: ClusterTarget) -> None:
    """Show the loading state of one PVC; -w follows it until loaded or failed."""
    from kaip.kube import connect
    from kaip.preload.claims import view

    kube = connect(target)
    pvc = _claim(kube, name)
    if output != "table":
        echo(render(output, [pvc], single=True))
        return
    if watch:
        _finish(_follow_live(kube, name))
        return
    echo(_describe(view(pvc)))


def _claim(kube: Kube, name: str) -> dict[str, Any]:
    """The PVC ``name``; a missing one is named with its namespace (exit 7)."""
    from kaip.kube.errors import NotFound

    try:
        return kube.get(kinds.PVCS, name)
    except NotFound as exc:
        raise NotFound(
            f"persistentvolumeclaim/{name} not found in namespace {kube.namespace}",
            status=exc.status,
            reason=exc.reason,
            details=exc.details,
        ) from exc


def _describe(v: ClaimView) -> str:
    from kaip.preload.progress import human_bytes

    lines = [
        ("Name", v.name),
        ("Namespace", v.namespace),
        ("Source", v.source or "<none: not a preloaded PVC>"),
        ("Path", v.path or "/"),
        ("Credentials", v.credentials or "<none>"),
        ("Size", v.size),
        ("Phase", v.phase or "<unknown>"),
        ("State", v.state),
    ]
    p = v.progress
    if p is not None:
        bar = "#" * int(p.fraction * 30)
        lines.append(
            (
                "Progress",
                f"[{bar:<30}] {int(p.fraction * 100)}%  {p.objects_done}/{p.objects_total} objects, "
                f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)}",
            )
        )
    if v.reason:
        lines.append(("Reason", v.reason))
    if v.message and p is None:
        lines.append(("Message", v.message))
    return "\n".join(f"{k + ':':<13}{val}" for k, val in lines)


def _follow_live(kube: Kube, name: str) -> ClaimView:
    from kaip.preload.follow import follow

    with _bars(f"pvc/{name}") as update:
        return follow(kube, name, lambda v: update(v.progress, v.state))


def _finish(v: ClaimView) -> None:
    from kaip.preload.claims import FAILED

    if v.state == FAILED:
        raise OperationFailed(f"persistentvolumeclaim/{v.name}: load failed ({v.reason}): {v.message}")
    echo(f"persistentvolumeclaim/{v.name} loaded from {v.source}")


@contextmanager
def _bars(title: str) -> Iterator[Callable[[Progress | None, str], None]]:
    """Two rich progress bars on stderr (bytes with speed and ETA; objects), fed by progress updates."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bars

    from kaip.preload.progress import human_bytes, rate

    console = Console(stderr=True)
    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[amount]}"),
        TextColumn("{task.fields[speed]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    data = bars.add_task(f"{title} bytes", total=None, amount="", speed="")
    count = bars.add_task(f"{title} objects", total=None, amount="", speed="", visible=False)
    samples: list[tuple[float, int]] = []

    def update(p: Progress | None, state: str) -> None:
        label = f"{title} {state or 'bytes'}"
        if p is None:
            bars.update(data, description=label)
            return
        samples.append((time.monotonic(), p.bytes_done))
        del samples[:-20]  # the speed of the last few updates, not of the whole run
        speed = rate(samples)
        bars.update(
            data,
            description=label,
            total=p.bytes_total,
            completed=p.bytes_done,
            amount=f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)}",
            speed=f"{human_bytes(speed)}/s" if speed is not None else "",
        )
        bars.update(
            count,
            total=p.objects_total,
            completed=p.objects_done,
            amount=f"{p.objects_done}/{p.objects_total} objects",
            visible=True,
        )

    with bars:
        yield update


# -- retry -------------------------------------------------------------------------------------
@cli.command("retry")
@click.argument("name")
@cluster_options
def retry(*, name: str, target: ClusterTarget) -> None:
    """Ask the data loader to try a failed load again."""
    from kaip.kube import connect
    from kaip.preload.claims import is_preload, retry_patch, view

    kube = connect(target)
    pvc = _claim(kube, name)
    if not is_preload(pvc):
        raise OperationFailed(f"persistentvolumeclaim/{name} is not a preloaded PVC (no source annotation)")
    state = view(pvc).state
    kube.patch(kinds.PVCS, name, retry_patch(pvc))
    echo(f"persistentvolumeclaim/{name} retry requested (was {state})")


# -- copy --------------------------------------------------------------------------------------
@cli.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO...) or GCS emulator URL.")
@click.option("--region", metavar="REGION", help="S3 region (default: AWS_REGION, else us-east-1).")
@click.option(
    "--workers", type=click.IntRange(1, 512), default=32, show_default=True, help="Parallel transfers."
)
@click.option("--no-sign-request", is_flag=True, help="Do not use credentials (public buckets).")
@click.option("--no-fsync", is_flag=True, help="Skip the final flush to disk (faster; not power-cut safe).")
def copy(
    *,
    source: str,
    directory: Path,
    endpoint_url: str | None,
    region: str | None,
    workers: int,
    no_sign_request: bool,
    no_fsync: bool,
) -> None:
    """Copy every object under SRC (s3://BUCKET/PREFIX or gs://...) into DIR, as the loader Job does.

    Credentials come from the usual environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
    STORAGE_EMULATOR_HOST). A second run fetches only what changed; a killed run resumes.
    """
    from kaip.preload.copier import CopyOptions
    from kaip.preload.copier import copy as run_copy
    from kaip.preload.errors import UnsafeKeys
    from kaip.preload.progress import human_bytes
    from kaip.storage.source import parse_source

    options = CopyOptions(
        endpoint_url=endpoint_url,
        region=region,
        workers=workers,
        anonymous=no_sign_request,
        durable=not no_fsync,
    )
    with _bars("copy") as update:
        report = run_copy(
            parse_source(source, field="SRC"), directory, options=options, on_progress=lambda p: update(p, "")
        )
    rate = report.bytes_copied / report.seconds if report.seconds else 0.0
    echo(
        f"copied {report.objects_copied} objects ({human_bytes(report.bytes_copied)}, {human_bytes(rate)}/s), "
        f"reused {report.objects_reused} ({human_bytes(report.bytes_reused)}), removed {report.removed}"
    )
    echo(f"verified: {report.verification()}")
    if report.retries:
        echo(f"retries: {report.retries} ({report.throttled} throttled)")
    if report.skipped:
        note(f"skipped {len(report.skipped)} directory marker(s)")
    if report.refused:
        for key, why in report.refused:
            note(f"refused {key!r}: {why}")
        raise UnsafeKeys.of(report.refused)


def _short(text: str, limit: int = 60) -> str:
    from kaip.errors import shorten

    return shorten(text, limit) if text else ""


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)

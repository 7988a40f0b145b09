"""`kubectl pvc-preload`: Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import examples, version_command
from kaip.cli.completion import object_names
from kaip.cli.options import (
    KubectlGroup,
    all_namespaces_option,
    cluster_options,
    dry_run_option,
    output_option,
    timeout_option,
)
from kaip.cli.output import Table, dump_json, dump_yaml, echo, note, render
from kaip.errors import OperationFailed
from kaip.kube.config import ClusterTarget
from kaip.resources import kinds, timestamps

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.preload.claims import ClaimView

PROG = "kubectl pvc-preload"


@click.group(
    cls=KubectlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
def cli() -> None:
    """Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""


cli.add_command(version_command(PROG))


# -- create ------------------------------------------------------------------------------------
@examples(
    "# A 100Gi PVC filled from a bucket; wait up to 30 minutes for the data",
    "kubectl pvc-preload create imagenet --source s3://datasets/imagenet/ --size 100Gi --credentials aws-creds \\",
    "    --wait --timeout 30m",
    "",
    "# A shared (ReadWriteMany) volume loaded by 4 Pods at once",
    "kubectl pvc-preload create laion --source s3://datasets/laion/ --size 2Ti --access-mode RWX --parallelism 4",
)
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
    "--parallelism",
    type=int,
    metavar="N",
    help="Load with N Pods, each fetching its own share of the keys (needs --access-mode ReadWriteMany; "
    "default: the cluster's).",
)
@click.option(
    "--wait", is_flag=True, help="Wait until the data is loaded (or the load failed), showing progress."
)
@timeout_option("--wait")
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
    parallelism: int | None,
    wait: bool,
    timeout: float | None,
    output: str | None,
    dry_run: str,
    target: ClusterTarget,
) -> None:
    """Create a PVC that the data loader fills from SOURCE."""
    from kaip.preload.claims import build_claim
    from kaip.storage.source import parse_source

    if timeout and not wait:
        raise click.UsageError("--timeout goes with --wait")

    claim = build_claim(
        name=name,
        source=parse_source(source, field="--source"),
        size=size,
        namespace=target.namespace,
        storage_class=storage_class,
        access_modes=access_modes,
        credentials=credentials,
        path=path,
        parallelism=parallelism,
    )
    if dry_run == "client":
        _print_created(claim, output, suffix=" (dry run)")
        return
    from kaip.kube import connect

    kube = connect(target)
    created = kube.create(kinds.PVCS, claim, dry_run=dry_run == "server")
    _print_created(created, output, suffix=" (server dry run)" if dry_run == "server" else "")
    if wait and dry_run == "none":
        _finish(_follow_live(kube, name, timeout))


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
@examples(
    "# The preloaded PVCs of the current namespace",
    "kubectl pvc-preload list",
    "",
    "# In every namespace, with their storage class and last message",
    "kubectl pvc-preload list -A -o wide",
)
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


def _is_preload(pvc: dict[str, Any]) -> bool:
    from kaip.preload.contract import is_preload

    return is_preload(pvc)


_PRELOADED = object_names(kinds.PVCS, keep=_is_preload)


# -- status ------------------------------------------------------------------------------------
@examples(
    "# The loading state of one PVC",
    "kubectl pvc-preload status imagenet",
    "",
    "# Follow it until loaded, for at most an hour",
    "kubectl pvc-preload status imagenet -w --timeout 1h",
)
@cli.command("status")
@click.argument("name", shell_complete=_PRELOADED)
@click.option("-w", "--watch", is_flag=True, help="Follow the load live (progress bars, ETA) until it ends.")
@timeout_option("-w")
@output_option("table", "json", "yaml")
@cluster_options
def status(*, name: str, watch: bool, timeout: float | None, output: str, target: ClusterTarget) -> None:
    """Show the loading state of one PVC; -w follows it until loaded or failed."""
    from kaip.kube import connect
    from kaip.preload.claims import describe, view

    if timeout and not watch:
        raise click.UsageError("--timeout goes with -w/--watch")
    kube = connect(target)
    pvc = _claim(kube, name)
    if output != "table":
        echo(render(output, [pvc], single=True))
        return
    if watch:
        _finish(_follow_live(kube, name, timeout))
        return
    echo(describe(view(pvc)))


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


def _follow_live(kube: Kube, name: str, timeout: float | None) -> ClaimView:
    from kaip.cli.progress import transfer_bars
    from kaip.preload.follow import follow

    with transfer_bars(f"pvc/{name}") as update:
        return follow(kube, name, lambda v: update(v.progress, v.state), timeout=timeout)


def _finish(v: ClaimView) -> None:
    from kaip.preload.claims import FAILED

    if v.state == FAILED:
        raise OperationFailed(f"persistentvolumeclaim/{v.name}: load failed ({v.reason}): {v.message}")
    echo(f"persistentvolumeclaim/{v.name} loaded from {v.source}")


# -- retry -------------------------------------------------------------------------------------
@examples(
    "# Try a failed load again",
    "kubectl pvc-preload retry imagenet",
)
@cli.command("retry")
@click.argument("name", shell_complete=_PRELOADED)
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
@examples(
    "# Copy a bucket prefix into a local directory, as the loader Job does",
    "kubectl pvc-preload copy s3://datasets/imagenet/ /data/imagenet --workers 64",
    "",
    "# A public bucket, without credentials",
    "kubectl pvc-preload copy gs://public-data/mnist/ ./mnist --no-sign-request",
)
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
@click.option(
    "--check-hashes",
    # kaip.storage.checksums.CHECK_HASHES (not imported here: --help stays fast; a test keeps them equal)
    type=click.Choice(["if_fast_else_skip", "always", "never"]),
    default="if_fast_else_skip",
    show_default=True,
    help="Which checksums the store publishes are computed over the bytes written: the fast CRCs only "
    "(MD5 and SHA cost more CPU than the copy), any, or none. Sizes are always checked.",
)
def copy(
    *,
    source: str,
    directory: Path,
    endpoint_url: str | None,
    region: str | None,
    workers: int,
    no_sign_request: bool,
    no_fsync: bool,
    check_hashes: str,
) -> None:
    """Copy every object under SRC (s3://BUCKET/PREFIX or gs://...) into DIR, as the loader Job does.

    Credentials come from the usual environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
    STORAGE_EMULATOR_HOST). A second run fetches only what changed; a killed run resumes.
    """
    from kaip.cli.progress import transfer_bars
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
        check_hashes=check_hashes,
    )
    with transfer_bars("copy") as update:
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

"""`kubectl ai-platform jobs list | describe | cancel | update | stream-logs`: the jobs once submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kaip.cli.common import examples
from kaip.cli.completion import cluster_names
from kaip.cli.options import KubectlGroup, all_namespaces_option, cluster_options, output_option
from kaip.cli.output import Table, dump_json, dump_yaml, echo, note, render
from kaip.commands.ai_platform.program import CONTEXT
from kaip.errors import UsageError
from kaip.kube.config import ClusterTarget

if TYPE_CHECKING:
    from kaip.aiplatform.logs import LokiHistory
    from kaip.kube.client import Kube


def _job_ids(kube: Kube) -> list[str]:
    from kaip.aiplatform.jobs import job_ids

    return job_ids(kube)


#: gcloud's JOB argument, completed with the job ids of the namespace.
JOB = click.argument("job", shell_complete=cluster_names(_job_ids))

#: Where Loki is and the tenant, overriding kaip-system/kaip-logging and KAIP_LOKI_URL/KAIP_LOKI_TENANT.
LOKI_URL = click.option("--loki-url", metavar="URL", help="Loki's URL (overrides kaip-system/kaip-logging).")
LOKI_TENANT = click.option("--loki-tenant", metavar="ORG_ID", help="Loki tenant (X-Scope-OrgID) to read.")


@click.group(cls=KubectlGroup, context_settings=CONTEXT)
def jobs() -> None:
    """Submit and manage training jobs (TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob, MPIJob)."""


@examples(
    "# List the jobs of the current namespace, newest first",
    "kubectl ai-platform jobs list",
    "",
    "# Running jobs of team vision in every namespace, with why each is in its state",
    "kubectl ai-platform jobs list -A --filter 'state=RUNNING AND labels.team:vision' -o wide",
)
@jobs.command("list", context_settings=CONTEXT)
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. state=RUNNING AND labels.team:vision")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many jobs.")
@click.option(
    "--sort-by", multiple=True, metavar="FIELD", help="Sort by FIELD (~FIELD reverses); default ~createTime."
)
@output_option("table", "wide", "json", "yaml", "name")
@all_namespaces_option
@cluster_options
def list_jobs(
    *,
    filter_: str | None,
    limit: int | None,
    sort_by: tuple[str, ...],
    output: str,
    all_namespaces: bool,
    target: ClusterTarget,
) -> None:
    """List jobs (JOB_ID, STATUS, CREATED) with gcloud's states."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import views
    from kaip.kube import connect

    test = views.compile_filter(filter_)
    order = [s for v in sort_by for s in v.split(",") if s]
    kube = connect(target)
    found = views.sort_views(
        [v for v in joblib.list_views(kube, all_namespaces=all_namespaces) if test(v)], order
    )
    if limit:
        found = found[:limit]
    if not found and output in ("table", "wide"):
        where = "any namespace" if all_namespaces else f"namespace {kube.namespace}"
        note(f"No jobs found in {where}.")
        return

    def table(wide: bool) -> Table:
        headers = (["NAMESPACE"] if all_namespaces else []) + ["JOB_ID", "STATUS", "CREATED"]
        headers += ["KIND", "NAME", "QUEUE", "GANG", "REASON"] if wide else []
        rows = [
            ([v.namespace] if all_namespaces else [])
            + [v.job_id, v.state.state, views.local_time(v.create_time)]
            + (
                [v.kind, v.name, v.admission.queue_cell(), v.admission.gang_cell(), v.reason_line()]
                if wide
                else []
            )
            for v in found
        ]
        return Table(headers, rows, fit=("REASON",))

    docs = [v.document() for v in found]
    echo(render(output, docs, table=table, name=lambda d: str(d["jobId"])))


@examples(
    "# Describe a job (gcloud's fields, its replicas, why it is stuck)",
    "kubectl ai-platform jobs describe mnist_1",
    "",
    "# Summary tables only",
    "kubectl ai-platform jobs describe mnist_1 --summarize",
)
@jobs.command("describe", context_settings=CONTEXT)
@JOB
@click.option("--summarize", is_flag=True, help="Summary tables instead of the whole job.")
@output_option("yaml", "json", default="yaml")
@LOKI_URL
@LOKI_TENANT
@cluster_options
def describe_job(
    *,
    job: str,
    summarize: bool,
    output: str,
    loki_url: str | None,
    loki_tenant: str | None,
    target: ClusterTarget,
) -> None:
    """Describe a job: gcloud's Job fields, its replicas, and why it is stuck when it is."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import summary
    from kaip.cli.output import format_table
    from kaip.kube import connect

    kube = connect(target)
    job_view, obj, pods = joblib.describe(
        kube, job, history=lambda: _loki_history(kube, loki_url, loki_tenant)[0]
    )
    rows = joblib.replica_rows(obj, pods)
    if summarize:
        parts = []
        for title, headers, body in summary.summary_sections(job_view, rows):
            parts.append(f"{title}\n{format_table(Table(headers, body))}")
        if job_view.failure:
            parts.append(summary.failure_text(job_view.failure))
        echo("\n\n".join(p for p in parts if p))
        return
    doc = job_view.document()
    failure = doc["kubernetes"].pop("failure", None)
    if rows:
        doc["kubernetes"]["replicas"] = [
            {"task": t, "phase": p, **({"reason": r} if r else {})} for t, p, r in rows
        ]
    if failure:
        doc["kubernetes"]["failure"] = failure
    echo(dump_json(doc) if output == "json" else dump_yaml(doc))


@examples(
    "# Cancel a job in namespace team-a",
    "kubectl ai-platform jobs cancel mnist_1 -n team-a",
)
@jobs.command("cancel", context_settings=CONTEXT)
@JOB
@cluster_options
def cancel_job(*, job: str, target: ClusterTarget) -> None:
    """Cancel a job: its Pods stop, its record stays (CANCELLING, then CANCELLED)."""
    from kaip.aiplatform import jobs as joblib
    from kaip.kube import connect

    view, changed = joblib.cancel(connect(target), job)
    if not changed:
        note(f"Job [{job}] is already {view.state.state}; nothing to cancel.")


@examples(
    "# Add or change a label, and remove another",
    "kubectl ai-platform jobs update mnist_1 --update-labels team=vision --remove-labels owner",
)
@jobs.command("update", context_settings=CONTEXT)
@JOB
@click.option("--update-labels", multiple=True, metavar="KEY=VALUE,...", help="Labels to add or change.")
@click.option("--remove-labels", multiple=True, metavar="KEY,...", help="Labels to remove.")
@click.option("--clear-labels", is_flag=True, help="Remove every label.")
@cluster_options
def update_job(
    *,
    job: str,
    update_labels: tuple[str, ...],
    remove_labels: tuple[str, ...],
    clear_labels: bool,
    target: ClusterTarget,
) -> None:
    """Update a job's labels (the only thing gcloud lets change)."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import training
    from kaip.kube import connect

    if not (update_labels or remove_labels or clear_labels):
        raise UsageError("give --update-labels, --remove-labels or --clear-labels")
    updates: dict[str, str] = {}
    for value in update_labels:
        updates.update(training.parse_labels(value))
    joblib.update_labels(
        connect(target), job, update=updates, remove=training.split_list(remove_labels), clear=clear_labels
    )
    note(f"Updated job [{job}].")


def _loki_history(
    kube: Kube, loki_url: str | None, loki_tenant: str | None, *, quiet: bool = False
) -> tuple[LokiHistory | None, str | None]:
    """Loki's stored lines when Loki is configured; else None and the hint (printed unless ``quiet``)."""
    from kaip.aiplatform.logs import LokiHistory
    from kaip.logs.config import Overrides, load
    from kaip.logs.loki import Loki

    settings, hint = load(kube, kube.namespace, Overrides(url=loki_url, tenant=loki_tenant))
    if settings is None:
        if hint and not quiet:
            note(hint)
        return None, hint
    return LokiHistory(Loki(settings), warn=lambda message: note(f"warning: {message}")), None


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_ns(since: str | None, since_time: str | None) -> int | None:
    """``--since 90m`` / ``--since-time 2026-01-02T03:04:05Z`` as nanoseconds since the epoch."""
    import re
    import time

    if since and since_time:
        raise UsageError("give --since or --since-time, not both")
    if since:
        parts = re.findall(r"(\d+)([smhd])", since)
        if not parts or "".join(n + u for n, u in parts) != since:
            raise UsageError(f"--since {since!r}: a duration such as 30s, 15m, 2h or 1h30m")
        seconds = sum(int(n) * _DURATION[u] for n, u in parts)
        return time.time_ns() - seconds * 1_000_000_000
    if since_time:
        from kaip.logs.merge import parse_stamp

        try:
            return parse_stamp(since_time)
        except ValueError as exc:
            raise UsageError(
                f"--since-time {since_time!r}: an RFC 3339 time such as 2026-01-02T03:04:05Z"
            ) from exc
    return None


@examples(
    "# Follow the logs of every replica until the job ends",
    "kubectl ai-platform jobs stream-logs mnist_1",
    "",
    "# Only the first worker",
    "kubectl ai-platform jobs stream-logs mnist_1 --task-name worker-replica-0",
    "",
    "# The last hour of a job whose Pods are gone (read from Loki)",
    "kubectl ai-platform jobs stream-logs mnist_1 --since 1h",
)
@jobs.command("stream-logs", context_settings=CONTEXT)
@JOB
@click.option("--task-name", help="Only this task: master-replica-0, worker-replica-N, ps-replica-N.")
@click.option(
    "--polling-interval",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Seconds between looks for new replicas once the logs are quiet.",
)
@click.option(
    "--allow-multiline-logs", is_flag=True, help="Accepted for gcloud scripts (lines are never split)."
)
@click.option("--since", metavar="DURATION", help="Only lines newer than this: 30s, 15m, 2h.")
@click.option("--since-time", metavar="TIME", help="Only lines from this RFC 3339 time on.")
@LOKI_URL
@LOKI_TENANT
@cluster_options
def stream_logs(
    *,
    job: str,
    task_name: str | None,
    polling_interval: int,
    allow_multiline_logs: bool,
    since: str | None,
    since_time: str | None,
    loki_url: str | None,
    loki_tenant: str | None,
    target: ClusterTarget,
) -> None:
    """Show the logs of every replica, following Pods that start later, until the job ends.

    Lines of Pods that are gone come from Loki when kaip-system/kaip-logging (or --loki-url) names it."""
    from kaip.aiplatform import logs
    from kaip.kube import connect
    from kaip.kube.errors import NotFound

    start = since_ns(since, since_time)
    kube = connect(target)
    history, hint = _loki_history(kube, loki_url, loki_tenant, quiet=True)
    try:
        logs.stream(
            kube,
            job,
            emit=echo,
            task_name=task_name,
            polling_interval=float(polling_interval),
            history=history,
            since_ns=start,
        )
    except NotFound as exc:
        if hint is None:
            raise
        # Still one line: the hint joins the error.
        raise NotFound(f"{exc}; {hint.removeprefix('hint: ')}", status=exc.status, reason=exc.reason) from exc
    if hint:
        note(hint)  # after the lines: a finished job's missing history is where the hint helps

"""`kubectl ai-platform jobs list | describe | cancel | update | stream-logs`: the jobs once submitted."""

from __future__ import annotations

import click

from kaip.cli.options import KubectlGroup, all_namespaces_option, cluster_options, output_option
from kaip.cli.output import Table, dump_json, dump_yaml, echo, note, render
from kaip.commands.ai_platform.program import CONTEXT
from kaip.errors import UsageError
from kaip.kube.config import ClusterTarget


@click.group(cls=KubectlGroup, context_settings=CONTEXT)
def jobs() -> None:
    """Submit and manage training jobs (TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob, MPIJob)."""


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

    def table(wide: bool) -> Table:
        headers = (["NAMESPACE"] if all_namespaces else []) + ["JOB_ID", "STATUS", "CREATED"]
        headers += ["KIND", "NAME", "REASON"] if wide else []
        rows = [
            ([v.namespace] if all_namespaces else [])
            + [v.job_id, v.state.state, views.local_time(v.create_time)]
            + ([v.kind, v.name, v.reason_line()] if wide else [])
            for v in found
        ]
        return Table(headers, rows)

    docs = [v.document() for v in found]
    echo(render(output, docs, table=table, name=lambda d: str(d["jobId"])))


@jobs.command("describe", context_settings=CONTEXT)
@click.argument("job")
@click.option("--summarize", is_flag=True, help="Summary tables instead of the whole job.")
@output_option("yaml", "json", default="yaml")
@cluster_options
def describe_job(*, job: str, summarize: bool, output: str, target: ClusterTarget) -> None:
    """Describe a job: gcloud's Job fields, its replicas, and why it is stuck when it is."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import summary
    from kaip.cli.output import format_table
    from kaip.kube import connect

    kube = connect(target)
    job_view, obj, pods = joblib.describe(kube, job)
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


@jobs.command("cancel", context_settings=CONTEXT)
@click.argument("job")
@cluster_options
def cancel_job(*, job: str, target: ClusterTarget) -> None:
    """Cancel a job: its Pods stop, its record stays (CANCELLING, then CANCELLED)."""
    from kaip.aiplatform import jobs as joblib
    from kaip.kube import connect

    view, changed = joblib.cancel(connect(target), job)
    if not changed:
        note(f"Job [{job}] is already {view.state.state}; nothing to cancel.")


@jobs.command("update", context_settings=CONTEXT)
@click.argument("job")
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


@jobs.command("stream-logs", context_settings=CONTEXT)
@click.argument("job")
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
@cluster_options
def stream_logs(
    *,
    job: str,
    task_name: str | None,
    polling_interval: int,
    allow_multiline_logs: bool,
    target: ClusterTarget,
) -> None:
    """Show the logs of every replica, following Pods that start later, until the job ends."""
    from kaip.aiplatform import logs
    from kaip.kube import connect

    logs.stream(
        connect(target), job, emit=echo, task_name=task_name, polling_interval=float(polling_interval)
    )

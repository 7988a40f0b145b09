"""The flags of `kubectl ai-platform jobs submit training`, as gcloud names them.

gcloud's flags that only make sense on Google Cloud are accepted and refused with the reason
(:func:`_cloud_only`); machine types and accelerators complete from the cluster's catalog (or the
built-in one when the cluster does not answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from kaip.cli.completion import LIMIT, TIMEOUT, ask, items
from kaip.cli.options import output_option
from kaip.cli.output import note

if TYPE_CHECKING:
    from kaip.kube.client import Kube


def _cloud_only(what: str) -> Any:
    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ()):
            raise click.UsageError(
                f"{param.opts[0]} ({what}) exists only on Google Cloud and has no meaning here"
            )

    return refuse


_CLOUD_ONLY = (
    ("--kms-key", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-keyring", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-location", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-project", "customer-managed encryption keys (Cloud KMS)"),
    ("--network", "VPC network peering; for secondary networks use --secondary-network"),
    ("--tpu-tf-version", "Cloud TPU"),
    ("--enable-web-access", "interactive shell web access; use kubectl exec"),
)


def _async_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        note(
            "The --async flag is deprecated, as the default behavior is to submit the job asynchronously; "
            "it can be omitted. For synchronous behavior, please pass --stream-logs."
        )
    return value


def _accelerator_help(who: str) -> str:
    return f"Accelerators for the {who}: type=TYPE,count=N (types from `config show`)."


def _catalog_section(section: str) -> Any:
    """Complete the names of one section of the cluster's catalog (the built-in one when the cluster
    cannot be asked); an accelerator flag's ``type=`` is completed within ``type=T,count=N``."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from kaip.aiplatform.builtin_catalog import BUILTIN
        from kaip.aiplatform.catalog import Catalog

        def names(kube: Kube) -> list[str]:
            from kaip.aiplatform.jobs import read_catalog

            return list(read_catalog(kube)[0].section(section))

        found = ask(ctx, names)
        if found is None:
            found = list(Catalog(BUILTIN).section(section))
        if section != "accelerators":
            return items(found, incomplete)
        head, sep, _ = incomplete.rpartition(",")
        if any(part.startswith("type=") for part in head.split(",")):
            return []  # the type is given: what follows is a count
        return items([f"{head}{sep}type={n}" for n in found], incomplete)

    return complete


_MACHINES = _catalog_section("machineTypes")
_ACCELERATORS = _catalog_section("accelerators")
_NETWORKS = _catalog_section("secondaryNetworks")


def _id_option(flag: str, metavar: str, text: str) -> Any:
    """A user or group ID of every replica's Pod; the catalog's tenant gives the default."""
    return click.option(
        flag, type=click.IntRange(min=0), metavar=metavar, help=f"{text[:-1]}; default: the tenant's."
    )


def _complete_claim(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``NAME=pvc:`` completes with the namespace's PVCs; the NAME is the user's to choose."""
    head, sep, _ = incomplete.partition("=pvc:")
    if not sep or ":" in incomplete[len(head) + len(sep) :]:
        return []

    def names(kube: Kube) -> list[str]:
        from kaip.resources.kinds import PVCS

        listed = kube.list(PVCS, limit=LIMIT, timeout=TIMEOUT).get("items") or []
        return [str(o["metadata"]["name"]) for o in listed]

    return items([f"{head}{sep}{n}:" for n in ask(ctx, names) or []], incomplete)


def submit_options(func: Any) -> Any:
    """gcloud's flags of ``jobs submit training``, in gcloud's order (the cloud-only ones refused)."""
    options = [
        click.option(
            "--module-name", help="Python module to run (python -m MODULE); required unless an image runs."
        ),
        click.option(
            "--package-path",
            type=click.Path(file_okay=False),
            help="Local package directory, built as an sdist and staged.",
        ),
        click.option(
            "--packages",
            multiple=True,
            metavar="PACKAGE,...",
            help="Local archives (staged) or gs:// / s3:// URIs (fetched).",
        ),
        click.option(
            "--staging-bucket",
            metavar="URI",
            help="s3:// or gs:// bucket for local packages (default: a ConfigMap).",
        ),
        click.option(
            "--job-dir", metavar="URI", help="Output directory, passed to the program as --job-dir."
        ),
        click.option(
            "--region", help="Accepted for gcloud scripts; the kubeconfig context chooses the cluster."
        ),
        click.option(
            "--scale-tier",
            type=click.Choice(
                ["basic", "basic-gpu", "basic-tpu", "standard-1", "premium-1", "custom"], case_sensitive=False
            ),
            help="Machine set-up of the job (custom: give the machine types).",
        ),
        click.option(
            "--master-machine-type",
            shell_complete=_MACHINES,
            help="Machine type of the master (required with --scale-tier=custom).",
        ),
        click.option(
            "--master-image-uri",
            help="Container image of the master; runs its own entrypoint with the user args.",
        ),
        click.option(
            "--master-accelerator",
            metavar="type=T,count=N",
            shell_complete=_ACCELERATORS,
            help=_accelerator_help("master"),
        ),
        click.option("--worker-count", type=int, help="Number of workers (with --worker-machine-type)."),
        click.option(
            "--worker-machine-type",
            shell_complete=_MACHINES,
            help="Machine type of the workers (with --worker-count).",
        ),
        click.option("--worker-image-uri", help="Image of the workers (default: the master's)."),
        click.option(
            "--worker-accelerator",
            metavar="type=T,count=N",
            shell_complete=_ACCELERATORS,
            help=_accelerator_help("workers"),
        ),
        click.option(
            "--parameter-server-count",
            type=int,
            help="Number of parameter servers (with --parameter-server-machine-type).",
        ),
        click.option(
            "--parameter-server-machine-type",
            shell_complete=_MACHINES,
            help="Machine type of the parameter servers.",
        ),
        click.option(
            "--parameter-server-image-uri", help="Image of the parameter servers (default: the master's)."
        ),
        click.option(
            "--parameter-server-accelerator",
            metavar="type=T,count=N",
            shell_complete=_ACCELERATORS,
            help=_accelerator_help("parameter servers"),
        ),
        click.option(
            "--runtime-version",
            help="Runtime version: picks the image from the catalog (not with --master-image-uri).",
        ),
        click.option("--python-version", help="Python version of the runtime (checked against the catalog)."),
        click.option(
            "--use-chief-in-tf-config",
            type=click.BOOL,
            is_flag=False,
            flag_value="true",
            default=None,
            help="TensorFlow: a Chief replica instead of Master (TF 2).",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.File("r"),
            help="gcloud Job YAML/JSON (trainingInput); flags override it.",
        ),
        click.option("--labels", multiple=True, metavar="KEY=VALUE,...", help="Labels of the job."),
        click.option("--service-account", help="Kubernetes ServiceAccount the replicas run as."),
        click.option(
            "--stream-logs",
            is_flag=True,
            help="Follow the logs until the job ends; exit 1 unless it SUCCEEDED.",
        ),
        click.option("--async", "async_", is_flag=True, hidden=True, callback=_async_flag, expose_value=True),
        click.option(
            "--framework",
            type=click.Choice(["tensorflow", "pytorch", "xgboost", "jax", "paddle", "mpi", "deepspeed"]),
            default="tensorflow",
            show_default=True,
            help="Kubeflow job kind to create (deepspeed: Trainer v2 only).",
        ),
        click.option(
            "--backend",
            type=click.Choice(["v1", "trainer-v2"]),
            help="v1 (training-operator kinds) or trainer-v2 (TrainJob); default: the catalog's, else "
            "trainer-v2 for pytorch/mpi/deepspeed when the cluster serves TrainJob.",
        ),
        click.option(
            "--mpi-api",
            type=click.Choice(["v2beta1", "v1"]),
            help="MPIJob version: v2beta1 (mpi-operator) or v1 (training-operator); default: the served one.",
        ),
        click.option(
            "--credentials",
            multiple=True,
            metavar="SECRET,...",
            help="kaip credentials Secrets mounted into every replica.",
        ),
        click.option(
            "--data",
            multiple=True,
            metavar="NAME=URI[:MOUNT]",
            help="Preload s3:// or gs:// data into PVC NAME, mounted at MOUNT (default /data/NAME).",
        ),
        click.option(
            "--data-credentials",
            metavar="SECRET",
            help="Credentials Secret the data loader reads the --data buckets with.",
        ),
        click.option("--queue", help="Queue: Kueue LocalQueue (label) or Volcano queue (schedulingPolicy)."),
        click.option(
            "--priority",
            metavar="CLASS",
            help="Priority class (Kueue WorkloadPriorityClass or PriorityClass).",
        ),
        click.option(
            "--gang", is_flag=True, help="Gang-schedule all replicas together (minAvailable = all)."
        ),
        click.option(
            "--scheduler",
            type=click.Choice(["kueue", "volcano", "scheduler-plugins", "none"]),
            help="Queueing/gang system of the cluster (default: the catalog's).",
        ),
        click.option(
            "--secondary-network",
            multiple=True,
            metavar="NAME,...",
            shell_complete=_NETWORKS,
            help="Catalog networks (Multus; RDMA: device, IPC_LOCK, NCCL/UCX settings) for every replica.",
        ),
        click.option(
            "--volume",
            multiple=True,
            metavar="NAME=pvc:CLAIM:/PATH[:ro]",
            shell_complete=_complete_claim,
            help="Mount the existing PVC CLAIM at PATH in every replica (read-only with :ro).",
        ),
        _id_option("--run-as-user", "UID", "UID of every replica (securityContext.runAsUser)."),
        _id_option("--run-as-group", "GID", "Primary GID of every replica (securityContext.runAsGroup)."),
        _id_option("--fs-group", "GID", "Group owning the replicas' volumes (securityContext.fsGroup)."),
        click.option(
            "--exclusive/--no-exclusive",
            default=None,
            help="Guaranteed QoS, whole CPUs: the CPU Manager pins each replica (default: the catalog's).",
        ),
        output_option(
            "yaml",
            "json",
            "name",
            default=None,
            help="Print the objects created (or, with --dry-run, to be created).",
        ),
    ]
    options += [
        click.option(
            flag,
            hidden=True,
            expose_value=False,
            is_flag=flag == "--enable-web-access",
            callback=_cloud_only(what),
        )
        for flag, what in _CLOUD_ONLY
    ]
    for option in reversed(options):
        func = option(func)
    return func

"""`kubectl ai-platform config show`: the catalog in effect."""

from __future__ import annotations

import click

from kaip.cli.common import examples
from kaip.cli.options import KubectlGroup, cluster_options, output_option
from kaip.cli.output import dump_json, dump_yaml, echo, note
from kaip.commands.ai_platform.program import CONTEXT
from kaip.kube.config import ClusterTarget


@click.group("config", cls=KubectlGroup, context_settings=CONTEXT)
def config_group() -> None:
    """The cluster's catalog of machine types, accelerators, scale tiers and runtime versions."""


@examples(
    "# The catalog of the current cluster",
    "kubectl ai-platform config show",
    "",
    "# The built-in catalog, as JSON",
    "kubectl ai-platform config show --builtin -o json",
)
@config_group.command("show", context_settings=CONTEXT)
@click.option("--builtin", is_flag=True, help="Show the built-in catalog; do not read the cluster's.")
@output_option("yaml", "json", default="yaml")
@cluster_options
def config_show(*, builtin: bool, output: str, target: ClusterTarget) -> None:
    """Print the catalog in effect: the admin's ConfigMap kaip-system/ai-platform-catalog over the built-in one."""
    from kaip.aiplatform.builtin_catalog import BUILTIN

    doc = dict(BUILTIN)
    if not builtin:
        from kaip.aiplatform import jobs as joblib
        from kaip.kube import connect

        catalog, warning = joblib.read_catalog(connect(target))
        if warning:
            note(f"Warning: {warning}")
        note(f"# catalog: {catalog.source}")
        doc = dict(catalog.doc)
    echo(dump_json(doc) if output == "json" else dump_yaml(doc))

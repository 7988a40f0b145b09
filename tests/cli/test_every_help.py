"""Every command of every plugin answers --help without a cluster, and says what it does."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from kaip.commands import ai_platform, node_health, pvc_preload

PLUGINS = {"ai-platform": ai_platform.cli, "node-health": node_health.cli, "pvc-preload": pvc_preload.cli}


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


CASES = [(plugin, path) for plugin, root in PLUGINS.items() for path, _ in walk(root)]


@pytest.mark.parametrize(("plugin", "path"), CASES, ids=[" ".join((p, *c)) for p, c in CASES])
def test_help(plugin: str, path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(PLUGINS[plugin], [*path, "--help"], prog_name=f"kubectl {plugin}")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: kubectl {plugin}")
    command = PLUGINS[plugin]
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert (command.help or "").strip(), f"kubectl {plugin} {' '.join(path)} has no help text"

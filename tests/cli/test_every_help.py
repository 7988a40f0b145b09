"""Every command of every plugin answers --help without a cluster, and says what it does; every
command that runs has kubectl's "Examples:" section, showing the command itself."""

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
    if not isinstance(command, click.Group):
        assert "\n  Examples:\n    # " in result.output, f"kubectl {plugin} {' '.join(path)} has no Examples"
        assert f"\n    kubectl {plugin} {' '.join(path)}" in result.output
        head = result.output.split("\nOptions:")[0]
        assert "\n  Examples:" in head  # before the options, as kubectl prints them


def test_every_leaf_command_is_counted() -> None:
    leaves = [c for p, c in CASES if not isinstance(_command(p, c), click.Group)]
    assert len(leaves) == 24


def _command(plugin: str, path: tuple[str, ...]) -> click.Command:
    command = PLUGINS[plugin]
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command

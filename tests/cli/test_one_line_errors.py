"""Every error of every plugin is one line on stderr with its exit code: flag and argument errors
(exit 2) carry the help hint instead of click's usage banner, and a missing object is exit 7."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kaip.cli.app import run
from kaip.commands import ai_platform, node_health, pvc_preload
from kaip.errors import ExitCode, KaipError

PLUGINS = {
    "kubectl ai-platform": ai_platform.cli,
    "kubectl node-health": node_health.cli,
    "kubectl pvc-preload": pvc_preload.cli,
}


def invoke(
    capsys: pytest.CaptureFixture[str], cli: click.Command, prog: str, *args: str
) -> tuple[int, str, str]:
    code = run(cli, list(args), prog_name=prog)
    out, err = capsys.readouterr()
    return code, out, err


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += [(*prefix, name), *_paths(command, (*prefix, name))]
        else:
            out.append((*prefix, name))
    return out


COMMANDS = [(prog, path) for prog, cli in PLUGINS.items() for path in _paths(cli)]


@pytest.mark.parametrize(("prog", "path"), COMMANDS, ids=[f"{p} {' '.join(c)}" for p, c in COMMANDS])
def test_an_unknown_flag_is_one_line_with_the_help_hint(
    capsys: pytest.CaptureFixture[str], prog: str, path: tuple[str, ...]
) -> None:
    code, out, err = invoke(capsys, PLUGINS[prog], prog, *path, "--no-such-flag")
    assert code == ExitCode.USAGE
    assert out == ""
    assert err == f"error: No such option '--no-such-flag' (see '{prog} {' '.join(path)} --help')\n"


@pytest.mark.parametrize("prog", sorted(PLUGINS))
def test_an_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str], prog: str) -> None:
    code, _, err = invoke(capsys, PLUGINS[prog], prog, "frobnicate")
    assert (code, err) == (2, f"error: No such command 'frobnicate' (see '{prog} --help')\n")


def test_a_cloud_only_gcloud_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(
        capsys, ai_platform.cli, "kubectl ai-platform", "jobs", "submit", "training", "j", "--kms-key", "k"
    )
    assert code == 2
    assert err == (
        "error: --kms-key (customer-managed encryption keys (Cloud KMS)) exists only on Google Cloud and "
        "has no meaning here (see 'kubectl ai-platform jobs submit training --help')\n"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["jobs", "describe"],
            "error: Missing argument 'JOB' (see 'kubectl ai-platform jobs describe --help')",
        ),
        (
            ["jobs", "list", "-o", "toml"],
            "error: Invalid value for '-o' / '--output': 'toml' is not one of 'table', 'wide', 'json', "
            "'yaml', 'name' (see 'kubectl ai-platform jobs list --help')",
        ),
        (
            ["jobs", "stream-logs", "j", "--polling-interval", "0"],
            "error: Invalid value for '--polling-interval': 0 is not in the range x>=1 "
            "(see 'kubectl ai-platform jobs stream-logs --help')",
        ),
        (
            ["jobs", "submit", "training", "j", "--config", "/nonexistent/job.yaml"],
            "error: Invalid value for '--config': '/nonexistent/job.yaml': No such file or directory "
            "(see 'kubectl ai-platform jobs submit training --help')",
        ),
        (
            ["jobs", "list", "--request-timeout", "soon"],
            "error: Invalid value for '--request-timeout': ",
        ),
    ],
)
def test_flag_and_argument_errors(capsys: pytest.CaptureFixture[str], args: list[str], line: str) -> None:
    code, _, err = invoke(capsys, ai_platform.cli, "kubectl ai-platform", *args)
    assert code == 2
    assert err.startswith(line) and err.count("\n") == 1
    assert "Usage:" not in err and "Try '" not in err


def test_a_broken_config_file_names_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("job.yaml").write_text("trainingInput:\n  scaleTier: CUSTOM\n  masterType: n1: standard\n")
    code, out, err = invoke(
        capsys,
        ai_platform.cli,
        "kubectl ai-platform",
        *("jobs", "submit", "training", "j", "--config", "job.yaml", "--dry-run=client"),
    )
    assert (code, out) == (2, "")
    assert err == (
        "error: --config job.yaml: not valid YAML at line 3, column 17: mapping values are not allowed here\n"
    )
    Path("job.json").write_text('{\n  "trainingInput": {"scaleTier" "BASIC"}\n}\n')
    code, _, err = invoke(
        capsys,
        ai_platform.cli,
        "kubectl ai-platform",
        *("jobs", "submit", "training", "j", "--config", "job.json", "--dry-run=client"),
    )
    assert (code, err) == (
        2,
        "error: --config job.json: not valid JSON at line 2, column 33: Expecting ':' delimiter\n",
    )


def test_help_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(capsys, ai_platform.cli, "kubectl ai-platform", "jobs", "describe", "--help")
    assert code == 0 and err == ""
    assert out.startswith("Usage: kubectl ai-platform jobs describe [OPTIONS] JOB\n")


def test_an_error_that_spans_lines_is_printed_as_one(capsys: pytest.CaptureFixture[str]) -> None:
    @click.command()
    def broken() -> None:
        raise KaipError("the server said:\n  something\n  went wrong")

    assert invoke(capsys, broken, "kubectl x")[1:] == ("", "error: the server said: something went wrong\n")


# -- a missing object, against the real API server -------------------------------------------------
@pytest.mark.integration
def test_describe_of_a_missing_node(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    code, out, err = invoke(
        capsys,
        node_health.cli,
        "kubectl node-health",
        "describe",
        "gpu-node-404",
        "--kubeconfig",
        str(kubeconfig),
    )
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err == 'error: nodes "gpu-node-404" not found\n'


@pytest.mark.integration
@pytest.mark.parametrize("command", ["status", "retry"])
def test_a_missing_pvc_is_named_with_its_namespace(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, command: str
) -> None:
    code, out, err = invoke(
        capsys,
        pvc_preload.cli,
        "kubectl pvc-preload",
        *(command, "imagenet", "--kubeconfig", str(kubeconfig), "-n", namespace),
    )
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err == f"error: persistentvolumeclaim/imagenet not found in namespace {namespace}\n"

"""`kubectl node-health` flags to behaviour, without a cluster: help, completion, flag errors that
must be reported before any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kaip.cli.app import completions, run
from kaip.commands.node_health import cli
from kaip.errors import ExitCode

PROG = "kubectl node-health"


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(cli, list(args), prog_name=PROG)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dead_cluster(tmp_path: Path) -> Path:
    """A kubeconfig whose server listens nowhere: a flag error must be reported before any request."""
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    return path


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("summary", ["--exit-code", "--watch", "--gpu-usage", "--group-by", "--polarity-file", "-l", "-o"]),
        (
            "list",
            [
                "--problem",
                "--only-problems",
                "--sort-by",
                "--exit-code",
                "-w",
                "--polarity-file",
                "-l",
                "--gpu-usage",
            ],
        ),
        ("describe", ["--polarity-file", "-o"]),
    ],
)
def test_help_names_the_issue_flags(command: str, flags: list[str]) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], prog_name=PROG)
    assert result.exit_code == 0
    for flag in flags:
        assert flag in result.output
    for kubectl_flag in ("--kubeconfig", "--context", "--as", "--request-timeout"):
        assert kubectl_flag in result.output


def test_list_output_formats() -> None:
    result = CliRunner().invoke(cli, ["list", "--help"], prog_name=PROG)
    assert "[table|wide|json|yaml|name|csv]" in result.output


def test_completion_offers_the_subcommands() -> None:
    lines = completions(cli, [""], PROG)
    assert {line.split("\t")[0] for line in lines[:-1]} >= {"summary", "list", "describe", "version"}


def test_unknown_sort_key_is_a_usage_error(capsys: pytest.CaptureFixture[str], dead_cluster: Path) -> None:
    code, _, err = invoke(capsys, "list", "--sort-by", "colour", "--kubeconfig", str(dead_cluster))
    assert code == ExitCode.USAGE and "'colour' is not one of" in err


def test_bad_polarity_configmap_flag(capsys: pytest.CaptureFixture[str], dead_cluster: Path) -> None:
    code, _, err = invoke(
        capsys, "summary", "--polarity-configmap", "no-slash", "--kubeconfig", str(dead_cluster)
    )
    assert code == ExitCode.USAGE and "use NAMESPACE/NAME, or none" in err


def test_bad_polarity_file_is_reported_before_any_request(
    capsys: pytest.CaptureFixture[str], dead_cluster: Path, tmp_path: Path
) -> None:
    file = tmp_path / "polarity.yaml"
    file.write_text("healthyWhen:\n  GPUIsLost: sometimes\n")
    args = ["--kubeconfig", str(dead_cluster), "--polarity-configmap", "none", "--polarity-file", str(file)]
    code, _, err = invoke(capsys, "list", *args)
    assert code == ExitCode.USAGE
    assert (
        err.strip()
        == f'error: --polarity-file {file}: healthyWhen.GPUIsLost is "sometimes"; use "True" or "False"'
    )
    code, _, err = invoke(capsys, "summary", *args[:-1], str(tmp_path / "missing.yaml"))
    assert code == ExitCode.USAGE and "cannot be read (No such file or directory)" in err


def test_unreachable_cluster_is_one_line(capsys: pytest.CaptureFixture[str], dead_cluster: Path) -> None:
    code, out, err = invoke(capsys, "summary", "--kubeconfig", str(dead_cluster))
    assert code == ExitCode.UNREACHABLE and out == ""
    assert len(err.strip().splitlines()) == 1 and "connection refused" in err

"""kubectl's flags before the subcommand, as cobra's persistent flags: `kubectl pvc-preload -n team list`
does what `kubectl pvc-preload list -n team` does, on every plugin and at every level of a nested
command; a flag given in both places, or before a command that does not take it, is a one-line usage
error naming it. Only the flags' translation is checked: the client is replaced where it is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from kaip.cli.app import completions, run
from kaip.commands import ai_platform, node_health, pvc_preload
from kaip.errors import ExitCode
from kaip.kube.config import ClusterTarget

PLUGINS = {
    "kubectl ai-platform": ai_platform.cli,
    "kubectl node-health": node_health.cli,
    "kubectl pvc-preload": pvc_preload.cli,
}
# Commands of each plugin that talk to the cluster: the words that name one, then its arguments.
COMMANDS = [
    ("kubectl ai-platform", ("jobs", "list"), ()),
    ("kubectl ai-platform", ("jobs", "describe"), ("j",)),
    ("kubectl node-health", ("summary",), ()),
    ("kubectl node-health", ("describe",), ("gpu-1",)),
    ("kubectl pvc-preload", ("list",), ()),
    ("kubectl pvc-preload", ("retry",), ("imagenet",)),
]
IDS = [" ".join((p, *c)) for p, c, _ in COMMANDS]
CLUSTER_FLAGS = [
    *("--kubeconfig", "/tmp/kubeconfig", "--context", "lab", "--cluster", "c1", "--user", "me"),
    *("-n", "team", "--as", "alice", "--as-group", "g1", "--as-group", "g2", "--request-timeout", "30s"),
]
TARGET = ClusterTarget(
    kubeconfig="/tmp/kubeconfig",
    context="lab",
    cluster="c1",
    user="me",
    namespace="team",
    impersonate="alice",
    impersonate_groups=("g1", "g2"),
    request_timeout=30.0,
)


class Connected(Exception):
    """Raised by the stand-in for connect: the command got as far as the cluster, with this target."""

    def __init__(self, target: ClusterTarget) -> None:
        super().__init__(target)
        self.target = target


class FakeKube:
    namespace = "team"

    def __init__(self, target: ClusterTarget, calls: list[Any]) -> None:
        calls.append(target)
        self.calls = calls

    def list_all(self, _resource: Any, *, all_namespaces: bool) -> list[dict[str, Any]]:
        self.calls.append(("all_namespaces", all_namespaces))
        return []


@pytest.fixture
def connect_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(target: ClusterTarget, **_: Any) -> None:
        raise Connected(target)

    monkeypatch.setattr("kaip.kube.connect", connect)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the commands asked of the cluster: the target, then the listing's all_namespaces."""
    made: list[Any] = []
    monkeypatch.setattr("kaip.kube.connect", lambda target, **_: FakeKube(target, made))

    def list_views(_kube: Any, *, all_namespaces: bool) -> list[Any]:
        made.append(("all_namespaces", all_namespaces))
        return []

    monkeypatch.setattr("kaip.aiplatform.jobs.list_views", list_views)
    return made


def invoke(capsys: pytest.CaptureFixture[str], prog: str, *args: str) -> tuple[int, str, str]:
    code = run(PLUGINS[prog], list(args), prog_name=prog)
    out, err = capsys.readouterr()
    return code, out, err


def target_of(prog: str, args: list[str]) -> ClusterTarget:
    with pytest.raises(Connected) as reached:
        run(PLUGINS[prog], args, prog_name=prog)
    return reached.value.target


@pytest.mark.usefixtures("connect_stops")
@pytest.mark.parametrize(("prog", "words", "rest"), COMMANDS, ids=IDS)
def test_cluster_flags_before_the_command_make_the_same_target(
    prog: str, words: tuple[str, ...], rest: tuple[str, ...]
) -> None:
    assert target_of(prog, [*words, *rest, *CLUSTER_FLAGS]) == TARGET
    for i in range(len(words)):  # before each word: the plugin, then each nested group
        assert target_of(prog, [*words[:i], *CLUSTER_FLAGS, *words[i:], *rest]) == TARGET, i
    # some before, the rest after
    assert target_of(prog, [*CLUSTER_FLAGS[:8], *words, *rest, *CLUSTER_FLAGS[8:]]) == TARGET


def test_flags_before_nested_groups_add_up(connect_stops: None) -> None:
    args = ["--context", "lab", "jobs", "-n", "team", "list", "--as", "alice"]
    assert target_of("kubectl ai-platform", args) == ClusterTarget(
        context="lab", namespace="team", impersonate="alice"
    )


@pytest.mark.parametrize(
    ("prog", "before", "after"),
    [
        ("kubectl pvc-preload", ["-A", "-o", "json"], ["list"]),
        ("kubectl pvc-preload", ["-A"], ["list", "-o", "json"]),
        ("kubectl ai-platform", ["-A", "-o", "json"], ["jobs", "list"]),
        ("kubectl ai-platform", ["jobs", "-A", "-o", "json"], ["list"]),
    ],
)
def test_all_namespaces_and_output_before_the_command(
    capsys: pytest.CaptureFixture[str], calls: list[Any], prog: str, before: list[str], after: list[str]
) -> None:
    path = [w for w in [*before, *after] if w not in ("-A", "-o", "json")]
    code, out, _ = invoke(capsys, prog, *path, "-A", "-o", "json")
    assert code == 0
    expected = (list(calls), out)
    calls.clear()
    code, out, err = invoke(capsys, prog, *before, *after)
    assert (code, err) == (0, "")
    assert (list(calls), out) == expected
    assert calls == [ClusterTarget(), ("all_namespaces", True)]
    assert '"kind": "List"' in out


@pytest.mark.parametrize("prog", sorted(PLUGINS))
def test_output_before_the_command_on_every_plugin(capsys: pytest.CaptureFixture[str], prog: str) -> None:
    code, after, _ = invoke(capsys, prog, "version", "--client", "-o", "json")
    assert code == 0 and after.startswith("{")
    assert invoke(capsys, prog, "-o", "json", "version", "--client") == (0, after, "")


def test_output_before_a_command_with_its_own_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(capsys, "kubectl ai-platform", "-o", "json", "config", "show", "--builtin")
    assert (code, err) == (0, "") and out.startswith("{")
    code, _, err = invoke(capsys, "kubectl ai-platform", "-o", "wide", "config", "show", "--builtin")
    assert code == ExitCode.USAGE
    assert err.startswith("error: Invalid value for '-o' / '--output': 'wide' is not one of 'yaml', 'json'")


@pytest.mark.parametrize(
    ("prog", "args", "line"),
    [
        (
            "kubectl pvc-preload",
            ["-n", "a", "list", "-n", "b"],
            "error: -n/--namespace is given both before and after 'list'; give it once "
            "(see 'kubectl pvc-preload list --help')",
        ),
        (
            "kubectl node-health",
            ["--context", "x", "summary", "--context", "x"],
            "error: --context is given both before and after 'summary'; give it once "
            "(see 'kubectl node-health summary --help')",
        ),
        (
            "kubectl ai-platform",
            ["-o", "json", "jobs", "list", "-o", "yaml"],
            "error: -o/--output is given both before and after 'list'; give it once "
            "(see 'kubectl ai-platform jobs list --help')",
        ),
        (
            "kubectl ai-platform",
            ["-n", "a", "jobs", "-n", "b", "list"],
            "error: -n/--namespace is given twice; give it once (see 'kubectl ai-platform jobs --help')",
        ),
        (
            "kubectl pvc-preload",
            ["-A", "retry", "imagenet"],
            "error: 'kubectl pvc-preload retry' takes no -A/--all-namespaces flag "
            "(see 'kubectl pvc-preload retry --help')",
        ),
        (
            "kubectl node-health",
            ["-A", "list"],
            "error: 'kubectl node-health list' takes no -A/--all-namespaces flag "
            "(see 'kubectl node-health list --help')",
        ),
        (
            "kubectl ai-platform",
            ["-A", "jobs", "describe", "j"],
            "error: 'kubectl ai-platform jobs describe' takes no -A/--all-namespaces flag "
            "(see 'kubectl ai-platform jobs describe --help')",
        ),
        (
            "kubectl ai-platform",
            ["-n", "a", "local", "train", "--module-name", "m"],
            "error: 'kubectl ai-platform local train' takes no -n/--namespace flag "
            "(see 'kubectl ai-platform local train --help')",
        ),
        (
            "kubectl pvc-preload",
            ["-o", "json", "copy", "s3://b/p", "/tmp/d"],
            "error: 'kubectl pvc-preload copy' takes no -o/--output flag "
            "(see 'kubectl pvc-preload copy --help')",
        ),
        (
            "kubectl node-health",
            ["--request-timeout", "soon", "list"],
            "error: Invalid value for '--request-timeout': \"soon\" is not a duration",
        ),
        (
            "kubectl pvc-preload",
            ["-o", "csv", "list"],
            "error: Invalid value for '-o' / '--output': 'csv' is not one of",
        ),
    ],
)
def test_usage_errors_name_the_flag_on_one_line(
    capsys: pytest.CaptureFixture[str], connect_stops: None, prog: str, args: list[str], line: str
) -> None:
    code, out, err = invoke(capsys, prog, *args)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err.startswith(line)
    assert len(err.splitlines()) <= 2 and "Usage:" not in err


def test_help_of_a_command_after_a_flag_it_does_not_take(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(capsys, "kubectl pvc-preload", "-A", "retry", "--help")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: kubectl pvc-preload retry [OPTIONS] NAME")


@pytest.mark.parametrize("prog", sorted(PLUGINS))
def test_group_help_lists_the_global_flags(capsys: pytest.CaptureFixture[str], prog: str) -> None:
    code, out, _ = invoke(capsys, prog, "--help")
    assert code == 0
    flags = out.split("Global flags", 1)[1]
    for flag in ("--kubeconfig", "--context", "--cluster", "--user", "--namespace", "--as-group"):
        assert flag in flags
    for flag in ("--request-timeout", "--all-namespaces", "--output"):
        assert flag in flags


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncurrent-context: ''\n"
        "contexts:\n- {name: gpu-prod, context: {cluster: a}}\n- {name: gpu-lab, context: {cluster: b}}\n"
    )
    return path


@pytest.mark.parametrize(("prog", "words", "_rest"), COMMANDS, ids=IDS)
def test_completion_at_both_positions(
    kubeconfig: Path, prog: str, words: tuple[str, ...], _rest: tuple[str, ...]
) -> None:
    cli: click.Command = PLUGINS[prog]
    for args in (
        ["--kubeconfig", str(kubeconfig), *words, "--context", "gpu"],
        ["--kubeconfig", str(kubeconfig), "--context", "gpu"],
        [*words, "--kubeconfig", str(kubeconfig), "--context", "gpu"],
    ):
        assert completions(cli, args, prog) == ["gpu-lab", "gpu-prod", ":4"], args
    assert completions(cli, ["-n", "team", *words, "--as-gr"], prog)[0].startswith("--as-group")
    # a flag given before the command is not offered again after it
    assert not any(
        line.startswith("--namespace") for line in completions(cli, ["-n", "team", *words, "--"], prog)
    )

"""The shared plumbing of every plugin against the real API server: kubectl's flags, impersonation,
output formats, and the one-line error with its exit code for each failure a user meets.

The command under test is built here from the same pieces every plugin uses (cluster_options,
output_option, connect, render), so these tests prove the plumbing itself."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from kaip.cli.app import run
from kaip.cli.options import all_namespaces_option, cluster_options, output_option
from kaip.cli.output import Table, echo, render
from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed.controlplane import ControlPlane, kubeconfig_document
from kaip_testbed.pki import CertificateAuthority

pytestmark = pytest.mark.integration

TFJOBS = Resource(
    "kubeflow.org",
    "v1",
    "tfjobs",
    "TFJob",
    install_hint="install the Kubeflow Training Operator (kubectl apply --server-side -k "
    '"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.2")',
)
KINDS = {"configmaps": kinds.CONFIGMAPS, "tfjobs": TFJOBS}


@click.command("get")
@click.argument("what", type=click.Choice(sorted(KINDS)))
@click.argument("name", required=False)
@output_option()
@all_namespaces_option
@cluster_options
def get(what: str, name: str | None, output: str, all_namespaces: bool, target: ClusterTarget) -> None:
    from kaip.kube import connect

    kube = connect(target)
    resource = KINDS[what]
    items = (
        [kube.get(resource, name)] if name else kube.list(resource, all_namespaces=all_namespaces)["items"]
    )
    # kube-controller-manager, once a test of the session has started it, publishes this one into
    # every namespace; the tests here count only their own.
    items = [i for i in items if i["metadata"]["name"] != "kube-root-ca.crt"]

    def table(wide: bool) -> Table:
        headers = ["NAME", "DATA"] + (["NAMESPACE"] if wide else [])
        rows = [
            [o["metadata"]["name"], len(o.get("data") or {})] + ([o["metadata"]["namespace"]] if wide else [])
            for o in items
        ]
        return Table(headers, rows)

    echo(render(output, items, table=table, single=bool(name)))


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(get, list(args), prog_name="kubectl test")
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_configmaps(kube: Kube) -> None:
    kube.create(kinds.CONFIGMAPS, {"metadata": {"name": "alpha"}, "data": {"a": "1"}})
    kube.create(kinds.CONFIGMAPS, {"metadata": {"name": "beta"}, "data": {"a": "1", "b": "2"}})


def grant_list_configmaps(kube: Kube, namespace: str, *, subject: dict[str, str]) -> None:
    rbac_role = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
    rbac_binding = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
    kube.create(
        rbac_role,
        {
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    kube.create(
        rbac_binding,
        {
            "metadata": {"name": "cm-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}],
        },
    )


@pytest.mark.usefixtures("two_configmaps")
def test_table_wide_json_yaml_and_name_outputs(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str
) -> None:
    base = ["configmaps", "--kubeconfig", str(kubeconfig), "-n", namespace]
    code, out, _ = invoke(capsys, *base)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA"]
    assert [ln.split() for ln in lines[1:]] == [["alpha", "1"], ["beta", "2"]]
    _, out, _ = invoke(capsys, *base, "-o", "wide")
    assert out.splitlines()[1].split() == ["alpha", "1", namespace]
    _, out, _ = invoke(capsys, *base, "-o", "json")
    doc = json.loads(out)
    assert doc["kind"] == "List" and [i["metadata"]["name"] for i in doc["items"]] == ["alpha", "beta"]
    _, out, _ = invoke(capsys, *base, "-o", "yaml")
    assert [i["data"] for i in yaml.safe_load(out)["items"]] == [{"a": "1"}, {"a": "1", "b": "2"}]
    _, out, _ = invoke(capsys, *base, "-o", "name")
    assert out.split() == ["configmap/alpha", "configmap/beta"]
    _, out, _ = invoke(capsys, *base[:1], "alpha", *base[1:], "-o", "json")
    assert json.loads(out)["metadata"]["name"] == "alpha"


@pytest.mark.usefixtures("two_configmaps")
def test_namespace_defaults_to_the_contexts_namespace(
    capsys: pytest.CaptureFixture[str], control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["contexts"][0]["context"]["namespace"] = namespace
    doc["contexts"].append(
        {
            "name": "elsewhere",
            "context": {"cluster": "kaip-test", "user": "admin", "namespace": "kube-system"},
        }
    )
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    code, out, _ = invoke(capsys, "configmaps", "--kubeconfig", str(path), "-o", "name")
    assert (code, out.split()) == (0, ["configmap/alpha", "configmap/beta"])
    code, out, _ = invoke(
        capsys, "configmaps", "--kubeconfig", str(path), "--context", "elsewhere", "-o", "name"
    )
    assert code == 0 and "configmap/alpha" not in out


def test_kubeconfig_env_with_several_files(
    capsys: pytest.CaptureFixture[str],
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kube: Kube,
) -> None:
    kube.create(kinds.CONFIGMAPS, {"metadata": {"name": "only-here"}})
    broken = tmp_path / "first.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "",
                "contexts": [],
                "clusters": [],
                "users": [],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", f"{broken}:{tmp_path / 'missing'}:{control_plane.kubeconfig}")
    code, out, _ = invoke(capsys, "configmaps", "-n", namespace, "-o", "name")
    assert (code, out.split()) == (0, ["configmap/only-here"])


def test_all_namespaces(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, kube: Kube, namespace: str
) -> None:
    marker = f"marker-{uuid.uuid4().hex[:6]}"
    kube.create(kinds.CONFIGMAPS, {"metadata": {"name": marker}})
    code, out, _ = invoke(capsys, "configmaps", "-A", "--kubeconfig", str(kubeconfig), "-o", "wide")
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert code == 0 and [marker, "0", namespace] in rows
    assert any(r[2] == "kube-system" for r in rows)


def test_forbidden_names_the_verb_the_resource_and_the_user(
    capsys: pytest.CaptureFixture[str], control_plane: ControlPlane, namespace: str
) -> None:
    eve = control_plane.user_kubeconfig("eve")
    code, out, err = invoke(capsys, "configmaps", "--kubeconfig", str(eve), "-n", namespace)
    assert code == ExitCode.FORBIDDEN == 6
    assert out == ""
    assert err.strip() == (
        f'error: configmaps is forbidden: User "eve" cannot list resource '
        f'"configmaps" in API group "" in the namespace "{namespace}"'
    )


@pytest.mark.usefixtures("two_configmaps")
def test_impersonation_of_a_user_and_groups(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, kube: Kube, namespace: str
) -> None:
    base = ["configmaps", "--kubeconfig", str(kubeconfig), "-n", namespace, "-o", "name"]
    code, _, err = invoke(capsys, *base, "--as", "mallory")
    assert code == ExitCode.FORBIDDEN and 'User "mallory" cannot list' in err
    grant_list_configmaps(kube, namespace, subject={"kind": "Group", "name": "ml-readers"})
    code, out, _ = invoke(
        capsys, *base, "--as", "mallory", "--as-group", "interns", "--as-group", "ml-readers"
    )
    assert (code, out.split()) == (0, ["configmap/alpha", "configmap/beta"])
    code, _, err = invoke(capsys, *base, "--as-group", "ml-readers")
    assert code == ExitCode.CONFIG and "add --as USER" in err


def test_not_found_names_the_object(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str
) -> None:
    code, _, err = invoke(capsys, "configmaps", "nope", "--kubeconfig", str(kubeconfig), "-n", namespace)
    assert code == ExitCode.NOT_FOUND == 7
    assert err.strip() == 'error: configmaps "nope" not found'


def test_missing_crd_says_which_and_how_to_install(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str
) -> None:
    code, _, err = invoke(capsys, "tfjobs", "--kubeconfig", str(kubeconfig), "-n", namespace)
    assert code == ExitCode.API_MISSING == 8
    assert err.startswith(
        "error: the cluster does not serve tfjobs.kubeflow.org/v1 (TFJob): install the Kubeflow Training Operator"
    )
    assert len(err.strip().splitlines()) == 1


def test_no_kubeconfig(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = invoke(capsys, "configmaps")
    assert code == ExitCode.CONFIG == 3
    assert err.startswith("error: no kubeconfig found") and "--kubeconfig FILE" in err


def test_unknown_context(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    code, _, err = invoke(capsys, "configmaps", "--kubeconfig", str(kubeconfig), "--context", "prod")
    assert code == ExitCode.CONFIG
    assert err.strip() == 'error: --context: context "prod" is not in the kubeconfig (contexts: kaip-test)'


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_server_unreachable(
    capsys: pytest.CaptureFixture[str], control_plane: ControlPlane, tmp_path: Path
) -> None:
    from kaip_testbed.processes import free_port

    doc = kubeconfig_document(
        server=f"https://127.0.0.1:{free_port()}",
        ca_pem=control_plane.ca.cert_pem,
        user="admin",
        cert=control_plane.admin,
    )
    code, _, err = invoke(capsys, "configmaps", "--kubeconfig", str(write_config(tmp_path / "c", doc)))
    assert code == ExitCode.UNREACHABLE == 4
    assert "cannot reach the API server at https://127.0.0.1:" in err and "connection refused" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_tls_failure_with_the_wrong_certificate_authority(
    capsys: pytest.CaptureFixture[str], control_plane: ControlPlane, tmp_path: Path
) -> None:
    other_ca = CertificateAuthority("somebody-else")
    doc = kubeconfig_document(
        server=control_plane.server_url, ca_pem=other_ca.cert_pem, user="admin", cert=control_plane.admin
    )
    code, _, err = invoke(capsys, "configmaps", "--kubeconfig", str(write_config(tmp_path / "c", doc)))
    assert code == ExitCode.UNREACHABLE
    assert (
        "TLS handshake with the API server" in err
        and "certificate verify failed" in err
        and "certificate-authority" in err
    )


def test_unauthorized_token(
    capsys: pytest.CaptureFixture[str], control_plane: ControlPlane, tmp_path: Path
) -> None:
    doc = kubeconfig_document(
        server=control_plane.server_url,
        ca_pem=control_plane.ca.cert_pem,
        user="bob",
        token="not-a-valid-token",
    )
    code, _, err = invoke(capsys, "configmaps", "--kubeconfig", str(write_config(tmp_path / "c", doc)))
    assert code == ExitCode.UNAUTHORIZED == 5
    assert (
        err.startswith("error: You must be logged in to the server (Unauthorized)")
        and "not-a-valid-token" not in err
    )


def test_bad_request_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str], kubeconfig: Path) -> None:
    code, _, err = invoke(capsys, "configmaps", "--kubeconfig", str(kubeconfig), "--request-timeout", "soon")
    assert code == ExitCode.USAGE
    assert "--request-timeout" in err and "30s" in err

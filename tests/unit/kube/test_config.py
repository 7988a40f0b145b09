"""Cluster access resolved as kubectl resolves it: merging, precedence, overrides, errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from kaip.errors import ConfigError, ExitCode
from kaip.kube.config import (
    ClusterTarget,
    in_cluster,
    kubeconfig_paths,
    load,
    merge_kubeconfigs,
    parse_duration,
    proxy_from_environment,
    resolve,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(
    clusters: dict[str, str],
    users: dict[str, dict[str, object]],
    contexts: dict[str, dict[str, str]],
    current: str = "",
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
        "current-context": current,
    }


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    first = write(
        tmp_path / "a.yaml",
        kubeconfig(
            {"prod": "https://prod:6443"},
            {"alice": {"token": "t-alice"}},
            {"prod": {"cluster": "prod", "user": "alice", "namespace": "ml"}},
            current="prod",
        ),
    )
    second = write(
        tmp_path / "b.yaml",
        kubeconfig(
            {"prod": "https://shadowed:6443", "lab": "https://lab:6443"},
            {"bob": {"token": "t-bob"}},
            {"lab": {"cluster": "lab", "user": "bob"}},
            current="lab",
        ),
    )
    return first, second


def test_kubeconfig_env_merges_files_first_definition_and_first_current_context_win(
    two_files: tuple[Path, Path],
) -> None:
    first, second = two_files
    env = {"KUBECONFIG": f"{first}:{second}", "HOME": "/nonexistent"}
    conn = load(ClusterTarget(), env)
    assert (conn.context, conn.server, conn.namespace, conn.token) == (
        "prod",
        "https://prod:6443",
        "ml",
        "t-alice",
    )
    lab = load(ClusterTarget(context="lab"), env)
    assert (lab.server, lab.namespace, lab.token) == ("https://lab:6443", "default", "t-bob")


def test_missing_files_in_kubeconfig_env_are_skipped(two_files: tuple[Path, Path], tmp_path: Path) -> None:
    first, _ = two_files
    conn = load(ClusterTarget(), {"KUBECONFIG": f"{tmp_path / 'gone.yaml'}:{first}"})
    assert conn.server == "https://prod:6443"


def test_flag_kubeconfig_beats_env_and_must_exist(two_files: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = two_files
    conn = load(ClusterTarget(kubeconfig=str(second)), {"KUBECONFIG": str(first)})
    assert conn.context == "lab"
    with pytest.raises(ConfigError, match=r"--kubeconfig: file .* does not exist") as err:
        load(ClusterTarget(kubeconfig=str(tmp_path / "nope")), {})
    assert err.value.exit_code == ExitCode.CONFIG


def test_cluster_user_and_namespace_flags_override_the_context(two_files: tuple[Path, Path]) -> None:
    first, second = two_files
    env = {"KUBECONFIG": f"{first}:{second}"}
    conn = load(ClusterTarget(cluster="lab", user="bob", namespace="team-a"), env)
    assert (conn.context, conn.server, conn.token, conn.namespace) == (
        "prod",
        "https://lab:6443",
        "t-bob",
        "team-a",
    )


def test_unknown_context_names_the_known_ones(two_files: tuple[Path, Path]) -> None:
    first, second = two_files
    with pytest.raises(ConfigError) as err:
        load(ClusterTarget(context="staging"), {"KUBECONFIG": f"{first}:{second}"})
    assert str(err.value) == '--context: context "staging" is not in the kubeconfig (contexts: lab, prod)'


def test_no_kubeconfig_anywhere_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no kubeconfig found .*--kubeconfig FILE, set KUBECONFIG"):
        load(ClusterTarget(), {"HOME": str(tmp_path)})


def test_default_path_is_home_kube_config(tmp_path: Path) -> None:
    assert kubeconfig_paths(ClusterTarget(), {"HOME": str(tmp_path)}) == [tmp_path / ".kube" / "config"]


def test_relative_certificate_paths_resolve_against_their_own_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "ca.crt").write_text(CA)
    doc = kubeconfig(
        {"c": "https://x:6443"}, {"u": {"token": "t"}}, {"ctx": {"cluster": "c", "user": "u"}}, "ctx"
    )
    doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"  # type: ignore[index]
    path = write(sub / "config", doc)
    conn = load(ClusterTarget(kubeconfig=str(path)), {})
    assert conn.ca_pem == CA


def test_certificate_data_is_decoded() -> None:
    merged = merge_kubeconfigs(
        [
            (
                Path("/k/config"),
                kubeconfig(
                    {"c": "https://x"},
                    {
                        "u": {
                            "client-certificate-data": base64.b64encode(b"CERT").decode(),
                            "client-key-data": base64.b64encode(b"KEY").decode(),
                        }
                    },
                    {"ctx": {"cluster": "c", "user": "u"}},
                    "ctx",
                ),
            )
        ]
    )
    conn = resolve(ClusterTarget(), merged)
    assert (conn.client_cert_pem, conn.client_key_pem) == ("CERT", "KEY")


def test_impersonation_from_flags_or_kubeconfig_user() -> None:
    merged = merge_kubeconfigs(
        [
            (
                Path("/k"),
                kubeconfig(
                    {"c": "https://x"},
                    {"u": {"token": "t", "as": "carol", "as-groups": ["ops"]}},
                    {"ctx": {"cluster": "c", "user": "u"}},
                    "ctx",
                ),
            )
        ]
    )
    assert (
        resolve(ClusterTarget(), merged).impersonate,
        resolve(ClusterTarget(), merged).impersonate_groups,
    ) == ("carol", ("ops",))
    flags = resolve(ClusterTarget(impersonate="dave", impersonate_groups=("ml",)), merged)
    assert (flags.impersonate, flags.impersonate_groups) == ("dave", ("ml",))


def test_group_impersonation_needs_a_user() -> None:
    merged = merge_kubeconfigs(
        [
            (
                Path("/k"),
                kubeconfig({"c": "https://x"}, {"u": {}}, {"ctx": {"cluster": "c", "user": "u"}}, "ctx"),
            )
        ]
    )
    with pytest.raises(ConfigError, match=r"--as-group: .* add --as USER"):
        resolve(ClusterTarget(impersonate_groups=("g",)), merged)


def test_removed_auth_provider_is_refused_with_the_replacement() -> None:
    merged = merge_kubeconfigs(
        [
            (
                Path("/k"),
                kubeconfig(
                    {"c": "https://x"},
                    {"u": {"auth-provider": {"name": "gcp"}}},
                    {"ctx": {"cluster": "c", "user": "u"}},
                    "ctx",
                ),
            )
        ]
    )
    with pytest.raises(ConfigError, match="exec credential plugin"):
        resolve(ClusterTarget(), merged)


def test_exec_plugin_is_read() -> None:
    merged = merge_kubeconfigs(
        [
            (
                Path("/k/config"),
                kubeconfig(
                    {"c": "https://x"},
                    {
                        "u": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1",
                                "command": "bin/get-token",
                                "args": ["--x"],
                                "env": [{"name": "A", "value": "1"}],
                            }
                        }
                    },
                    {"ctx": {"cluster": "c", "user": "u"}},
                    "ctx",
                ),
            )
        ]
    )
    ex = resolve(ClusterTarget(), merged).exec_config
    assert ex is not None
    assert (ex.command, ex.args, ex.env) == ("/k/bin/get-token", ("--x",), (("A", "1"),))


def test_in_cluster_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "namespace").write_text("kaip-system\n")
    (tmp_path / "ca.crt").write_text(CA)
    conn = in_cluster(
        ClusterTarget(), {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path
    )
    assert conn is not None
    assert (conn.server, conn.namespace, conn.token_file, conn.ca_pem) == (
        "https://10.0.0.1:443",
        "kaip-system",
        str(tmp_path / "token"),
        CA,
    )
    assert in_cluster(ClusterTarget(), {}, tmp_path) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("30", 30), ("30s", 30), ("2m", 120), ("1h", 3600), ("500ms", 0.5)]
)
def test_request_timeout_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "1d"])
def test_bad_request_timeout_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--request-timeout"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("server", "environ", "expected"),
    [
        (
            "https://api.example.org:6443",
            {"HTTPS_PROXY": "http://proxy:3128"},
            ("HTTPS_PROXY", "http://proxy:3128"),
        ),
        ("https://api.example.org", {"https_proxy": "proxy:3128"}, ("https_proxy", "http://proxy:3128")),
        ("http://api.example.org", {"HTTPS_PROXY": "http://proxy:3128"}, None),  # http takes HTTP_PROXY
        ("http://api.example.org", {"HTTP_PROXY": "http://proxy:80"}, ("HTTP_PROXY", "http://proxy:80")),
        ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://proxy:3128"}, None),  # loopback never
        ("https://localhost:6443", {"HTTPS_PROXY": "http://proxy:3128"}, None),
        ("https://[::1]:6443", {"HTTPS_PROXY": "http://proxy:3128"}, None),
        ("https://api.example.org", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.org"}, None),
        ("https://example.org", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.org"}, None),
        (
            "https://example.org",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.org"},
            ("HTTPS_PROXY", "http://p:1"),
        ),
        ("https://api.example.org", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*.example.org"}, None),
        (
            "https://badexample.org",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.org"},
            ("HTTPS_PROXY", "http://p:1"),
        ),
        ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:1", "no_proxy": "10.0.0.0/8"}, None),
        (
            "https://10.1.2.3:6443",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.1.2.3:443"},
            ("HTTPS_PROXY", "http://p:1"),
        ),
        ("https://10.1.2.3:6443", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.1.2.3:6443"}, None),
        ("https://api.example.org", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": " other.org , *"}, None),
        ("https://api.example.org", {}, None),
    ],
)
def test_proxy_from_the_environment_follows_kubectls_rules(
    server: str, environ: dict[str, str], expected: tuple[str, str] | None
) -> None:
    assert proxy_from_environment(server, environ) == expected


def test_a_kubeconfig_proxy_url_wins_over_the_environment(tmp_path: Path) -> None:
    doc = {
        "clusters": [
            {"name": "c", "cluster": {"server": "https://api.example.org", "proxy-url": "http://kc:1"}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    env = {"HTTPS_PROXY": "http://env:2"}
    conn = load(ClusterTarget(kubeconfig=str(path)), env)
    assert (conn.proxy_url, conn.proxy_from) == ("http://kc:1", "proxy-url")
    del doc["clusters"][0]["cluster"]["proxy-url"]
    path.write_text(yaml.safe_dump(doc))
    conn = load(ClusterTarget(kubeconfig=str(path)), env)
    assert (conn.proxy_url, conn.proxy_from) == ("http://env:2", "HTTPS_PROXY")

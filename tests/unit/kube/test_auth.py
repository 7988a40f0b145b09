"""kaip.kube.auth without a server: which identity headers a request gets, exec plugins and key files."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from kaip.errors import ConfigError
from kaip.kube import auth
from kaip.kube.config import Connection, ExecConfig

SERVER = "https://127.0.0.1:6443"


def test_a_token_wins_over_the_token_file_and_basic_auth(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    conn = Connection(SERVER, token="inline", token_file=str(token_file), basic_auth=("u", "p"))
    assert auth.authorization(conn, None) == "Bearer inline"


def test_the_token_file_is_read_on_every_request(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    conn = Connection(SERVER, token_file=str(token_file), basic_auth=("u", "p"))
    assert auth.authorization(conn, None) == "Bearer first"
    token_file.write_text("rotated")
    assert auth.authorization(conn, None) == "Bearer rotated"


def test_an_unreadable_token_file_is_a_config_error(tmp_path: Path) -> None:
    conn = Connection(SERVER, token_file=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"token file .*missing cannot be read"):
        auth.authorization(conn, None)


def test_basic_auth_and_no_credentials() -> None:
    assert auth.authorization(Connection(SERVER, basic_auth=("user", "pass")), None) == "Basic dXNlcjpwYXNz"
    assert auth.authorization(Connection(SERVER), None) is None
    assert auth.identity_headers(Connection(SERVER), None) == []


def test_identity_headers_add_impersonation_after_authorization() -> None:
    conn = Connection(SERVER, token="t", impersonate="alice", impersonate_groups=("g1", "g2"))
    assert auth.identity_headers(conn, None) == [
        ("Authorization", "Bearer t"),
        ("Impersonate-User", "alice"),
        ("Impersonate-Group", "g1"),
        ("Impersonate-Group", "g2"),
    ]


def _plugin(tmp_path: Path, status: object, *, code: int = 0) -> ExecConfig:
    """A credential plugin that counts its runs and prints ``status`` as its ExecCredential."""
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os, sys\n"
        f"runs = {str(tmp_path / 'runs')!r}\n"
        "open(runs, 'a').write(os.environ['KUBERNETES_EXEC_INFO'] + '\\n')\n"
        f"print(json.dumps({{'apiVersion': 'client.authentication.k8s.io/v1', 'status': {status!r}}}))\n"
        f"sys.stderr.write('plugin says no')\n"
        f"sys.exit({code})\n"
    )
    return ExecConfig(command=sys.executable, args=(str(script),), provide_cluster_info=True)


def _runs(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "runs"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_exec_token_is_cached_until_forced_and_wins_over_the_kubeconfig(tmp_path: Path) -> None:
    conn = Connection(SERVER, token="inline", exec_config=_plugin(tmp_path, {"token": "from-plugin"}))
    plugin = auth.ExecCredential(conn)
    assert auth.authorization(conn, plugin) == "Bearer from-plugin"
    assert auth.authorization(conn, plugin) == "Bearer from-plugin"
    assert len(_runs(tmp_path)) == 1  # no expirationTimestamp: good until the server says 401
    plugin.refresh(force=True)
    runs = _runs(tmp_path)
    assert len(runs) == 2
    assert runs[0]["spec"] == {"interactive": False, "cluster": {"server": SERVER}}


def test_an_expired_exec_credential_runs_the_plugin_again(tmp_path: Path) -> None:
    status = {"token": "t", "expirationTimestamp": "2000-01-01T00:00:00Z"}
    conn = Connection(SERVER, exec_config=_plugin(tmp_path, status))
    plugin = auth.ExecCredential(conn)
    auth.authorization(conn, plugin)
    auth.authorization(conn, plugin)
    assert len(_runs(tmp_path)) == 2


def test_an_exec_client_certificate_replaces_the_kubeconfigs(tmp_path: Path) -> None:
    status = {"clientCertificateData": "CERT", "clientKeyData": "KEY"}
    conn = Connection(SERVER, client_cert_pem="C", client_key_pem="K", exec_config=_plugin(tmp_path, status))
    assert auth.client_certificate(conn, auth.ExecCredential(conn)) == ("CERT", "KEY")
    assert auth.client_certificate(conn, None) == ("C", "K")


def test_a_failing_plugin_is_a_config_error_with_its_stderr(tmp_path: Path) -> None:
    conn = Connection(SERVER, exec_config=_plugin(tmp_path, {"token": "t"}, code=3))
    with pytest.raises(ConfigError, match="failed with exit code 3: plugin says no"):
        auth.ExecCredential(conn).refresh()


def test_a_plugin_that_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    conn = Connection(SERVER, exec_config=ExecConfig(command=str(tmp_path / "no-such-plugin")))
    with pytest.raises(ConfigError, match="could not run"):
        auth.ExecCredential(conn).refresh()


def test_key_files_are_private(tmp_path: Path) -> None:
    path = auth.KeyFiles().file("client.key", "secret")
    assert Path(path).read_text() == "secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_certificate_authority_that_is_not_pem_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match='certificate-authority of cluster "c" is not a PEM certificate'):
        auth.ssl_context(Connection(SERVER, cluster="c", ca_pem="not a certificate"), None, None)


def test_an_insecure_context_checks_nothing() -> None:
    import ssl

    ctx = auth.ssl_context(Connection(SERVER, insecure=True), None, None)
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname

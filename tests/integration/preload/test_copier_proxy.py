"""S3 reads through HTTPS_PROXY / HTTP_PROXY with NO_PROXY, by the Kubernetes client's rules
(:mod:`kaip.proxies`): the store is named ``s3.kaip.test``, a name only the proxy resolves, so a copy
that succeeds went through it. https goes through a CONNECT tunnel (to a TLS front of MinIO), plain
http in absolute form; where NO_PROXY covers the host the copy goes direct and large ranges are still
spliced into the file (a proxied plain-http body is spliced too)."""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.errors import StoreUnreachable
from kaip.storage import wire
from kaip.storage.source import parse_source
from kaip_testbed.pki import CertificateAuthority
from kaip_testbed.proxy import running_proxy

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

NAME = "s3.kaip.test"
MiB = 1024 * 1024


@pytest.fixture
def bucket(s3_server) -> tuple[str, dict[str, bytes]]:
    client = s3_server.client()
    name = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    objects = {"p/small": b"through the proxy", "p/large": os.urandom(3 * MiB)}
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name, {k[2:]: v for k, v in objects.items()}


@pytest.fixture
def tls_front(s3_server, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS endpoint for NAME on loopback that relays to MinIO; yields (port, CA file)."""
    ca = CertificateAuthority()
    crt, key = ca.issue(NAME, hosts=(NAME,), server=True).write(tmp_path, "front")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    upstream = urlsplit(s3_server.endpoint)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def relay(client: socket.socket) -> None:
        try:
            tls = context.wrap_socket(client, server_side=True)
            server = socket.create_connection((upstream.hostname, upstream.port))
        except OSError:
            client.close()
            return
        try:
            while not stop.is_set():
                ready, _, _ = select.select([tls, server], [], [], 1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (server if sock is tls else tls).sendall(data)
        except OSError:
            return
        finally:
            tls.close()
            server.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], ca_file
    stop.set()
    listener.close()


def options(s3_server, endpoint: str) -> CopyOptions:
    return CopyOptions(
        endpoint_url=endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        durable=False,
        multipart_threshold=MiB,
        part_size=MiB,
    )


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file() and not p.name.startswith(".")}


def test_https_reads_go_through_the_proxys_connect_tunnel(
    s3_server, bucket, tls_front, tmp_path: Path, monkeypatch
) -> None:
    name, expected = bucket
    port, ca_file = tls_front
    with running_proxy(password="pr0xy-pw", hosts={NAME: "127.0.0.1"}) as proxy:
        monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_file))
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:pr0xy-pw@127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setenv("NO_PROXY", "example.org")
        report = copy(
            parse_source(f"s3://{name}/p"),
            tmp_path / "a",
            options=options(s3_server, f"https://{NAME}:{port}"),
        )
        assert files(tmp_path / "a") == expected and report.objects_copied == 2
        assert proxy.requests and all(r.startswith(f"CONNECT {NAME}:{port} ") for r in proxy.requests)

        # A wrong password: the proxy's 407 is said at once, the password never.
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:wrong-pw@127.0.0.1:{proxy.server_address[1]}")
        with pytest.raises(StoreUnreachable) as caught:
            copy(
                parse_source(f"s3://{name}/p"),
                tmp_path / "b",
                options=options(s3_server, f"https://{NAME}:{port}"),
            )
        assert "407" in str(caught.value) and "wrong-pw" not in str(caught.value)
        assert not caught.value.temporary


def test_http_reads_go_through_the_proxy_and_no_proxy_goes_direct_with_splice(
    s3_server, bucket, tmp_path: Path, monkeypatch
) -> None:
    name, expected = bucket
    port = urlsplit(s3_server.endpoint).port
    spliced: list[int] = []
    real_splice = os.splice

    def counting_splice(*args: int, **kwargs: int) -> int:
        spliced.append(1)
        return real_splice(*args, **kwargs)

    monkeypatch.setattr(wire.os, "splice", counting_splice)
    with running_proxy(hosts={NAME: "127.0.0.1"}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        copy(
            parse_source(f"s3://{name}/p"),
            tmp_path / "a",
            options=options(s3_server, f"http://{NAME}:{port}"),
        )
        assert files(tmp_path / "a") == expected
        assert proxy.requests and all(
            r.split()[1].startswith(f"http://{NAME}:{port}/") for r in proxy.requests
        )

        # No proxy applies (a loopback address, as in Go; NO_PROXY's rules are unit-tested): the
        # proxy sees nothing and the ranges are spliced as before.
        proxy.requests.clear()
        spliced.clear()
        monkeypatch.setenv("NO_PROXY", "example.org")
        copy(parse_source(f"s3://{name}/p"), tmp_path / "b", options=options(s3_server, s3_server.endpoint))
        assert files(tmp_path / "b") == expected
        assert proxy.requests == [] and spliced

"""Real object stores on loopback: MinIO for S3 and fake-gcs-server for GCS."""

from __future__ import annotations

import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kaip_testbed import binaries
from kaip_testbed.processes import Server, free_port

MINIO_USER = "kaip-test-admin"
MINIO_PASSWORD = "kaip-test-secret-key"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    server: Server
    region: str = "us-east-1"

    def client(self) -> object:
        """A boto3 S3 client for this server, as a user of kaip would configure one."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=64,
            ),
        )

    def stop(self) -> None:
        self.server.stop()


@dataclass
class GCSServer:
    endpoint: str
    server: Server
    project: str = "kaip-test"

    def client(self) -> object:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            project=self.project,
            client_options={"api_endpoint": self.endpoint},
        )

    def stop(self) -> None:
        self.server.stop()


def start_minio(workdir: Path | None = None) -> S3Server:
    root = workdir or Path(tempfile.mkdtemp(prefix="kaip-minio-"))
    port, console = free_port(), free_port()
    env = {
        "MINIO_ROOT_USER": MINIO_USER,
        "MINIO_ROOT_PASSWORD": MINIO_PASSWORD,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "HOME": str(root),
        "PATH": "/usr/bin:/bin",
    }
    server = Server(
        "minio",
        [
            binaries.path_of("minio"),
            "server",
            "--quiet",
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console}",
            str(root / "data"),
        ],
        log_dir=root,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    server.wait_ready(lambda: _ok(f"{endpoint}/minio/health/ready"), timeout=60)
    return S3Server(endpoint=endpoint, access_key=MINIO_USER, secret_key=MINIO_PASSWORD, server=server)


def start_fake_gcs(workdir: Path | None = None) -> GCSServer:
    root = workdir or Path(tempfile.mkdtemp(prefix="kaip-gcs-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = Server(
        "fake-gcs-server",
        [
            binaries.path_of("fake-gcs-server"),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(root / "data"),
            "-public-host",
            f"127.0.0.1:{port}",
            "-external-url",
            endpoint,
            "-log-level",
            "warn",
        ],
        log_dir=root,
    )
    server.wait_ready(lambda: _ok(f"{endpoint}/storage/v1/b"), timeout=60)
    return GCSServer(endpoint=endpoint, server=server)


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)

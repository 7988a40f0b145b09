"""Uploading one local file to ``s3://bucket/key`` or ``gs://bucket/name`` (staging a training
package, as ``gcloud ai-platform jobs submit training --staging-bucket`` does).

One small object per job: boto3 and google-cloud-storage do it with their own retries, so there is
no reason to go through the download engine. Credentials and endpoints come from the standard
environment (AWS_* with AWS_ENDPOINT_URL for S3-compatible stores; GOOGLE_APPLICATION_CREDENTIALS and
STORAGE_EMULATOR_HOST for GCS), as the SDKs read them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kaip.errors import UsageError, needs_extra, shorten
from kaip.storage.errors import AccessDenied, SourceNotFound, StoreUnreachable, TransferFailed


def split_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of an ``s3://`` or ``gs://`` object URI."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or scheme not in ("s3", "gs") or not bucket or not key or key.endswith("/"):
        raise UsageError(f'"{uri}" is not an object URI: use s3://BUCKET/KEY or gs://BUCKET/NAME')
    return scheme, bucket, key


def upload_file(local: Path, uri: str) -> None:
    """Upload ``local`` to ``uri``, replacing what is there."""
    scheme, bucket, key = split_uri(uri)
    if scheme == "s3":
        _upload_s3(local, bucket, key, uri)
    else:
        _upload_gcs(local, bucket, key, uri)


def _upload_s3(local: Path, bucket: str, key: str, uri: str) -> None:
    with needs_extra("s3", purpose=f"uploading to {uri}"):
        import boto3
        from botocore.config import Config
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        # S3-compatible stores (MinIO, StorageGRID) want path-style and no default checksum trailers.
        s3={"addressing_style": "path" if endpoint else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: Any = boto3.client("s3", endpoint_url=endpoint, config=config)
    try:
        client.upload_file(str(local), bucket, key)
    except NoCredentialsError as exc:
        raise AccessDenied(
            f"uploading to {uri}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ) from exc
    except EndpointConnectionError as exc:
        raise StoreUnreachable(f"uploading to {uri}: cannot reach {endpoint or 'S3'}") from exc
    except ClientError as exc:
        raise _s3_error(exc, uri) from exc
    except BotoCoreError as exc:
        raise TransferFailed(f"uploading to {uri} failed: {shorten(str(exc), 200)}") from exc
    except Exception as exc:
        # s3transfer wraps a ClientError in its own S3UploadFailedError.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            raise _s3_error(cause, uri) from exc
        if "NoSuchBucket" in str(exc):
            raise SourceNotFound(f"uploading to {uri}: bucket {bucket} does not exist") from exc
        if (
            "AccessDenied" in str(exc)
            or "InvalidAccessKeyId" in str(exc)
            or "SignatureDoesNotMatch" in str(exc)
        ):
            raise AccessDenied(f"uploading to {uri}: the store refused the credentials") from exc
        raise TransferFailed(f"uploading to {uri} failed: {shorten(str(exc), 200)}") from exc


def _s3_error(exc: Any, uri: str) -> Exception:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code == "NoSuchBucket":
        return SourceNotFound(f"uploading to {uri}: the bucket does not exist")
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return AccessDenied(f"uploading to {uri}: the store refused the credentials ({code})")
    return TransferFailed(f"uploading to {uri} failed ({code or 'error'})")


def _upload_gcs(local: Path, bucket: str, key: str, uri: str) -> None:
    with needs_extra("gcs", purpose=f"uploading to {uri}"):
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage

    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
            client = storage.Client(
                credentials=anonymous, project=os.environ.get("GOOGLE_CLOUD_PROJECT", "kaip")
            )
        else:
            client = storage.Client()
        client.bucket(bucket).blob(key).upload_from_filename(str(local))
    except DefaultCredentialsError as exc:
        raise AccessDenied(
            f"uploading to {uri}: no Google credentials (set GOOGLE_APPLICATION_CREDENTIALS)"
        ) from exc
    except gexc.NotFound as exc:
        raise SourceNotFound(f"uploading to {uri}: bucket {bucket} does not exist") from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise AccessDenied(f"uploading to {uri}: the store refused the credentials") from exc
    except gexc.GoogleAPIError as exc:
        raise TransferFailed(f"uploading to {uri} failed: {shorten(str(exc), 200)}") from exc

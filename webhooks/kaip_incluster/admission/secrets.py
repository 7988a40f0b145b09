"""Validation rules of kaip credentials Secrets (``kaip.dev/aws-credentials``, ``kaip.dev/gcp-credentials``).

Structural checks only: keys present and non-empty, characters, URL and JSON/PEM shapes. No network
and no full RSA validation on the request path. What would certainly fail is denied; what is merely
unusual (keys not shaped like AWS ones, as MinIO's are not) is admitted with a warning. Every message
names a key and a rule, never a value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kaip.resources import credentials as cr
from kaip_incluster.admission import gcpkey
from kaip_incluster.admission.review import Verdict

_AWS_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$")
_ID_CHARS = re.compile(r"^[A-Za-z0-9_]+$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_AWS_SECRET_LENGTH = 40
_ID_MAX = 128
_UTF8_BOM = b"\xef\xbb\xbf"
#: Spellings users try for the keys we expect (case-insensitive match, the environment names).
_ALIASES = {
    "aws_access_key_id": cr.AWS_ACCESS_KEY_ID,
    "accesskey": cr.AWS_ACCESS_KEY_ID,
    "access_key": cr.AWS_ACCESS_KEY_ID,
    "aws_secret_access_key": cr.AWS_SECRET_ACCESS_KEY,
    "aws_secret_key": cr.AWS_SECRET_ACCESS_KEY,
    "secretkey": cr.AWS_SECRET_ACCESS_KEY,
    "secret_key": cr.AWS_SECRET_ACCESS_KEY,
    "aws_session_token": cr.AWS_SESSION_TOKEN,
    "aws_region": cr.AWS_REGION,
    "aws_default_region": cr.AWS_REGION,
    "aws_endpoint_url": cr.AWS_ENDPOINT_URL,
    "endpoint": cr.AWS_ENDPOINT_URL,
    "s3_endpoint": cr.AWS_ENDPOINT_URL,
    "key": cr.GCP_KEY_FILE,
    "credentials.json": cr.GCP_KEY_FILE,
    "service-account.json": cr.GCP_KEY_FILE,
    "key_json": cr.GCP_KEY_FILE,
}


@dataclass
class Findings:
    """Problems (deny) and warnings (admit) of one Secret."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def secret_values(secret: Mapping[str, Any], findings: Findings) -> dict[str, bytes]:
    """The Secret's values by key: ``data`` (base64) overlaid by ``stringData``, as the apiserver does."""
    values: dict[str, bytes] = {}
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        findings.problems.append("data must be a map of keys to base64 values")
        data = {}
    for key, encoded in data.items():
        if not isinstance(encoded, str):
            findings.problems.append(f'key "{key}": the value must be a base64 string')
            continue
        try:
            values[str(key)] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            findings.problems.append(f'key "{key}": the value is not valid base64')
    string_data = secret.get("stringData") or {}
    if not isinstance(string_data, dict):
        findings.problems.append("stringData must be a map of keys to strings")
        string_data = {}
    for key, text in string_data.items():
        if isinstance(text, str):
            values[str(key)] = text.encode()
        else:
            findings.problems.append(f'key "{key}" in stringData: the value must be a string')
    return values


def key_names(secret: Mapping[str, Any]) -> list[str]:
    """The keys of a Secret (never its values), for logs and caches."""
    names: set[str] = set()
    for section in ("data", "stringData"):
        part = secret.get(section)
        if isinstance(part, dict):
            names.update(str(k) for k in part)
    return sorted(names)


def _printable_problem(key: str, raw: bytes) -> str | None:
    if raw.startswith(_UTF8_BOM):
        return f'key "{key}": starts with a UTF-8 byte order mark (BOM); save the value without it'
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return f'key "{key}": must be ASCII text (it holds non-ASCII bytes)'
    if any(c.isspace() for c in text):
        where = "ends with a line break" if text.endswith("\n") else "contains whitespace"
        hint = " (written with `echo` without -n?)" if text.endswith("\n") else ""
        return f'key "{key}": {where}{hint}; remove it'
    if not text.isprintable():
        return f'key "{key}": contains non-printable characters'
    return None


def _unknown_keys(values: Mapping[str, bytes], known: tuple[str, ...], findings: Findings) -> None:
    for key in sorted(values):
        if key in known:
            continue
        expected = _ALIASES.get(key.lower())
        if expected and expected in known:
            findings.warnings.append(f'key "{key}" is not used; did you mean "{expected}"?')
        else:
            findings.warnings.append(f'key "{key}" is not used (expected keys: {", ".join(known)})')


def _endpoint(raw: bytes, findings: Findings) -> None:
    try:
        parts = urlsplit(raw.decode("ascii"))
        host = parts.hostname
    except ValueError:  # an unbalanced [ of an IPv6 address, and the like
        host = None
    if not host or parts.scheme not in ("http", "https"):
        findings.problems.append(
            f'key "{cr.AWS_ENDPOINT_URL}": must be an http(s) URL such as https://host:9000'
        )
        return
    if parts.username or parts.password:
        findings.problems.append(f'key "{cr.AWS_ENDPOINT_URL}": must not hold a user or password')
        return
    try:
        _ = parts.port
    except ValueError:
        findings.problems.append(f'key "{cr.AWS_ENDPOINT_URL}": the port is not a number from 1 to 65535')
        return
    if parts.scheme == "http":
        findings.warnings.append(f'key "{cr.AWS_ENDPOINT_URL}": http:// sends requests unencrypted')


def check_aws(values: Mapping[str, bytes], findings: Findings) -> None:
    """Rules of a ``kaip.dev/aws-credentials`` Secret."""
    for key in cr.AWS_REQUIRED_KEYS:
        if key not in values:
            findings.problems.append(f'key "{key}" is missing')
        elif not values[key]:
            findings.problems.append(f'key "{key}" is empty')
    clean: dict[str, str] = {}
    for key in cr.AWS_KEYS:
        if key not in values or not values[key]:
            if key in cr.AWS_OPTIONAL_KEYS and key in values:
                findings.problems.append(f'key "{key}" is empty; remove it or give it a value')
            continue
        problem = _printable_problem(key, values[key])
        if problem:
            findings.problems.append(problem)
        else:
            clean[key] = values[key].decode("ascii")
    key_id = clean.get(cr.AWS_ACCESS_KEY_ID, "")
    on_prem = cr.AWS_ENDPOINT_URL in values
    if key_id:
        if len(key_id) > _ID_MAX:
            findings.problems.append(f'key "{cr.AWS_ACCESS_KEY_ID}": longer than {_ID_MAX} characters')
        elif key_id.startswith("ASIA") and _AWS_ID.match(key_id) and cr.AWS_SESSION_TOKEN not in clean:
            findings.problems.append(
                f'key "{cr.AWS_SESSION_TOKEN}" is missing: temporary access key ids (ASIA…) need a session token'
            )
        elif not on_prem and not _AWS_ID.match(key_id):
            findings.warnings.append(
                f'key "{cr.AWS_ACCESS_KEY_ID}" does not look like an AWS key id (AKIA/ASIA + 16); '
                f'S3-compatible stores also need "{cr.AWS_ENDPOINT_URL}"'
            )
        elif on_prem and not _ID_CHARS.match(key_id):
            findings.warnings.append(
                f'key "{cr.AWS_ACCESS_KEY_ID}": has characters other than letters, digits and _'
            )
    secret = clean.get(cr.AWS_SECRET_ACCESS_KEY, "")
    if secret and not on_prem and len(secret) != _AWS_SECRET_LENGTH:
        findings.warnings.append(f'key "{cr.AWS_SECRET_ACCESS_KEY}": AWS secret keys are 40 characters long')
    if cr.AWS_SESSION_TOKEN in clean:
        findings.warnings.append(
            f'key "{cr.AWS_SESSION_TOKEN}": session credentials expire; rotate this Secret'
        )
    if cr.AWS_ENDPOINT_URL in clean:
        _endpoint(values[cr.AWS_ENDPOINT_URL], findings)
    region = clean.get(cr.AWS_REGION, "")
    if region and not on_prem and not _AWS_REGION.match(region):
        findings.warnings.append(f'key "{cr.AWS_REGION}" does not look like an AWS region (e.g. us-east-1)')
    _unknown_keys(values, cr.AWS_KEYS, findings)


def check_gcp(values: Mapping[str, bytes], findings: Findings) -> None:
    """Rules of a ``kaip.dev/gcp-credentials`` Secret."""
    raw = values.get(cr.GCP_KEY_FILE)
    if raw is None:
        findings.problems.append(f'key "{cr.GCP_KEY_FILE}" is missing')
    elif not raw.strip():
        findings.problems.append(f'key "{cr.GCP_KEY_FILE}" is empty')
    else:
        gcpkey.check_key_file(raw, findings.problems, findings.warnings)
    _unknown_keys(values, cr.GCP_KEYS, findings)


def validate_secret(secret: Mapping[str, Any]) -> Verdict:
    """Admit or deny a Secret; other Secret types are admitted untouched."""
    kind = secret.get("type")
    if kind not in cr.TYPES:
        return Verdict()
    findings = Findings()
    values = secret_values(secret, findings)
    if kind == cr.AWS_TYPE:
        check_aws(values, findings)
    else:
        check_gcp(values, findings)
    prefix = f"Secret of type {kind}"
    warnings = [f"{prefix}: {w}" for w in findings.warnings]
    if findings.problems:
        return Verdict(
            allowed=False, code=422, message=f"{prefix}: " + "; ".join(findings.problems), warnings=warnings
        )
    return Verdict(warnings=warnings)

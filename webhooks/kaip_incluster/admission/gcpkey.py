"""Rules of a GCP credentials file (``key.json``): a service-account key or an external-account file.

Structural only: JSON shape, required fields, the private key parsed as PEM without the costly RSA
consistency check (28 ms per key; 0.01 ms without). Messages name fields, never their values.
Every field a key file may hold is first checked for its JSON type (:data:`FIELD_TYPES`,
:data:`NESTED_TYPES`), so that the rules after it see only values of the type they expect and a
wrong type is denied by name, never met by an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

FILE = '"key.json"'
SERVICE_ACCOUNT = "service_account"
EXTERNAL_ACCOUNT = "external_account"
SUPPORTED = (SERVICE_ACCOUNT, EXTERNAL_ACCOUNT)
#: Types Application Default Credentials knows but a workload should not carry.
UNSUPPORTED = {
    "authorized_user": "it holds a person's login; create a service-account key instead",
    "external_account_authorized_user": "it holds a person's login; create a service-account key instead",
    "impersonated_service_account": "impersonation needs a source credential the Pod does not have",
    "gdch_service_account": "it is for Google Distributed Cloud Hosted only",
}
SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")
EXTERNAL_ACCOUNT_FIELDS = ("audience", "subject_token_type", "token_url", "credential_source")
#: The JSON type of every field a key file of either type may hold (Google's libraries read them so).
FIELD_TYPES: dict[str, type] = {
    **dict.fromkeys(
        (
            "type",
            "project_id",
            "private_key_id",
            "private_key",
            "client_email",
            "client_id",
            "client_secret",
            "auth_uri",
            "token_uri",
            "auth_provider_x509_cert_url",
            "client_x509_cert_url",
            "universe_domain",
            "quota_project_id",
            "audience",
            "subject_token_type",
            "token_url",
            "token_info_url",
            "service_account_impersonation_url",
            "workforce_pool_user_project",
        ),
        str,
    ),
    "credential_source": dict,
    "service_account_impersonation": dict,
}
#: The same for the fields of the nested objects, by their dotted path.
NESTED_TYPES: dict[str, dict[str, type]] = {
    "credential_source": {
        **dict.fromkeys(
            (
                "url",
                "file",
                "environment_id",
                "region_url",
                "regional_cred_verification_url",
                "imdsv2_session_token_url",
            ),
            str,
        ),
        "headers": dict,
        "format": dict,
        "executable": dict,
        "certificate": dict,
    },
    "credential_source.format": {"type": str, "subject_token_field_name": str},
    "service_account_impersonation": {"token_lifetime_seconds": int},
}
_JSON_NAMES = {str: "a string", dict: "an object", int: "an integer"}
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_MIN_RSA_BITS = 2048
_PEM_BEGIN = "-----BEGIN PRIVATE KEY-----"
_PEM_BEGIN_RSA = "-----BEGIN RSA PRIVATE KEY-----"


def _https(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme == "https" and bool(parts.hostname)
    except ValueError:  # an unbalanced [ of an IPv6 address, and the like
        return False


def _private_key(value: str, problems: list[str], warnings: list[str]) -> None:
    text = value.strip()
    if "ENCRYPTED PRIVATE KEY" in text:
        problems.append(f"{FILE}: private_key is encrypted; Google's libraries need an unencrypted key")
        return
    if not text.startswith((_PEM_BEGIN, _PEM_BEGIN_RSA)):
        problems.append(f"{FILE}: private_key is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
        return
    try:
        key = load_pem_private_key(text.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except Exception:  # any parser failure (ValueError, TypeError, unsupported) means the same to the user
        problems.append(f"{FILE}: private_key is not a readable PEM private key")
        return
    if not isinstance(key, rsa.RSAPrivateKey):
        problems.append(f"{FILE}: private_key is not an RSA key, as service-account keys are")
    elif key.key_size < _MIN_RSA_BITS:
        warnings.append(f"{FILE}: private_key has {key.key_size} bits; Google issues 2048-bit keys")


def _service_account(
    doc: Mapping[str, Any], problems: list[str], warnings: list[str], *, dropped: set[str]
) -> None:
    """Rules of a service-account key; ``doc`` holds only fields of the right JSON type."""
    for name in SERVICE_ACCOUNT_FIELDS:
        if name in dropped:
            continue
        if name not in doc:
            problems.append(f"{FILE}: field {name} is missing")
        elif not doc[name].strip():
            problems.append(f"{FILE}: field {name} is empty")
    email = doc.get("client_email", "")
    if email.strip():
        if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
            problems.append(f"{FILE}: client_email is not an email address")
        elif not email.endswith(".gserviceaccount.com"):
            warnings.append(f"{FILE}: client_email is not a *.gserviceaccount.com service account")
    token_uri = doc.get("token_uri", "")
    if token_uri.strip() and not _https(token_uri):
        problems.append(f"{FILE}: token_uri must be an https:// URL")
    key = doc.get("private_key", "")
    if key.strip():
        _private_key(key, problems, warnings)
    for name in ("project_id", "private_key_id"):
        if not doc.get(name) and name not in dropped:
            warnings.append(f"{FILE}: field {name} is missing (files Google issues have it)")
    universe = doc.get("universe_domain")
    if universe is not None and universe != "googleapis.com":
        warnings.append(f"{FILE}: universe_domain is not googleapis.com")


def _external_account(
    doc: Mapping[str, Any], problems: list[str], warnings: list[str], *, dropped: set[str]
) -> None:
    """Rules of an external-account file; ``doc`` holds only fields of the right JSON type."""
    for name in EXTERNAL_ACCOUNT_FIELDS:
        if name not in dropped and not doc.get(name):
            problems.append(f"{FILE}: field {name} is missing")
    token_url = doc.get("token_url", "")
    if token_url and not _https(token_url):
        problems.append(f"{FILE}: token_url must be an https:// URL")
    impersonation = doc.get("service_account_impersonation_url")
    if impersonation is not None and not _https(impersonation):
        problems.append(f"{FILE}: service_account_impersonation_url must be an https:// URL")
    source: Mapping[str, Any] = doc.get("credential_source") or {}
    if "file" in source:
        problems.append(
            f"{FILE}: credential_source points at a local file, which the Pod does not have; "
            "use a url source or a service-account key"
        )
    if "executable" in source:
        problems.append(f"{FILE}: credential_source runs an executable; kaip does not allow that")
    url = source.get("url")
    if (
        source
        and url is None
        and not {"file", "executable"} & set(source)
        and "credential_source.url" not in dropped
    ):
        problems.append(f"{FILE}: credential_source has neither url nor file")
    if url is not None and not url.startswith(("http://", "https://")):
        problems.append(f"{FILE}: credential_source.url must be an http(s) URL")
    warnings.append(f"{FILE}: external_account files need a token source reachable from the Pod")


def json_type(value: Any) -> str:
    """How JSON names the type of a parsed value (for messages: the type, never the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _fits(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _typed(
    doc: Mapping[str, Any], path: str, types: Mapping[str, type], problems: list[str], dropped: set[str]
) -> dict[str, Any]:
    """``doc`` without its fields of a wrong JSON type: each is named in ``problems`` with the type
    expected, and its dotted path added to ``dropped`` (the later rules do not call it missing)."""
    kept: dict[str, Any] = {}
    for name, value in doc.items():
        where = f"{path}.{name}" if path else name
        expected = types.get(name)
        if expected is not None and not _fits(value, expected):
            problems.append(f"{FILE}: field {where} must be {_JSON_NAMES[expected]}, not {json_type(value)}")
            dropped.add(where)
            continue
        nested = where in NESTED_TYPES and isinstance(value, dict)
        kept[name] = _typed(value, where, NESTED_TYPES[where], problems, dropped) if nested else value
    headers = kept.get("headers") if path == "credential_source" else None
    if isinstance(headers, dict) and not all(isinstance(v, str) for v in headers.values()):
        problems.append(f"{FILE}: field credential_source.headers must map header names to strings")
        dropped.add("credential_source.headers")
        del kept["headers"]
    return kept


def _decode(raw: bytes, problems: list[str]) -> str | None:
    if raw.startswith(_UTF16_BOMS):
        problems.append(f"{FILE} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8")
        return None
    if raw.startswith(_UTF8_BOM):
        # Editors on Windows add it; json.loads refuses it. The rest is still checked.
        problems.append(
            f"{FILE} starts with a UTF-8 byte order mark (BOM), which JSON does not allow; save the file as UTF-8 without BOM"
        )
        raw = raw[len(_UTF8_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{FILE} is not UTF-8 text")
        return None


_UNREADABLE = object()


def _parse(text: str, problems: list[str]) -> Any:
    """The parsed document, or :data:`_UNREADABLE` with the reason in ``problems``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Only the position: the parser's message could quote the text around the error.
        problems.append(f"{FILE} is not JSON (error at line {exc.lineno}, column {exc.colno})")
    except RecursionError:
        problems.append(f"{FILE} is nested too deeply to be a key file")
    except ValueError:  # an integer of more digits than Python converts
        problems.append(f"{FILE} holds a number too long to read (a key file has none)")
    return _UNREADABLE


def check_key_file(raw: bytes, problems: list[str], warnings: list[str]) -> None:
    """Append what is wrong (problems) or unusual (warnings) about a key file."""
    text = _decode(raw, problems)
    if text is None:
        return
    parsed = _parse(text, problems)
    if parsed is _UNREADABLE:
        return
    if not isinstance(parsed, dict):
        problems.append(
            f"{FILE} must be a JSON object, as a key file downloaded from Google is (it is {json_type(parsed)})"
        )
        return
    dropped: set[str] = set()
    doc = _typed(parsed, "", FIELD_TYPES, problems, dropped)
    if "type" in dropped:
        return  # which rules apply is unknown; the type's problem is named above
    kind = doc.get("type")
    if kind is None:
        problems.append(f"{FILE}: field type is missing (expected {SERVICE_ACCOUNT})")
    elif kind in UNSUPPORTED:
        problems.append(f'{FILE}: type "{kind}" is not supported: {UNSUPPORTED[kind]}')
    elif kind not in SUPPORTED:
        problems.append(f"{FILE}: type is not supported (expected {SERVICE_ACCOUNT} or {EXTERNAL_ACCOUNT})")
    elif kind == SERVICE_ACCOUNT:
        _service_account(doc, problems, warnings, dropped=dropped)
    else:
        _external_account(doc, problems, warnings, dropped=dropped)

"""Which HTTP proxy a request takes, read from the environment as Go (and so kubectl) reads it. Pure.

One resolver for every HTTP client of the suite: the Kubernetes client (:mod:`kaip.kube.config`, when
the kubeconfig names no ``proxy-url``) and the object stores (:mod:`kaip.storage.s3` over
:mod:`kaip.storage.wire`, :mod:`kaip.storage.gcs`). The rules are Go's ``ProxyFromEnvironment``:
``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http ones (the upper-case name first, then the
lower-case one), never for ``localhost`` or a loopback address, and not for a host ``NO_PROXY``
covers (``*``; an IP or CIDR; a name for itself and its subdomains; ``.name`` or ``*.name`` for
subdomains only; any of them with ``:port``). A proxy URL without a scheme is ``http://``.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Proxy:
    """An ``http://`` proxy: where to connect and, when its URL had a user, the header that proves it."""

    host: str
    port: int
    #: ``Basic ...`` for ``Proxy-Authorization``; never shown (repr hides it).
    authorization: str | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def proxy_from_environment(url: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The proxy Go's ``ProxyFromEnvironment`` takes for ``url``: ``(variable, proxy URL)`` from
    HTTPS_PROXY (https) or HTTP_PROXY (http), or None when NO_PROXY covers the host, for localhost
    and loopback addresses, and when neither is set."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or host == "localhost" or _loopback(host):
        return None
    name, proxy_url = _env(environ, "HTTPS_PROXY" if parts.scheme == "https" else "HTTP_PROXY")
    if not proxy_url:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443 if parts.scheme == "https" else 80
    _, no_proxy = _env(environ, "NO_PROXY")
    if any(_bypassed(entry.strip().lower(), host, port) for entry in no_proxy.split(",") if entry.strip()):
        return None
    return name, proxy_url if "://" in proxy_url else f"http://{proxy_url}"


def parse_proxy(proxy_url: str, *, source: str) -> Proxy:
    """The proxy at ``proxy_url``; ValueError names ``source`` (the variable or field it came from)
    and the fix, never the URL itself, which may hold a password."""
    parts = urlsplit(proxy_url)
    if parts.scheme != "http":
        raise ValueError(
            f'{source}: a proxy of scheme "{parts.scheme}" is not supported: give an http:// proxy '
            "(https is tunnelled through it with CONNECT)"
        )
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if not parts.hostname or not port:
        raise ValueError(f"{source}: the proxy URL has no usable host and port: give http://HOST:PORT")
    authorization = None
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(user_pass.encode()).decode()
    return Proxy(parts.hostname, port, authorization)


def proxy_for(url: str, environ: Mapping[str, str]) -> Proxy | None:
    """:func:`proxy_from_environment` parsed: the proxy to use for ``url``, or None to go direct."""
    found = proxy_from_environment(url, environ)
    return None if found is None else parse_proxy(found[1], source=found[0])


def _env(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    for key in (name, name.lower()):
        if environ.get(key):
            return key, environ[key]
    return name, ""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(entry: str, host: str, port: int) -> bool:
    """NO_PROXY's rules as Go reads them: ``*``; an IP or CIDR; a name for itself and its subdomains;
    ``.name`` or ``*.name`` for subdomains only; any of them with ``:port``."""
    if entry == "*":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if "/" in entry:
        try:
            return address is not None and address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    name, want_port = entry, None
    if entry.startswith("["):  # [v6]:port
        name, _, rest = entry[1:].partition("]")
        want_port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        name, want_port = entry.split(":")
    if want_port and want_port != str(port):
        return False
    if address is not None:
        try:
            return address == ipaddress.ip_address(name)
        except ValueError:
            return False
    if name.startswith("*."):
        name = name[1:]
    if name.startswith("."):
        return host.endswith(name)
    return host == name or host.endswith("." + name)

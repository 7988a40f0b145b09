"""The server's SSL context (TLS >= 1.2) and its reload in place when the certificate files change.

The context object stays the same; loading a new chain into it changes what new handshakes present,
while open connections finish with the old one. A change is noticed by the files' content (mounted
Secrets are updated by swapping a symlink), checked every few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from kaip.errors import ConfigError

log = logging.getLogger("kaip.webhook.tls")


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()


class ReloadingContext:
    """An ``SSLContext`` for serving whose certificate follows two files."""

    def __init__(
        self, cert_file: str, key_file: str, *, on_load: Callable[[bytes], None] | None = None
    ) -> None:
        self.cert_path, self.key_path = Path(cert_file), Path(key_file)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.options |= ssl.OP_NO_COMPRESSION
        self._on_load = on_load
        self._digest = ""
        self.reloads = 0
        if not self.reload():
            raise ConfigError(f"the serving certificate {cert_file} or its key {key_file} cannot be loaded")

    def reload(self) -> bool:
        """Load the files if they changed; return whether a valid chain is in place."""
        try:
            digest = _digest(self.cert_path, self.key_path)
        except OSError as exc:
            log.warning("certificate files cannot be read (%s); keeping the loaded ones", exc.strerror)
            return bool(self._digest)
        if digest == self._digest:
            return True
        try:
            self.context.load_cert_chain(str(self.cert_path), str(self.key_path))
        except (ssl.SSLError, OSError) as exc:
            # Half-written during a rotation, or a key that does not match: keep serving the old pair.
            log.warning("certificate files do not load (%s); keeping the loaded ones", type(exc).__name__)
            return bool(self._digest)
        first = not self._digest
        self._digest = digest
        if not first:
            self.reloads += 1
            log.info("serving certificate reloaded from %s", self.cert_path)
        if self._on_load is not None:
            self._on_load(self.cert_path.read_bytes())
        return True

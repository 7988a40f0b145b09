"""PostgreSQL for the test bed: a throwaway server behind Katib's DB manager.

Debian's ``postgresql`` package provides the programs (hack/testbin.sh installs it when run as root);
each test session makes its own cluster with ``initdb`` in a temporary folder and serves it on a free
port of 127.0.0.1, with ``trust`` authentication and ``fsync`` off (nothing here must outlive the run).
``initdb`` and ``postgres`` refuse to run as root, so as root they run as the ``postgres`` user
(``runuser``), in a folder that user owns. :meth:`Postgres.stop` stops the server and removes the folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kaip_testbed.processes import Server, free_port

OS_USER = "postgres"
HOST = "127.0.0.1"


class PostgresMissing(RuntimeError):
    pass


def bin_dir() -> Path:
    """The folder with ``initdb``, ``postgres`` and ``createdb``: the one of the ``initdb`` on PATH
    (links followed: a link to Debian's initdb alone may be there), else Debian's newest."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresMissing(
            "PostgreSQL is not installed (Katib's DB manager needs it): run hack/testbin.sh as root, "
            "or apt-get install -y postgresql"
        )
    return Path(found[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def _accepts(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


@dataclass
class Postgres:
    """One PostgreSQL server with a database and a superuser both named ``name``."""

    name: str = "katib"
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kaip-postgres-")))
    server: Server | None = None

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()  # a half-started server and its folder go
            raise

    def _start(self) -> None:
        programs = bin_dir()
        data, sockets = self.folder / "data", self.folder / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, OS_USER)
            shutil.chown(sockets, OS_USER)
        subprocess.run(
            _as_owner(
                [str(programs / "initdb"), "-D", str(data), "-U", self.name, "--auth=trust", "--no-sync"]
            ),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )
        argv = [
            str(programs / "postgres"), "-D", str(data), "-h", HOST, "-p", str(self.port),
            "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        self.server = Server(
            f"postgres-{self.port}",
            _as_owner(argv),
            log_dir=self.folder,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        self.server.wait_ready(lambda: _accepts(self.port), timeout=60)
        created = subprocess.run(
            [str(programs / "createdb"), "-h", HOST, "-p", str(self.port), "-U", self.name, self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"createdb {self.name}: {created.stderr}\n{self.server.log_tail()}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.folder, ignore_errors=True)

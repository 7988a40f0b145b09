"""``kaip-webhook``: the admission webhook process.

Start-up: read the flags, connect to the API server (in-cluster service account unless
``--kubeconfig``), get a serving certificate (files, or the self-managed CA), start the watch caches,
serve HTTPS. Background tasks reload the certificate when its files change, renew a self-issued one,
and keep the webhook configurations' caBundle. SIGTERM stops serving gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from kaip.errors import KaipError
from kaip.kube import connect
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget
from kaip_incluster.server import cache, certs, config
from kaip_incluster.server.cabundle import SelfManagedCA
from kaip_incluster.server.handlers import State, build_app
from kaip_incluster.server.metrics import Metrics
from kaip_incluster.server.tls import ReloadingContext

log = logging.getLogger("kaip.webhook")


async def _every(seconds: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    while True:
        try:
            await step()
        except KaipError as exc:
            log.warning("%s failed: %s", what, exc.message)
        await asyncio.sleep(seconds)


async def _tls_step(tls: ReloadingContext, ca: SelfManagedCA | None, state: State) -> None:
    """Renew a self-issued certificate (API calls: in a worker thread), then load changed files into
    the serving context on the event loop's own thread, never while that thread starts a handshake
    from the same context (OpenSSL does not allow changing a context while another thread uses it)."""
    if ca is not None:
        await asyncio.get_running_loop().run_in_executor(None, ca.ensure_serving)
    before = tls.reloads
    tls.reload()
    if tls.reloads > before:
        state.metrics.cert_reloads.inc(tls.reloads - before)


async def _serve(
    settings: config.Settings, state: State, tls: ReloadingContext, ca: SelfManagedCA | None
) -> None:
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls.context, backlog=1024)
    await site.start()
    log.info("serving HTTPS on %s:%d", settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(_every(settings.reload_interval, lambda: _tls_step(tls, ca, state), "TLS"))]
    if ca is not None:
        configurations = settings.configurations
        bundles = lambda: loop.run_in_executor(None, ca.sync_bundles, configurations)  # noqa: E731
        tasks.append(asyncio.create_task(_every(settings.cabundle_interval, bundles, "caBundle")))
    await stop.wait()
    log.info("stopping")
    state.tls_loaded = False  # readiness drops first, so the Service stops sending new reviews
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await runner.cleanup()


def _start(settings: config.Settings) -> tuple[State, ReloadingContext, SelfManagedCA | None, Kube]:
    kube = connect(ClusterTarget(kubeconfig=settings.kubeconfig, request_timeout=10))
    state = State(metrics=Metrics())
    cert_file, key_file = settings.cert_file, settings.key_file
    ca: SelfManagedCA | None = None
    if settings.self_managed_ca:
        ca = SelfManagedCA(kube, settings)
        ca.load_or_create_ca()
        ca.ensure_serving()
        cert_file, key_file = str(ca.cert_path), str(ca.key_path)

    def loaded(pem: bytes) -> None:
        state.metrics.cert_expiry.set(certs.not_after(pem).timestamp())

    tls = ReloadingContext(cert_file, key_file, on_load=loaded)
    state.tls_loaded = True
    state.secrets = cache.secrets_cache(kube)
    state.service_accounts = cache.service_accounts_cache(kube)
    state.claims = cache.claims_cache(kube)
    state.secrets.start()
    state.service_accounts.start()
    state.claims.start()
    return state, tls, ca, kube


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop where it is installed (the image has it: about a third less CPU per
    review than asyncio's own loop), else on asyncio's. Objects made during start-up are moved out
    of the garbage collector's sight, so its passes under load stay short."""
    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: Sequence[str]) -> int:
    try:
        settings = config.parse(argv)
    except KaipError as exc:
        logging.basicConfig(format="%(message)s")
        log.error("%s", exc.message)
        return int(exc.exit_code)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        state, tls, ca, _ = _start(settings)
        _run(_serve(settings, state, tls, ca))
    except KaipError as exc:
        log.error("%s", exc.message)
        return int(exc.exit_code)
    return 0

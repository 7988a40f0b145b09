"""``kaip-alerts``: the Alertmanager webhook receiver's HTTP server (aiohttp).

Routes: ``POST /alerts`` (Alertmanager's webhook_config url), ``GET /healthz``, ``GET /metrics``
(``kaip_alerts_notifications_total{result}``: opened, commented, reopened, closed, unchanged, nothing,
bad_payload, github_failed). Notifications are applied one at a time (the GitHub calls run on a worker
thread), so two notifications of one group never race to open two issues. A GitHub failure answers 503
and Alertmanager retries; a payload that is not Alertmanager's answers 400.

The token is read from ``--github-token-file`` (a mounted Secret) at each use, or from
``$GITHUB_TOKEN``; it never reaches a log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from kaip.errors import KaipError
from kaip_incluster.alerts import receiver, rota
from kaip_incluster.github import GitHub, RequestFailed

log = logging.getLogger("kaip.alerts")
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kaip-alerts", description=__doc__.split("\n", 1)[0])
    p.add_argument("--listen", default="0.0.0.0", help="address to serve on (default: all)")  # noqa: S104
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--github-api-url", default="https://api.github.com")
    p.add_argument("--owner", required=True, help="the GitHub repository's owner")
    p.add_argument("--repo", required=True, help="the GitHub repository's name")
    p.add_argument("--label", action="append", dest="labels", help="label on every issue (repeatable)")
    p.add_argument("--github-token-file", type=Path, help="file holding the token (a mounted Secret)")
    p.add_argument(
        "--rota-dir", type=Path, help="the mounted rota ConfigMap (see kaip_incluster.alerts.rota)"
    )
    return p.parse_args(list(argv))


class TokenFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __call__(self) -> str:
        if self.path is not None:
            try:
                return self.path.read_text().strip()
            except OSError as exc:
                raise RequestFailed(f"GitHub token file {self.path}: {exc.strerror}") from exc
        token = os.environ.get("GITHUB_TOKEN", "").strip()
        if not token:
            raise RequestFailed("no GitHub token: set --github-token-file or $GITHUB_TOKEN")
        return token


def build_app(client: GitHub, *, labels: Sequence[str], rota_dir: Path | None) -> web.Application:
    counts: Counter[str] = Counter()
    lock = asyncio.Lock()

    def apply(group: receiver.Group) -> str:
        return receiver.handle(
            group, client, labels=labels, rota=rota.load(rota_dir), now=datetime.now(timezone.utc)
        )

    async def alerts(request: web.Request) -> web.Response:
        try:
            group = receiver.parse(await request.json())
        except (ValueError, receiver.BadPayload) as exc:
            counts["bad_payload"] += 1
            message = exc.message if isinstance(exc, KaipError) else "the body is not JSON"
            return web.json_response({"error": message}, status=400)
        async with lock:
            try:
                done = await asyncio.to_thread(apply, group)
            except (RequestFailed, rota.BadRota) as exc:
                counts["github_failed"] += 1
                log.warning("alert group %s: %s", group.key, exc.message)
                return web.json_response({"error": exc.message}, status=503)
        counts[done] += 1
        log.info("alert group %s (%s): %s", group.key, group.status, done)
        return web.json_response({"result": done})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(request: web.Request) -> web.Response:
        lines = [
            "# HELP kaip_alerts_notifications_total Alertmanager notifications by what was done.",
            "# TYPE kaip_alerts_notifications_total counter",
        ]
        lines += [f'kaip_alerts_notifications_total{{result="{k}"}} {v}' for k, v in sorted(counts.items())]
        return web.Response(text="\n".join(lines) + "\n", headers={"Content-Type": PROMETHEUS_TEXT})

    app = web.Application()
    app.router.add_post("/alerts", alerts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    client = GitHub(
        args.github_api_url, args.owner, args.repo, TokenFile(args.github_token_file), agent="kaip-alerts"
    )
    labels = tuple(args.labels or receiver.DEFAULT_LABELS)
    web.run_app(
        build_app(client, labels=labels, rota_dir=args.rota_dir),
        host=args.listen,
        port=args.port,
        print=None,
        handle_signals=True,
    )
    return 0

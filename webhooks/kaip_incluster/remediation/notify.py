"""The notifier: failures we cannot repair reach people, as a JSON webhook and as GitHub issues.

GitHub (as pfnet-research/alertmanager-to-github does it): one issue per node and condition, found
again by a hidden marker in its body among the issues carrying our label; a new failure on a closed
issue reopens it with a comment instead of opening a duplicate, and the condition clearing closes it.
The token is read from a Secret at each use and never written to a log, an Event or an error.

Uses of the REST API (docs.github.com/rest/issues): ``GET /repos/{owner}/{repo}/issues`` (state=all,
labels, per_page, page), ``POST /repos/{owner}/{repo}/issues``, ``PATCH
/repos/{owner}/{repo}/issues/{number}`` (state, state_reason) and ``POST
/repos/{owner}/{repo}/issues/{number}/comments``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from kaip.errors import KaipError, shorten
from kaip.remediation.spec import Config, GitHubTarget
from kaip.resources import kinds

if TYPE_CHECKING:
    import urllib3

    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MAX_PAGES = 20


class NotifyFailed(KaipError):
    temporary = True


@dataclass(frozen=True)
class Notice:
    kind: str  # "failed", "unhandled", "resolved", "breaker"
    node: str
    condition: str
    message: str
    at: str
    rule: str = ""
    phase: str = ""
    history: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        doc = asdict(self)
        doc["history"] = [dict(h) for h in self.history]
        return {"source": "kaip-remediator", **doc}


def marker(node: str, condition: str) -> str:
    return f"<!-- kaip-remediation-id: node={node} condition={condition} -->"


def issue_title(notice: Notice) -> str:
    return f"Node {notice.node}: {notice.condition}"


def issue_body(notice: Notice) -> str:
    lines = [
        f"**{notice.condition}** on node `{notice.node}` needs a person.",
        "",
        f"- what: {notice.kind}" + (f" (rule `{notice.rule}`)" if notice.rule else ""),
        f"- when: {notice.at}",
        f"- message: {notice.message}",
    ]
    if notice.history:
        lines += ["", "| time | phase | message |", "| --- | --- | --- |"]
        lines += [
            f"| {h.get('time', '')} | {h.get('phase', '')} | {h.get('message', '')} |" for h in notice.history
        ]
    lines += ["", marker(notice.node, notice.condition)]
    return "\n".join(lines)


class Notifier:
    """Sends notices where the RemediationConfig says; a failure is logged, never raised to the loop."""

    def __init__(self, kube: Kube | None, *, pool: urllib3.PoolManager | None = None) -> None:
        self.kube = kube
        self._pool = pool

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(TIMEOUT_SECONDS))
        return self._pool

    def send(self, cfg: Config, notice: Notice) -> None:
        if cfg.webhook_url:
            try:
                self.webhook(cfg.webhook_url, notice)
            except NotifyFailed as exc:
                log.warning("webhook notification failed: %s", exc.message)
        if cfg.github is not None and notice.kind != "breaker":
            try:
                self.github(cfg.github, notice)
            except NotifyFailed as exc:
                log.warning("GitHub notification failed: %s", exc.message)

    # -- transport -------------------------------------------------------------------------------
    def _call(
        self, method: str, url: str, *, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        import urllib3

        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", "User-Agent": "kaip-remediator", **(headers or {})}
        try:
            resp = self.pool.request(method, url, body=data, headers=all_headers, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise NotifyFailed(f"{method} {_where(url)}: {shorten(str(exc), 160)}") from exc
        if not 200 <= resp.status < 300:
            raise NotifyFailed(
                f"{method} {_where(url)} answered {resp.status}: {shorten(resp.data.decode(errors='replace'), 200)}"
            )
        return json.loads(resp.data) if resp.data else None

    def webhook(self, url: str, notice: Notice) -> None:
        self._call("POST", url, body=notice.summary())

    # -- GitHub ----------------------------------------------------------------------------------
    def token(self, target: GitHubTarget) -> str:
        from kaip.kube.errors import ApiError

        if self.kube is None:
            raise NotifyFailed("no API client to read the GitHub token Secret")
        where = f"Secret {target.token_namespace}/{target.token_secret} key {target.token_key}"
        try:
            secret = self.kube.get(kinds.SECRETS, target.token_secret, namespace=target.token_namespace)
        except ApiError as exc:
            raise NotifyFailed(f"GitHub token: {where}: {exc.message}") from exc
        raw = (secret.get("data") or {}).get(target.token_key)
        if not raw:
            raise NotifyFailed(f"GitHub token: {where} is missing")
        return base64.b64decode(raw).decode().strip()

    def github(self, target: GitHubTarget, notice: Notice) -> None:
        headers = {
            "Authorization": f"Bearer {self.token(target)}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        repo = f"{target.api_url}/repos/{quote(target.owner)}/{quote(target.repo)}"
        found = self.find_issue(repo, target, notice, headers)
        if notice.kind == "resolved":
            if found is not None and found.get("state") == "open":
                number = found["number"]
                self._call(
                    "POST",
                    f"{repo}/issues/{number}/comments",
                    body={"body": f"Resolved: {notice.message}"},
                    headers=headers,
                )
                self._call(
                    "PATCH",
                    f"{repo}/issues/{number}",
                    body={"state": "closed", "state_reason": "completed"},
                    headers=headers,
                )
            return
        if found is None:
            body = {"title": issue_title(notice), "body": issue_body(notice), "labels": list(target.labels)}
            created = self._call("POST", f"{repo}/issues", body=body, headers=headers)
            log.info(
                "opened GitHub issue #%s for %s on %s",
                (created or {}).get("number"),
                notice.condition,
                notice.node,
            )
            return
        number = found["number"]
        if found.get("state") != "open":
            self._call("PATCH", f"{repo}/issues/{number}", body={"state": "open"}, headers=headers)
            log.info("reopened GitHub issue #%s for %s on %s", number, notice.condition, notice.node)
        self._call(
            "POST", f"{repo}/issues/{number}/comments", body={"body": issue_body(notice)}, headers=headers
        )

    def find_issue(
        self, repo: str, target: GitHubTarget, notice: Notice, headers: Mapping[str, str]
    ) -> dict[str, Any] | None:
        wanted = marker(notice.node, notice.condition)
        for page in range(1, MAX_PAGES + 1):
            query = urlencode(
                {"state": "all", "labels": ",".join(target.labels), "per_page": 100, "page": page}
            )
            items = self._call("GET", f"{repo}/issues?{query}", headers=headers) or []
            for item in items:
                if "pull_request" not in item and wanted in (item.get("body") or ""):
                    return dict(item)
            if len(items) < 100:
                return None
        return None


def _where(url: str) -> str:
    """Only the URL's host: a webhook URL's path or query often is the secret (Slack, Teams)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

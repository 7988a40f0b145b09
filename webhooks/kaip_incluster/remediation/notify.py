"""The notifier: failures we cannot repair reach people, as a JSON webhook and as GitHub issues.

GitHub (as pfnet-research/alertmanager-to-github does it): one issue per node and condition, found
again by a hidden marker in its body among the issues carrying our label; a new failure on a closed
issue reopens it with a comment instead of opening a duplicate, and the condition clearing closes it.
The token is read from a Secret at each use and never written to a log, an Event or an error.

The GitHub calls are those of ``kaip_incluster.github``, the client the Alertmanager receiver
(``kaip_incluster.alerts``) uses too.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from kaip.remediation.spec import Config, GitHubTarget
from kaip.resources import kinds
from kaip_incluster import github as gh
from kaip_incluster.github import RequestFailed

if TYPE_CHECKING:
    import urllib3

    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

#: The notifier's failures are the shared client's (a webhook or GitHub call that failed).
NotifyFailed = RequestFailed


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
            self._pool = gh.new_pool()
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

    def webhook(self, url: str, notice: Notice) -> None:
        gh.call(self.pool, "POST", url, body=notice.summary(), agent="kaip-remediator")

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

    def client(self, target: GitHubTarget) -> gh.GitHub:
        return gh.GitHub(
            target.api_url,
            target.owner,
            target.repo,
            lambda: self.token(target),
            pool=self.pool,
            agent="kaip-remediator",
        )

    def github(self, target: GitHubTarget, notice: Notice) -> None:
        client = self.client(target)
        found = client.find(marker(notice.node, notice.condition), target.labels)
        if notice.kind == "resolved":
            if found is not None and found.get("state") == "open":
                number = int(found["number"])
                client.comment(number, f"Resolved: {notice.message}")
                client.close(number)
            return
        if found is None:
            created = client.open_issue(issue_title(notice), issue_body(notice), target.labels)
            log.info(
                "opened GitHub issue #%s for %s on %s", created.get("number"), notice.condition, notice.node
            )
            return
        number = int(found["number"])
        if found.get("state") != "open":
            client.reopen(number)
            log.info("reopened GitHub issue #%s for %s on %s", number, notice.condition, notice.node)
        client.comment(number, issue_body(notice))

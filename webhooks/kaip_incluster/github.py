"""The one GitHub client of the in-cluster parts: the remediator's notices and the Alertmanager
receiver (``kaip_incluster.alerts``) both keep their issues through it.

An issue is found again by a hidden marker (an HTML comment) in its body, among the issues that carry
the caller's labels, listed with ``state=all`` so a closed issue is reopened rather than duplicated.
The listing is used rather than the search API because search is eventually consistent (an issue
opened a second ago may not be found yet, and a second notification would open a duplicate) and is
rate-limited far more tightly. The token comes from a callable at each use (a Secret read, a mounted
file) and is never written to a log, an Event or an error.

Uses of the REST API (docs.github.com/rest/issues, API version 2022-11-28):
``GET /repos/{owner}/{repo}/issues`` (state, labels, per_page, page), ``POST /repos/{owner}/{repo}/issues``
(title, body, labels, assignees), ``PATCH /repos/{owner}/{repo}/issues/{number}`` (state, state_reason,
body) and ``POST /repos/{owner}/{repo}/issues/{number}/comments`` (body).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from kaip.errors import KaipError, shorten

TIMEOUT_SECONDS = 10.0
MAX_PAGES = 20
PER_PAGE = 100
API_VERSION = "2022-11-28"


class RequestFailed(KaipError):
    """A call to GitHub or to a webhook failed; worth another try later."""

    temporary = True


def new_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(TIMEOUT_SECONDS))


def where(url: str) -> str:
    """Only the URL's host: a webhook URL's path or query often is the secret (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def call(
    pool: urllib3.PoolManager,
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    agent: str = "kaip",
) -> Any:
    """One JSON request; a transport error or a non-2xx answer raises RequestFailed (host only)."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json", "User-Agent": agent, **(headers or {})}
    try:
        resp = pool.request(method, url, body=data, headers=all_headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise RequestFailed(f"{method} {where(url)}: {shorten(str(exc), 160)}") from exc
    if not 200 <= resp.status < 300:
        text = shorten(resp.data.decode(errors="replace"), 200)
        raise RequestFailed(f"{method} {where(url)} answered {resp.status}: {text}")
    return json.loads(resp.data) if resp.data else None


class GitHub:
    """Issues of one repository, with a token read at each use."""

    def __init__(
        self,
        api_url: str,
        owner: str,
        repo: str,
        token: Callable[[], str],
        *,
        pool: urllib3.PoolManager | None = None,
        agent: str = "kaip",
    ) -> None:
        self.repo_url = f"{api_url.rstrip('/')}/repos/{quote(owner)}/{quote(repo)}"
        self._token = token
        self._pool = pool
        self.agent = agent

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            self._pool = new_pool()
        return self._pool

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        return call(self.pool, method, self.repo_url + path, body=body, headers=headers, agent=self.agent)

    def find(self, marker: str, labels: Sequence[str]) -> dict[str, Any] | None:
        """The issue (open or closed, newest first) whose body holds ``marker``; pull requests skipped."""
        for page in range(1, MAX_PAGES + 1):
            query = urlencode(
                {"state": "all", "labels": ",".join(labels), "per_page": PER_PAGE, "page": page}
            )
            items = self._call("GET", f"/issues?{query}") or []
            for item in items:
                if "pull_request" not in item and marker in (item.get("body") or ""):
                    return dict(item)
            if len(items) < PER_PAGE:
                return None
        return None

    def open_issue(
        self, title: str, body: str, labels: Sequence[str], assignees: Sequence[str] = ()
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {"title": title, "body": body, "labels": list(labels)}
        if assignees:
            doc["assignees"] = list(assignees)
        return dict(self._call("POST", "/issues", doc) or {})

    def comment(self, number: int, body: str) -> None:
        self._call("POST", f"/issues/{number}/comments", {"body": body})

    def update(self, number: int, **fields: Any) -> dict[str, Any]:
        """PATCH the issue: ``state`` ("open"/"closed"), ``state_reason``, ``body``, ``assignees``."""
        return dict(self._call("PATCH", f"/issues/{number}", fields) or {})

    def close(self, number: int) -> None:
        self.update(number, state="closed", state_reason="completed")

    def reopen(self, number: int) -> None:
        self.update(number, state="open", state_reason="reopened")

"""The one stand-in the tests allow: a local server for the part of GitHub's REST API that kaip uses.

api.github.com is unreachable from the test machines, so this server answers the issue calls of
``kaip_incluster.github`` (the remediator's notices and the Alertmanager receiver) as GitHub's REST API
documents them (docs.github.com/rest/issues/issues, /rest/issues/comments, /rest/search/search,
API version 2022-11-28), and checks each request against those published shapes, failing it as GitHub
would, and recording it in ``GitHubState.violations`` so a test can assert there are none:

- every request: ``Authorization: Bearer <token>`` (or ``token <token>``) else 401 "Bad credentials";
  a ``User-Agent`` header (GitHub refuses requests without one: 403); ``X-GitHub-Api-Version``, when
  sent, a published version; ``Accept``, when sent, a GitHub media type or ``*/*``;
- ``GET /repos/{owner}/{repo}/issues``: ``state`` open|closed|all, ``labels`` (comma-separated),
  ``per_page`` 1..100, ``page`` ≥ 1; pull requests are issues too;
- ``POST /repos/{owner}/{repo}/issues``: ``title`` required (string or integer); ``body`` string;
  ``labels`` and ``assignees`` arrays of strings; no field outside the documented ones (422);
- ``PATCH /repos/{owner}/{repo}/issues/{issue_number}``: ``state`` open|closed, ``state_reason``
  completed|not_planned|reopened|null, ``title``, ``body``, ``labels``, ``assignees``; nothing else;
- ``POST /repos/{owner}/{repo}/issues/{issue_number}/comments``: ``body`` required string;
- ``GET /search/issues?q=``: ``q`` required; ``repo:``, ``is:issue``, ``is:open``/``is:closed``,
  ``label:`` qualifiers and quoted phrases (matched in title or body) are understood;
- ``POST /hook`` is not GitHub: it records generic webhook deliveries.

Assignees who are not collaborators are dropped silently, as GitHub does (``collaborators=None``:
everyone is one). Each issue keeps its ``events`` (opened, commented, closed, reopened, assigned) as
GitHub's timeline would.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API_VERSIONS = ("2022-11-28",)
CREATE_FIELDS = {"title", "body", "assignee", "milestone", "labels", "assignees", "type"}
UPDATE_FIELDS = CREATE_FIELDS | {"state", "state_reason"}
STATE_REASONS = (None, "completed", "not_planned", "reopened")


@dataclass
class GitHubState:
    token: str
    collaborators: set[str] | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[str]] = field(default_factory=dict)
    events: dict[int, list[str]] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, number: int) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(i) for i in self.issues if i["number"] == number), None)


_ISSUES = re.compile(r"^/repos/([^/]+)/([^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)$")
_COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strings(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        raise Refused(422, f"Validation Failed: {name} must be an array of strings")


def _check_fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refused(400, "Problems parsing JSON")
    extra = sorted(set(body) - allowed)
    if extra:
        raise Refused(422, f"Validation Failed: unexpected fields {extra}")
    if "body" in body and body["body"] is not None and not isinstance(body["body"], str):
        raise Refused(422, "Validation Failed: body must be a string")
    _strings(body, "labels")
    _strings(body, "assignees")
    return body


def _search(issues: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    phrases = re.findall(r'"([^"]*)"', q)
    words = re.sub(r'"[^"]*"', " ", q).split()
    found = []
    for issue in issues:
        text = f"{issue['title']}\n{issue.get('body') or ''}"
        labels = [lab["name"] for lab in issue["labels"]]
        ok = all(p in text for p in phrases)
        for w in words:
            key, _, value = w.partition(":")
            if key == "repo":
                ok = ok and value == f"{issue['_owner']}/{issue['_repo']}"
            elif key == "is" and value in ("open", "closed"):
                ok = ok and issue["state"] == value
            elif key == "label":
                ok = ok and value.strip('"') in labels
            elif key in ("is", "in", "type"):
                continue
            else:
                ok = ok and w in text
        if ok:
            found.append(issue)
    return found


def _public(issue: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in issue.items() if not k.startswith("_")}


def serve(state: GitHubState) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return None
            try:
                return json.loads(self.rfile.read(length))
            except ValueError as exc:
                raise Refused(400, "Problems parsing JSON") from exc

        def _check_headers(self) -> None:
            if self.headers.get("Authorization") not in (f"Bearer {state.token}", f"token {state.token}"):
                raise Refused(401, "Bad credentials")
            if not self.headers.get("User-Agent"):
                raise Refused(
                    403, "Request forbidden by administrative rules: a User-Agent header is required"
                )
            version = self.headers.get("X-GitHub-Api-Version")
            if version is not None and version not in API_VERSIONS:
                raise Refused(400, f"API version {version!r} is not supported")
            accept = self.headers.get("Accept")
            if accept is not None and not (
                accept.startswith("application/vnd.github")
                or "*/*" in accept
                or accept.startswith("application/json")
            ):
                raise Refused(415, f"Unsupported 'Accept' header: {accept!r}")

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            state.requests.append((method, url.path))
            try:
                if method == "POST" and url.path == "/hook":
                    state.hooks.append(self._body() or {})
                    self._send(200, {})
                    return
                self._check_headers()
                code, answer = self._route(method, url.path, parse_qs(url.query))
            except Refused as exc:
                if exc.code != 401:
                    state.violations.append(f"{method} {url.path}: {exc.code} {exc.message}")
                self._send(
                    exc.code, {"message": exc.message, "documentation_url": "https://docs.github.com/rest"}
                )
                return
            self._send(code, answer)

        def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
            if method == "GET" and path == "/search/issues":
                q = query.get("q", [""])[0]
                if not q:
                    raise Refused(422, "Validation Failed: q is required")
                with state.lock:
                    items = [_public(i) for i in _search(state.issues, unquote(q))]
                return 200, {"total_count": len(items), "incomplete_results": False, "items": items}
            m = _ISSUES.match(path)
            if m and method == "GET":
                wanted = query.get("state", ["open"])[0]
                if wanted not in ("open", "closed", "all"):
                    raise Refused(422, f"Validation Failed: state {wanted!r}")
                labels = [x for x in query.get("labels", [""])[0].split(",") if x]
                per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
                if not 1 <= per_page <= 100 or page < 1:
                    raise Refused(422, "Validation Failed: per_page must be 1..100 and page at least 1")
                with state.lock:
                    found = [
                        _public(i)
                        for i in sorted(state.issues, key=lambda i: -int(i["number"]))
                        if (i["_owner"], i["_repo"]) == m.groups()
                        and (wanted == "all" or i["state"] == wanted)
                        and all(name in [lab["name"] for lab in i["labels"]] for name in labels)
                    ]
                return 200, found[(page - 1) * per_page : page * per_page]
            if m and method == "POST":
                body = _check_fields(self._body(), CREATE_FIELDS)
                if not isinstance(body.get("title"), (str, int)) or body.get("title") == "":
                    raise Refused(422, "Validation Failed: title is required")
                with state.lock:
                    number = len(state.issues) + 1
                    assignees = self._assignees(body.get("assignees") or [])
                    issue: dict[str, Any] = {
                        "_owner": m.group(1),
                        "_repo": m.group(2),
                        "number": number,
                        "html_url": f"https://github.com/{m.group(1)}/{m.group(2)}/issues/{number}",
                        "title": str(body["title"]),
                        "body": body.get("body") or "",
                        "labels": [{"name": n} for n in body.get("labels") or []],
                        "assignees": assignees,
                        "state": "open",
                        "state_reason": None,
                        "comments": 0,
                        "created_at": _now(),
                        "closed_at": None,
                        "user": {"login": "kaip-bot"},
                    }
                    state.issues.append(issue)
                    state.events[number] = ["opened"] + ["assigned"] * len(assignees)
                return 201, _public(issue)
            m = _COMMENTS.match(path)
            if m and method == "POST":
                body = _check_fields(self._body(), {"body"})
                if not isinstance(body.get("body"), str) or not body["body"]:
                    raise Refused(422, "Validation Failed: body is required")
                number = int(m.group(3))
                with state.lock:
                    issue = self._find(m.group(1), m.group(2), number)
                    issue["comments"] += 1
                    state.comments.setdefault(number, []).append(body["body"])
                    state.events.setdefault(number, []).append("commented")
                return 201, {"body": body["body"], "user": {"login": "kaip-bot"}, "created_at": _now()}
            m = _ISSUE.match(path)
            if m and method == "PATCH":
                body = _check_fields(self._body(), UPDATE_FIELDS)
                if "state" in body and body["state"] not in ("open", "closed"):
                    raise Refused(422, f"Validation Failed: state {body['state']!r}")
                if body.get("state_reason", None) not in STATE_REASONS:
                    raise Refused(422, f"Validation Failed: state_reason {body['state_reason']!r}")
                number = int(m.group(3))
                with state.lock:
                    issue = self._find(m.group(1), m.group(2), number)
                    events = state.events.setdefault(number, [])
                    if body.get("state") and body["state"] != issue["state"]:
                        events.append("closed" if body["state"] == "closed" else "reopened")
                        issue["closed_at"] = _now() if body["state"] == "closed" else None
                    if "assignees" in body:
                        issue["assignees"] = self._assignees(body["assignees"])
                        events.extend(["assigned"] * len(issue["assignees"]))
                    issue.update(
                        {k: v for k, v in body.items() if k in ("state", "state_reason", "title", "body")}
                    )
                    if "labels" in body:
                        issue["labels"] = [{"name": n} for n in body["labels"]]
                return 200, _public(issue)
            if m and method == "GET":
                with state.lock:
                    return 200, _public(self._find(m.group(1), m.group(2), int(m.group(3))))
            raise Refused(404, "Not Found")

        def _find(self, owner: str, repo: str, number: int) -> dict[str, Any]:
            for issue in state.issues:
                if issue["number"] == number and (issue["_owner"], issue["_repo"]) == (owner, repo):
                    return issue
            raise Refused(404, "Not Found")

        def _assignees(self, logins: list[str]) -> list[dict[str, str]]:
            return [{"login": x} for x in logins if state.collaborators is None or x in state.collaborators]

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

"""A local stand-in for the part of GitHub's REST API the notifier uses, plus a webhook receiver.

The real api.github.com is unreachable from the test machine, so this server speaks the same
requests and answers as documented at docs.github.com/rest/issues: list a repository's issues
(``state``, ``labels``, ``per_page``, ``page``; pull requests are issues too), create one, update its
state, comment on it; a missing or wrong bearer token gets 401 "Bad credentials". ``POST /hook``
records webhook deliveries.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class GitHubState:
    token: str
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[str]] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_ISSUES = re.compile(r"^/repos/([^/]+)/([^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)$")
_COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")


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
            return json.loads(self.rfile.read(length)) if length else None

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {state.token}":
                return True
            self._send(
                401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
            return False

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            state.requests.append(("GET", url.path))
            if not self._authorized():
                return
            if not _ISSUES.match(url.path):
                self._send(404, {"message": "Not Found"})
                return
            query = parse_qs(url.query)
            wanted_state = query.get("state", ["open"])[0]
            labels = [x for x in query.get("labels", [""])[0].split(",") if x]
            per_page = int(query.get("per_page", ["30"])[0])
            page = int(query.get("page", ["1"])[0])
            with state.lock:
                found = [
                    i
                    for i in sorted(state.issues, key=lambda i: -int(i["number"]))
                    if (wanted_state == "all" or i["state"] == wanted_state)
                    and all(name in [lab["name"] for lab in i["labels"]] for name in labels)
                ]
            self._send(200, found[(page - 1) * per_page : page * per_page])

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            state.requests.append(("POST", url.path))
            body = self._body()
            if url.path == "/hook":
                state.hooks.append(body)
                self._send(200, {})
                return
            if not self._authorized():
                return
            if _ISSUES.match(url.path):
                with state.lock:
                    issue = {
                        "number": len(state.issues) + 1,
                        "title": body["title"],
                        "body": body.get("body", ""),
                        "labels": [{"name": n} for n in body.get("labels", [])],
                        "state": "open",
                        "state_reason": None,
                    }
                    state.issues.append(issue)
                self._send(201, issue)
                return
            match = _COMMENTS.match(url.path)
            if match:
                number = int(match.group(3))
                with state.lock:
                    state.comments.setdefault(number, []).append(body["body"])
                self._send(201, {"body": body["body"]})
                return
            self._send(404, {"message": "Not Found"})

        def do_PATCH(self) -> None:
            url = urlsplit(self.path)
            state.requests.append(("PATCH", url.path))
            if not self._authorized():
                return
            body = self._body()
            match = _ISSUE.match(url.path)
            if not match:
                self._send(404, {"message": "Not Found"})
                return
            with state.lock:
                issue = next((i for i in state.issues if i["number"] == int(match.group(3))), None)
                if issue is None:
                    self._send(404, {"message": "Not Found"})
                    return
                issue.update(
                    {k: v for k, v in body.items() if k in ("state", "state_reason", "title", "body")}
                )
            self._send(200, issue)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

"""A Microsoft Graph and identity-platform stand-in on 127.0.0.1, recording every request.

Serves `POST /{tenant}/oauth2/v2.0/token` and `GET /v1.0/domains` (two pages by default, linked
by `@odata.nextLink`) from a thread running `http.server`, so both sync and async tests can use
it. Failures are scripted: `token_status`, `domains_status`, and `throttle` (a list of statuses
such as [429] answered, with `Retry-After`, before the real answer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
CLIENT_ID = "11111111-1111-1111-1111-1111111111bb"
ACCESS_TOKEN = "fake-graph-token"

DEFAULT_PAGES: list[list[dict[str, Any]]] = [
    [
        {
            "id": "contoso.com",
            "isVerified": True,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
        },
        {"id": "contoso.onmicrosoft.com", "isVerified": True, "supportedServices": ["Email"]},
    ],
    [
        {"id": "fabrikam.com", "isVerified": False, "supportedServices": []},
        {"id": "sharepoint.contoso.com", "isVerified": True, "supportedServices": ["SharePoint"]},
    ],
]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class GraphApi:
    pages: list[list[dict[str, Any]]] = field(
        default_factory=lambda: [list(p) for p in DEFAULT_PAGES]
    )
    token_status: int = 200
    domains_status: int = 200
    throttle: list[int] = field(default_factory=list)  # statuses to answer first, e.g. [429]
    retry_after: str = "1"
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def settings_table(self) -> dict[str, Any]:
        """The `[microsoft365]` config table pointing at this stand-in."""
        return {
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "graph_url": self.url,
            "login_url": self.url,
            "timeout_seconds": 2,
        }


def _handler(api: GraphApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                form=parse_qs(body),
            )
            api.requests.append(request)
            return request

        def _throttled(self) -> bool:
            if not api.throttle:
                return False
            status = api.throttle.pop(0)
            self._send(
                status,
                {"error": {"code": "TooManyRequests", "message": "slow down"}},
                {"Retry-After": api.retry_after},
            )
            return True

        def do_POST(self) -> None:
            request = self._record()
            if request.path != f"/{TENANT_ID}/oauth2/v2.0/token":
                self._send(404, {"error": "not_found"})
                return
            if self._throttled():
                return
            if api.token_status != 200:
                self._send(
                    api.token_status,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
                    },
                )
                return
            self._send(
                200, {"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
            )

        def do_GET(self) -> None:
            request = self._record()
            if request.path != "/v1.0/domains":
                self._send(404, {"error": {"code": "NotFound", "message": "no such path"}})
                return
            if self._throttled():
                return
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                self._send(
                    401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}}
                )
                return
            if api.domains_status != 200:
                self._send(
                    api.domains_status,
                    {
                        "error": {
                            "code": "Authorization_RequestDenied",
                            "message": "Insufficient privileges",
                        }
                    },
                )
                return
            page = int((request.query.get("page") or ["0"])[0])
            body: dict[str, Any] = {"value": api.pages[page]}
            if page + 1 < len(api.pages):
                body["@odata.nextLink"] = f"{api.url}v1.0/domains?page={page + 1}"
            self._send(200, body)

    return Handler


@pytest.fixture
def graph_api() -> Iterator[GraphApi]:
    """A running Graph stand-in; tweak its attributes to script failures."""
    api = GraphApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield api
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

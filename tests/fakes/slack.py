"""A Slack stand-in on 127.0.0.1: Web API, response_url and a Socket Mode WebSocket.

Why a real server and not a mocked client: the bot's Slack code is slack_sdk + bolt, and the
parts most likely to be wrong (signing, retries on 429, Socket Mode acks, base_url handling) live
inside those libraries. Pointing the real clients at this server through `base_url` / `api_url`
exercises all of it while nothing leaves the machine.

The server runs its own event loop in a background thread, so one fixture serves sync tests
(`WebClient`) and async tests (`AsyncWebClient`, bolt's `AsyncApp`) alike. Everything it receives
is recorded with its decoded parameters and headers; failures are injected per method.

    api.base_url                        -> "http://127.0.0.1:PORT/api/"
    api.fail_next("chat.postMessage", status=429, retry_after=2)
    api.fail_next("chat.postMessage", error="channel_not_found")   # HTTP 200, ok=false
    api.fail_next("chat.postMessage", status=503, body="<html>down</html>")  # not JSON
    api.slow_next("chat.postMessage", seconds=3)   # accepted at once, answered 3 s later
    api.scopes = ("commands", "chat:write")        # what x-oauth-scopes says (history off)
    api.channels = {"C0OPS": "ops"}; api.members = {"C0OPS": {"U0ONCALL1"}}
    api.refuse_connections(); api.accept_connections()             # same port
    envelope = api.push_slash_command("/relaycheck", "help")       # over Socket Mode
    api.wait_for_ack(envelope)          # or: await api.ack_for(envelope)
    api.received("chat.postMessage")    -> [RecordedCall, ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import WSMsgType, web

# Parameters that slack_sdk sends as JSON strings inside a form body; decoded for assertions.
_JSON_PARAMS = frozenset({"blocks", "attachments", "view", "metadata"})
RESPONSE_URL = "response_url"  # the pseudo method name under which response_url posts are recorded

TEAM_ID = "T0STANDIN"
BOT_USER_ID = "U0BOTUSER"
BOT_ID = "B0STANDIN"
APP_ID = "A0STANDIN"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedCall:
    """One request the stand-in received, as the test wants to inspect it."""

    method: str  # Web API method, or "response_url"
    params: dict[str, Any]  # form or JSON body plus query string; JSON-in-form values decoded
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    status: int  # the HTTP status the stand-in answered with
    path: str = ""  # the response_url id for response_url posts

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        token = self.params.get("token")
        return token if isinstance(token, str) else None


@dataclass(slots=True, kw_only=True)
class _Failure:
    status: int
    retry_after: int | None
    error: str | None
    remaining: int
    body: str | None = None  # a raw, non-JSON body (text/html), as a load balancer answers
    content_type: str = "text/html"
    channel: str | None = None  # only calls for this channel fail (None: any call)
    text: str | None = None  # only calls posting this text fail (a message Slack chokes on)


@dataclass(slots=True, kw_only=True)
class _Slow:
    seconds: float
    remaining: int


# the scopes the stand-in's tokens have (sent as x-oauth-scopes, as Slack does)
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
)


@dataclass(slots=True, kw_only=True)
class SocketEnvelope:
    """An envelope pushed to the bot over Socket Mode, and the ack it got (if any)."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    ack: dict[str, Any] | None = None
    acked_at: float | None = None
    sent_at: float = field(default_factory=time.monotonic)


class SlackApiStandIn:
    """The stand-in server; use the `slack_api` fixture rather than constructing it."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.envelopes: list[SocketEnvelope] = []
        self.socket_messages: list[dict[str, Any]] = []  # everything the bot sent over WebSocket
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> message as last posted/updated
        self.user_locales: dict[str, str] = {}  # user id -> the locale users.info reports
        self.users_info_error: str | None = None  # e.g. "missing_scope" without users:read
        self.scopes: tuple[str, ...] = DEFAULT_SCOPES
        self.channels: dict[str, str] = {}  # channel id -> name (conversations.list)
        self.members: dict[str, set[str]] = {}  # channel id -> user ids (conversations.members)
        self._lock = threading.Lock()
        self._failures: dict[str, list[_Failure]] = {}
        self._slow: dict[str, list[_Slow]] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="slack-standin", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    def stop(self) -> None:
        try:
            self._run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_get("/socket/{ticket}", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        await self._listen(0)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1]

    async def _drop_everything(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"going away")
        self._sockets.clear()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for conn in self._runner.server.connections:
                conn.force_close()

    async def _stop(self) -> None:
        self._closing.set()
        await asyncio.sleep(0)
        await self._drop_everything()
        if self._runner is not None:
            await self._runner.cleanup()

    def refuse_connections(self) -> None:
        """Stop listening (and cut open connections): clients now get 'connection refused'."""
        self._run(self._drop_everything())

    def accept_connections(self) -> None:
        """Listen again on the same port, as a Slack outage ending would look."""
        if self._site is None:
            self._run(self._listen(self.port))

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url_for(self, ident: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{ident}"

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 2,
        times: int = 1,
        error: str | None = None,
        body: str | None = None,
        content_type: str = "text/html",
        channel: str | None = None,
        text: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail (only those for `channel`, or posting
        `text`, if given).

        status 429 answers `Retry-After: retry_after` with error "ratelimited"; another status
        answers that status with a JSON error body, or with `body` as sent (`content_type`,
        for the HTML or text a proxy in front of Slack answers); status 200 with `error`
        answers ok=false (a permanent API error such as "channel_not_found").
        """
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(
                    status=status,
                    retry_after=retry_after if status == 429 else None,
                    error=error,
                    remaining=times,
                    body=body,
                    content_type=content_type,
                    channel=channel,
                    text=text,
                )
            )

    def slow_next(self, method: str, *, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` are carried out at once (a post is in the
        channel) but answered only after `seconds`: a client with a shorter timeout never
        learns that it worked."""
        with self._lock:
            self._slow.setdefault(method, []).append(_Slow(seconds=seconds, remaining=times))

    def _take_slow(self, method: str) -> float | None:
        with self._lock:
            queue = self._slow.get(method)
            if not queue:
                return None
            slow = queue[0]
            slow.remaining -= 1
            if slow.remaining <= 0:
                queue.pop(0)
            return slow.seconds

    def _take_failure(self, method: str, params: Mapping[str, Any]) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(method) or []
            for failure in queue:
                if failure.channel is not None and failure.channel != params.get("channel"):
                    continue
                if failure.text is not None and failure.text != params.get("text"):
                    continue
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.remove(failure)
                return failure
            return None

    # ------------------------------------------------------------------ inspection

    def received(self, method: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def responses(self, ident: str | None = None) -> list[RecordedCall]:
        """Posts to response_url (optionally to one id), oldest first."""
        return [c for c in self.received(RESPONSE_URL) if ident is None or c.path == ident]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block (sync tests) until predicate() holds; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout}s; calls: {self._summary()}"
                )
            time.sleep(0.005)

    async def await_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Like wait_until, for async tests: yields to the test's event loop while waiting."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {within}s; calls: {self._summary()}"
                )
            await asyncio.sleep(0.005)

    def _summary(self) -> list[str]:
        with self._lock:
            return [f"{c.method}:{c.status}" for c in self.calls]

    # ------------------------------------------------------------------ Web API

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            if request.content_type == "application/json":
                decoded = json.loads(body)
                if isinstance(decoded, dict):
                    params.update(decoded)
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        for key in _JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                # undecodable values are kept as sent: the test sees what the client sent
                with contextlib.suppress(json.JSONDecodeError):
                    params[key] = json.loads(params[key])
        return params

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self.calls.append(call)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        headers = dict(request.headers)
        arrived = time.monotonic()
        failure = self._take_failure(method, params)
        if failure is not None:
            self._record(
                RecordedCall(
                    method=method,
                    params=params,
                    headers=headers,
                    time=arrived,
                    status=failure.status,
                )
            )
            return self._failure_response(failure)
        body = self._answer(method, params, headers)
        self._record(
            RecordedCall(method=method, params=params, headers=headers, time=arrived, status=200)
        )
        delay = self._take_slow(method)
        if delay is not None:  # done already; only the answer is late (or cut by stop())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
        return web.json_response(body, headers={"x-oauth-scopes": ",".join(self.scopes)})

    @staticmethod
    def _failure_response(failure: _Failure) -> web.Response:
        if failure.status == 429:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(failure.retry_after or 1)},
            )
        if failure.body is not None:
            return web.Response(
                text=failure.body, status=failure.status, content_type=failure.content_type
            )
        return web.json_response(
            {"ok": False, "error": failure.error or "internal_error"}, status=failure.status
        )

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _answer(
        self, method: str, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        token = headers.get("Authorization", "").removeprefix("Bearer ") or params.get("token")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://standin.slack.invalid/",
                "team": "Stand-in",
                "user": "relaycheck",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = params.get("channel")
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            ts = self._next_ts()
            message = {
                "type": "message",
                "bot_id": BOT_ID,
                "user": BOT_USER_ID,
                "ts": ts,
                "text": params.get("text", ""),
                "blocks": params.get("blocks", []),
                "channel": channel,
            }
            if isinstance(params.get("metadata"), dict):
                message["metadata"] = params["metadata"]
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            with self._lock:
                self.messages[ts] = message
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            ts = str(params.get("ts", ""))
            with self._lock:
                if ts not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                message = dict(self.messages[ts])
                message.update({k: params[k] for k in ("text", "blocks") if k in params})
                self.messages[ts] = message
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "text": message["text"]}
        if method == "users.info":
            user = str(params.get("user") or "")
            if not user:
                return {"ok": False, "error": "user_not_found"}
            if self.users_info_error:
                return {"ok": False, "error": self.users_info_error}
            profile: dict[str, Any] = {"id": user, "team_id": TEAM_ID, "name": "oncall"}
            if str(params.get("include_locale", "")).lower() in ("true", "1"):
                profile["locale"] = self.user_locales.get(user, "en-US")
            return {"ok": True, "user": profile}
        if method == "chat.postEphemeral":
            if not params.get("channel") or not params.get("user"):
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "views.publish":
            view = params.get("view")
            if not isinstance(view, dict) or not params.get("user_id"):
                return {"ok": False, "error": "invalid_arguments"}
            return {
                "ok": True,
                "view": {"id": f"V{next(self._ids):08d}", "team_id": TEAM_ID, **view},
            }
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, params)
        if method == "conversations.list":
            with self._lock:
                listed = [
                    {"id": ident, "name": name, "is_channel": True, "is_private": False}
                    for ident, name in self.channels.items()
                ]
            return {"ok": True, "channels": listed, "response_metadata": {"next_cursor": ""}}
        if method == "conversations.members":
            with self._lock:
                members = self.members.get(str(params.get("channel", "")))
            if members is None:
                return {"ok": False, "error": "channel_not_found"}
            return {
                "ok": True,
                "members": sorted(members),
                "response_metadata": {"next_cursor": ""},
            }
        if method == "apps.connections.open":
            if not str(token).startswith("xapp-"):
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket/{next(self._ids)}"}
        return {"ok": False, "error": "unknown_method"}

    def _history(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Newest first, as Slack pages it; metadata only with include_all_metadata."""
        needed = "channels:history"
        if needed not in self.scopes and "groups:history" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed}
        channel = str(params.get("channel", ""))
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        with self._lock:
            found = [dict(m) for m in self.messages.values() if m.get("channel") == channel]
        if method == "conversations.replies":
            root = str(params.get("ts", ""))
            found = [m for m in found if m["ts"] == root or m.get("thread_ts") == root]
            found.sort(key=lambda m: m["ts"])
        else:
            found = [m for m in found if not m.get("thread_ts")]
            found.sort(key=lambda m: m["ts"], reverse=True)
        for message in found:
            message.pop("channel", None)
            if not with_metadata:
                message.pop("metadata", None)
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.read()
        params = json.loads(body) if body else {}
        self._record(
            RecordedCall(
                method=RESPONSE_URL,
                params=params if isinstance(params, dict) else {"body": params},
                headers=dict(request.headers),
                time=time.monotonic(),
                status=200,
                path=request.match_info["id"],
            )
        )
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                "connection_info": {"app_id": APP_ID},
            }
        )
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                with self._lock:
                    self.socket_messages.append(data)
                    envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
                    for envelope in self.envelopes:
                        if envelope.envelope_id == envelope_id and envelope.ack is None:
                            envelope.ack = data
                            envelope.acked_at = time.monotonic()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        return bool(self._sockets)

    def push(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> SocketEnvelope:
        """Send one envelope to the most recent Socket Mode connection."""
        envelope = SocketEnvelope(envelope_id=f"env-{next(self._ids)}", type=type_, payload=payload)
        with self._lock:
            self.envelopes.append(envelope)

        async def send() -> None:
            if not self._sockets:
                raise AssertionError("no Socket Mode connection to push to")
            await self._sockets[-1].send_json(
                {
                    "envelope_id": envelope.envelope_id,
                    "type": type_,
                    "payload": payload,
                    "accepts_response_payload": accepts_response_payload,
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            )

        self._run(send())
        return envelope

    def slash_command_payload(
        self,
        command: str,
        text: str,
        *,
        user_id: str = "U0ONCALL1",
        channel_id: str = "C0INCIDENT",
        response_id: str | None = None,
    ) -> dict[str, Any]:
        """The form fields Slack sends for a slash command (also used for signed HTTP bodies)."""
        rid = response_id or f"r{next(self._ids)}"
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "standin",
            "channel_id": channel_id,
            "channel_name": "incident",
            "user_id": user_id,
            "user_name": "oncall",
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.response_url_for(rid),
            "trigger_id": f"{next(self._ids)}.trigger",
        }

    def message_shortcut_payload(
        self,
        callback_id: str,
        message_text: str,
        *,
        user_id: str = "U0ONCALL1",
        channel_id: str = "C0INCIDENT",
        message_ts: str = "1700000000.000100",
        thread_ts: str | None = None,
        response_id: str | None = None,
    ) -> dict[str, Any]:
        """What Slack sends when someone picks a message shortcut on a message."""
        rid = response_id or f"r{next(self._ids)}"
        message: dict[str, Any] = {
            "type": "message",
            "user": "U0PASTER1",
            "ts": message_ts,
            "text": message_text,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "token": "legacy-verification-token",
            "action_ts": "1700000000.000200",
            "trigger_id": f"{next(self._ids)}.trigger",
            "team": {"id": TEAM_ID, "domain": "standin"},
            "user": {"id": user_id, "name": "oncall", "team_id": TEAM_ID},
            "channel": {"id": channel_id, "name": "incident"},
            "message_ts": message_ts,
            "message": message,
            "response_url": self.response_url_for(rid),
        }

    def push_message_shortcut(
        self, callback_id: str, message_text: str, **kwargs: Any
    ) -> SocketEnvelope:
        return self.push(
            "interactive", self.message_shortcut_payload(callback_id, message_text, **kwargs)
        )

    def push_slash_command(self, command: str, text: str, **kwargs: Any) -> SocketEnvelope:
        return self.push(
            "slash_commands",
            self.slash_command_payload(command, text, **kwargs),
            accepts_response_payload=True,
        )

    def block_action_payload(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str = "U0ONCALL1",
        channel_id: str = "C0INCIDENT",
        response_id: str | None = None,
        block_id: str = "actions",
    ) -> dict[str, Any]:
        rid = response_id or f"r{next(self._ids)}"
        return {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "standin"},
            "user": {"id": user_id, "username": "oncall", "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {"type": "message", "channel_id": channel_id, "is_ephemeral": True},
            "trigger_id": f"{next(self._ids)}.trigger",
            "channel": {"id": channel_id, "name": "incident"},
            "response_url": self.response_url_for(rid),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "action_ts": "1700000000.000001",
                    "text": {"type": "plain_text", "text": "button"},
                }
            ],
        }

    def push_block_action(self, action_id: str, value: str, **kwargs: Any) -> SocketEnvelope:
        return self.push("interactive", self.block_action_payload(action_id, value, **kwargs))

    def push_app_home_opened(self, user_id: str = "U0ONCALL1") -> SocketEnvelope:
        return self.push(
            "events_api",
            {
                "token": "legacy-verification-token",
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
                "event": {
                    "type": "app_home_opened",
                    "user": user_id,
                    "channel": "D0HOME",
                    "tab": "home",
                    "event_ts": f"{time.time():.6f}",
                },
                "authorizations": [
                    {
                        "team_id": TEAM_ID,
                        "user_id": BOT_USER_ID,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
            },
        )

    def wait_for_ack(self, envelope: SocketEnvelope, timeout: float = 5.0) -> dict[str, Any]:
        self.wait_until(lambda: envelope.ack is not None, timeout)
        assert envelope.ack is not None
        return envelope.ack

    async def ack_for(self, envelope: SocketEnvelope, within: float = 5.0) -> dict[str, Any]:
        await self.await_until(lambda: envelope.ack is not None, within)
        assert envelope.ack is not None
        return envelope.ack


@pytest.fixture
def slack_api() -> Iterator[SlackApiStandIn]:
    """A fresh Slack stand-in on 127.0.0.1 for one test."""
    standin = SlackApiStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


async def press_alert_button(
    app: Any,
    api: SlackApiStandIn,
    action: str,
    value: str,
    blocks: list[dict[str, object]] | None = None,
) -> int:
    """On-call presses `action` on an alert posted in C0ALERTS: a signed-off block_actions
    request dispatched into the real bolt `app`; returns the HTTP status of its ack."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    payload = api.block_action_payload(action, value, user_id="U0ONCALL1", channel_id="C0ALERTS")
    payload["message"] = {"ts": "1700000000.000009", "text": "alert", "blocks": blocks or []}
    payload["container"] = {
        "type": "message",
        "channel_id": "C0ALERTS",
        "message_ts": "1700000000.000009",
    }
    body = urlencode({"payload": json.dumps(payload)})
    response = await app.async_dispatch(
        AsyncBoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
    )
    return int(response.status)

"""The bolt app: one `AsyncApp` (aiohttp), wired with relaycheck's listeners.

`build_app` is the one entry point tests and `serve` share, so tests drive exactly the app that
runs in production, swapping only the transport (a signed HTTP request or a Socket Mode envelope
from the loopback stand-in, Web API calls to `[slack] api_url`). One async model: probes are
async, bolt's AsyncApp is async, so there is no sync twin to keep in step.

`process_before_response` stays off: bolt acknowledges as soon as a listener calls `ack()` and
lets the listener keep working (probing, explaining) afterwards, answering through
`response_url`. That is how a 10-second STARTTLS probe fits Slack's 3-second limit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.alerting.delivery import error_kind
from bot.alerting.store import Store
from bot.slack.access import Access
from bot.slack.listeners import actions, commands, home
from bot.slack.listeners.common import Deps
from bot.slack.settings import Settings
from checks.model import Config, SlackMode
from checks.rules.chain import TrustAnchors

_log = logging.getLogger("relaycheck.slack")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def utc_now() -> datetime:
    return datetime.now(UTC)


class RelaycheckApp(AsyncApp):
    """bolt's AsyncApp whose HTTP endpoint checks the signature before anything else.

    Why: bolt's own aiohttp server decodes and parses the body (form, `payload=` JSON) before
    its signature middleware runs, so an unsigned `payload={` or a non-UTF-8 body became an
    HTTP 500 with a 2 KB traceback in the log, for anyone who can reach the URL. Here the raw
    body is verified with slack_sdk's `SignatureVerifier` first; whatever fails is answered
    401 (the access log's one short line; nothing else), and a signed body that still cannot be parsed gets 400."""

    def __init__(self, *, signing_secret: str, **kwargs: object) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)  # type: ignore[arg-type]
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.access: Access | None = None

    async def prepare(self) -> None:
        """At start: resolve `[slack] allowed_channels` names to channel ids, once."""
        if self.access is not None:
            await self.access.resolve(self.client)

    def web_app(self, path: str = "/slack/events", port: int = 3000) -> web.Application:
        del port  # the caller's runner decides where to listen
        application = web.Application()
        application.router.add_post(path, self._handle_post)
        return application

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            body = None  # Slack signs UTF-8 text: this was not sent by Slack
        if (
            self._verifier is None
            or body is None
            or not _TIMESTAMP.fullmatch(timestamp)
            or not signature.startswith("v0=")
            or not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        ):
            # DEBUG: the access log already has one short line for it; a flood of forged
            # requests must not flood the log twice over
            _log.debug("refused a request without a valid Slack signature (HTTP 401)")
            return web.Response(status=401, text="invalid request signature")
        try:
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=dict(request.headers),
            )
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as err:
            _log.warning("refused a signed request that cannot be parsed (%s)", type(err).__name__)
            return web.Response(status=400, text="malformed request")
        response = await self.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)


class CountingWebClient(AsyncWebClient):
    """The app's Web API client, telling `on_api_error(kind)` of every call that failed
    (after slack_sdk's own retries), so /metrics counts what the listeners met, too. The
    outbox worker counts its own calls (it uses a twin of this client without retries)."""

    def __init__(
        self, *args: Any, on_api_error: Callable[[str], None] | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.on_api_error = on_api_error

    async def api_call(self, *args: Any, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(*args, **kwargs)
        except SlackApiError as err:
            self._count(error_kind(err))
            raise
        except (aiohttp.ClientError, TimeoutError, OSError):
            self._count("network")
            raise

    def _count(self, kind: str) -> None:
        if self.on_api_error is not None:
            self.on_api_error(kind)


def build_client(
    config: Config, settings: Settings, *, on_api_error: Callable[[str], None] | None = None
) -> AsyncWebClient:
    """The Web API client for `[slack] api_url` (GovSlack, or a test stand-in).

    It owns one aiohttp session, so Web API calls and `/relaycheck` answers (see
    `commands.answerer`) reuse kept-alive connections instead of a new TLS connection per call.
    Call it inside the running event loop, and close `client.session` when done (`serve` does).
    """
    token = settings.bot_token.reveal() if settings.bot_token is not None else None
    return CountingWebClient(
        token=token,
        base_url=config.slack.api_url,
        session=aiohttp.ClientSession(),
        on_api_error=on_api_error,
    )


def build_app(
    config: Config,
    settings: Settings,
    *,
    client: AsyncWebClient | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] = utc_now,
    anchors: TrustAnchors | None = None,
) -> RelaycheckApp:
    """Build the bolt app for `settings.mode`; `store` None means "no scan has run yet"."""
    if settings.bot_token is None:
        raise ValueError("build_app needs Slack tokens; console mode runs without an app")
    web = client or build_client(config, settings)
    http = settings.mode is SlackMode.HTTP
    secret = settings.signing_secret.reveal() if settings.signing_secret is not None else ""
    app = RelaycheckApp(
        name="relaycheck",
        client=web,
        signing_secret=secret,
        # Socket Mode traffic is not signed (the WebSocket is authenticated by the app token);
        # HTTP requests always are, and an unsigned one is answered 401 by bolt.
        request_verification_enabled=http,
        process_before_response=False,
    )
    deps = Deps(config=config, store=store, clock=clock, anchors=anchors)
    app.access = deps.access
    commands.register(app, deps)
    home.register(app, deps)
    actions.register(app, store, clock=clock, language=config.locale.effective)
    return app

"""Slack in the user's language, and the "Explain this bounce" message shortcut.

The real bolt app over Socket Mode (and once over signed HTTP) to the loopback stand-in:
users.info tells each user's locale, answers follow it, channel posts follow `[locale]`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.runtime.serve import EVENTS_PATH
from bot.slack.app import build_app, build_client
from bot.slack.listeners.commands import SHORTCUT_CALLBACK_ID
from bot.slack.settings import Secret, Settings
from checks.i18n import Language
from checks.model import Config, LocaleSettings, SlackMode
from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import SIGNING_SECRET, form, signed_headers, tenant_config

REPO = Path(__file__).resolve().parents[2]
SOCKET = Settings(
    mode=SlackMode.SOCKET, bot_token=Secret("xoxb-1-test"), app_token=Secret("xapp-1-test")
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
NDR = (
    "Delivery has failed to these recipients or groups:\n\nkate@tailspintoys.com\n"
    "Remote Server returned '550 5.7.64 TenantAttribution; Relay Access Denied SMTP'\n\n"
    "Nov 20 09:12:01 mx1 postfix/smtp[1]: to=<a@b.example>, dsn=4.4.62, status=deferred "
    "(host x said: 451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35. (in reply to "
    "end of DATA command))"
)

Runner = Callable[..., Any]


@pytest.fixture
async def run_bot(slack_api: SlackApiStandIn) -> AsyncIterator[Runner]:
    handlers: list[tuple[AsyncSocketModeHandler, Any]] = []

    async def start(config: Config) -> None:
        config = replace(config, slack=replace(config.slack, api_url=slack_api.base_url))
        client = build_client(config, SOCKET)
        app = build_app(config, SOCKET, client=client)
        handler = AsyncSocketModeHandler(app, app_token="xapp-1-test", web_client=client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        handlers.append((handler, client))
        await slack_api.await_until(lambda: slack_api.socket_connected)

    yield start
    for handler, client in handlers:
        await handler.close_async()  # type: ignore[no-untyped-call]
        if client.session is not None:
            await client.session.close()
    await asyncio.sleep(0)


def _shown(payload: dict[str, Any]) -> str:
    return json.dumps(payload.get("blocks") or [], ensure_ascii=False) + str(payload.get("text"))


async def test_each_user_is_answered_in_their_own_locale(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    slack_api.user_locales.update({"U0TOKYO01": "ja-JP", "U0LONDON1": "en-GB"})
    await run_bot(tenant_config(tmp_path, with_certificate=False))
    tokyo = slack_api.push_slash_command(
        "/relaycheck",
        "triage 451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36",
        user_id="U0TOKYO01",
    )
    london = slack_api.push_slash_command(
        "/relaycheck",
        "triage 451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36",
        user_id="U0LONDON1",
    )
    ja = (await slack_api.ack_for(tokyo, within=3))["payload"]
    en = (await slack_api.ack_for(london, within=3))["payload"]
    assert "一時的エラー (4.x.x)" in _shown(ja)
    assert "2016 年の Microsoft のお知らせ (KB 3169958)" in _shown(ja)
    assert "Exchange Online: 451 4.4.4 ATTR36" in _shown(ja)  # the code as pasted, untranslated
    assert "temporary failure (4.x.x)" in _shown(en)
    assert not JAPANESE.search(_shown(en))
    asked = slack_api.received("users.info")
    assert {c.params["user"] for c in asked} == {"U0TOKYO01", "U0LONDON1"}
    assert all(str(c.params["include_locale"]).lower() in ("true", "1") for c in asked)

    # a second question: the locale is remembered, not asked again
    again = slack_api.push_slash_command("/relaycheck", "help", user_id="U0TOKYO01")
    helped = (await slack_api.ack_for(again, within=3))["payload"]
    assert helped["text"] == "relaycheck の使い方"
    assert len(slack_api.received("users.info")) == 2


async def test_without_users_read_the_configured_language_answers(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    slack_api.users_info_error = "missing_scope"
    config = tenant_config(tmp_path, with_certificate=False)
    await run_bot(replace(config, locale=LocaleSettings(language=Language.JA)))
    asked = slack_api.push_slash_command(
        "/relaycheck", "triage 550 5.7.64 Relay Access Denied ATTR36"
    )
    payload = (await slack_api.ack_for(asked, within=3))["payload"]
    assert "恒久的エラー (5.x.x)" in _shown(payload)
    assert "唯一の OnPremises コネクタ" in _shown(payload)  # what this tenant says


async def test_explain_this_bounce_answers_in_the_thread_every_status_in_order(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path, with_certificate=False))
    envelope = slack_api.push_message_shortcut(
        SHORTCUT_CALLBACK_ID, NDR + " <!channel>", message_ts="1700000000.000100"
    )
    await slack_api.ack_for(envelope, within=3)
    await slack_api.await_until(lambda: bool(slack_api.received("chat.postMessage")))
    (post,) = slack_api.received("chat.postMessage")
    assert post.params["channel"] == "C0INCIDENT"
    assert post.params["thread_ts"] == "1700000000.000100"
    shown = json.dumps(post.params["blocks"])
    first = shown.index("550 5.7.64 TenantAttribution")
    second = shown.index("451 4.4.62 ATTR35")
    assert first < second
    assert "2 different statuses in the text" in shown
    assert "<!channel>" not in shown


async def test_explain_this_bounce_falls_back_to_an_ephemeral_answer(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    slack_api.user_locales["U0TOKYO01"] = "ja-JP"
    await run_bot(tenant_config(tmp_path, with_certificate=False))
    slack_api.fail_next("chat.postMessage", error="not_in_channel", status=200)
    envelope = slack_api.push_message_shortcut(
        SHORTCUT_CALLBACK_ID,
        "450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]",
        user_id="U0TOKYO01",
    )
    await slack_api.ack_for(envelope, within=3)
    await slack_api.await_until(lambda: bool(slack_api.received("chat.postEphemeral")))
    (ephemeral,) = slack_api.received("chat.postEphemeral")
    assert ephemeral.params["user"] == "U0TOKYO01"
    assert "中間証明書" in json.dumps(ephemeral.params["blocks"], ensure_ascii=False)


async def test_a_message_without_a_reply_gets_the_help_not_silence(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path, with_certificate=False))
    envelope = slack_api.push_message_shortcut(SHORTCUT_CALLBACK_ID, "lunch at noon?")
    await slack_api.ack_for(envelope, within=3)
    await slack_api.await_until(lambda: bool(slack_api.received("chat.postMessage")))
    assert "no Exchange Online reply recognised" in str(
        slack_api.received("chat.postMessage")[0].params
    )


async def test_the_shortcut_over_signed_http(tmp_path: Path, slack_api: SlackApiStandIn) -> None:
    settings = Settings(
        mode=SlackMode.HTTP, bot_token=Secret("xoxb-1-test"), signing_secret=Secret(SIGNING_SECRET)
    )
    config = tenant_config(
        tmp_path, with_certificate=False, slack={"mode": "http", "api_url": slack_api.base_url}
    )
    client = build_client(config, settings)
    app = build_app(config, settings, client=client)
    runner = web.AppRunner(app.web_app(path=EVENTS_PATH), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{EVENTS_PATH}"
    try:
        payload = slack_api.message_shortcut_payload(SHORTCUT_CALLBACK_ID, NDR)
        body = form({"payload": json.dumps(payload)})
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=body, headers=signed_headers(body)) as r:
                assert r.status == 200
            async with session.post(
                url, data=body, headers=signed_headers(body, secret="wrong")
            ) as r:
                assert r.status == 401
        await slack_api.await_until(lambda: bool(slack_api.received("chat.postMessage")))
        assert len(slack_api.received("chat.postMessage")) == 1
    finally:
        await runner.cleanup()
        if client.session is not None:
            await client.session.close()


@pytest.mark.parametrize("name", ["slack-manifest.socket.yaml", "slack-manifest.http.yaml"])
def test_both_manifests_declare_the_shortcut_and_users_read(name: str) -> None:
    text = (REPO / "deploy" / name).read_text(encoding="utf-8")
    shortcuts = text[text.index("  shortcuts:") : text.index("oauth_config:")]
    assert "callback_id: relaycheck_triage" in shortcuts
    assert "type: message" in shortcuts
    assert "name: Explain this bounce" in shortcuts
    scopes = text[text.index("    bot:") : text.index("settings:")]
    assert re.search(r"^\s+- users:read\b", scopes, re.MULTILINE)

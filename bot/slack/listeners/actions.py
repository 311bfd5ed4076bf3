"""The alert buttons: Acknowledge, Snooze 1 day, Snooze 7 days (Runbook is a plain link).

A button carries the id of the event whose message it sits on; the store knows which findings
that message was about (a grouped alert covers several), and every one of them is acknowledged
or snoozed, recording who pressed it and when. The message is then edited in place to show it,
so the channel sees who owns the problem without a new message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.alerts import (
    ACK_ACTION,
    RUNBOOK_ACTION,
    SNOOZE_1D_ACTION,
    SNOOZE_7D_ACTION,
    with_status,
)
from bot.alerting.delivery import slack_error
from bot.alerting.store import StateError, Store
from checks.i18n import Language, _, format_moment, using

log = logging.getLogger("relaycheck.actions")

SNOOZES = {SNOOZE_1D_ACTION: timedelta(days=1), SNOOZE_7D_ACTION: timedelta(days=7)}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def register(
    app: AsyncApp,
    store: Store | None,
    *,
    clock: Callable[[], datetime] = _utc_now,
    language: Language = Language.EN,
) -> None:
    """Wire the alert buttons; without a store (nothing to record into) there are none."""
    if store is None:
        return

    async def handle(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        with using(language):  # the alert is the channel's: its status line speaks [locale]
            await _handle(body, respond, client)

    async def _handle(body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        assert store is not None
        action = (body.get("actions") or [{}])[0]
        action_id = str(action.get("action_id", ""))
        event_id = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id") or "someone")
        now = clock()
        keys = store.keys_for_event(event_id)
        if not keys:
            await respond(
                text=_("relaycheck no longer knows this alert"),
                response_type="ephemeral",
                replace_original=False,
            )
            return
        try:
            if action_id == ACK_ACTION:
                store.acknowledge_all(keys, user, now)  # the whole group, or none of it
                status = ":eyes: " + _("Acknowledged by {user} at {when}").format(
                    user=f"<@{user}>", when=format_moment(now)
                )
            else:
                until = now + SNOOZES[action_id]
                store.snooze_all(keys, until, user, now)
                status = ":zzz: " + _(
                    "Snoozed by {user} until {when} (an escalation still alerts)"
                ).format(user=f"<@{user}>", when=format_moment(until))
        except StateError as err:
            await respond(
                text=f"relaycheck: {err}", response_type="ephemeral", replace_original=False
            )
            return
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
        if not (channel and ts and message.get("blocks")):
            return
        try:
            await client.chat_update(
                channel=channel,
                ts=ts,
                text=message.get("text") or "relaycheck alert",
                blocks=with_status(message["blocks"], status),
            )
        except SlackApiError as err:
            # recorded in the store already; the message just does not show it yet
            log.warning("could not update alert message %s: %s", ts, slack_error(err).code)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            log.warning("could not update alert message %s: %s", ts, type(err).__name__)

    for action_id in (ACK_ACTION, *SNOOZES):
        app.action(action_id)(handle)

    @app.action(RUNBOOK_ACTION)
    async def runbook(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL, the app only acknowledges

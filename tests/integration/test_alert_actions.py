"""Alert buttons through the real bolt app, Web API calls to the loopback stand-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.alerts import ACK_ACTION, SNOOZE_7D_ACTION, render_event
from bot.alerting.store import Store
from bot.records import RunRecord
from bot.slack.listeners import actions
from checks.model import AlertSettings, CheckId, Finding, Severity
from checks.rules.lifecycle import Policy, advance
from tests.fakes.slack import SlackApiStandIn, press_alert_button

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def seeded(tmp_path: Path) -> tuple[Store, str, list[dict[str, object]]]:
    store = Store.open(tmp_path / "state.sqlite3", channel="C0ALERTS")
    findings = [
        Finding(
            check=CheckId.CERT_EXPIRY,
            severity=Severity.WARNING,
            subject="smarthost",
            message="expires in 20 days",
            details={"days_left": 20, "fingerprint_sha256": "ab" * 32},
            cause=cause,
        )
        for cause in ("192.0.2.1", "192.0.2.2")
    ]
    result = advance({}, findings, now=NOW, policy=Policy())
    (event,) = result.events
    drafts = render_event(event, AlertSettings())
    store.record_cycle(
        run=RunRecord(started_at=NOW, finished_at=NOW, ok=True),
        states=result.states,
        drafts=drafts,
        now=NOW,
    )
    return store, event.id, list(drafts[0].blocks)


def app_for(api: SlackApiStandIn, store: Store) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-test", base_url=api.base_url),
        signing_secret="unused",
        request_verification_enabled=False,
        process_before_response=True,
    )
    actions.register(app, store, clock=lambda: NOW + timedelta(minutes=5))
    return app


async def test_acknowledge_records_who_for_every_grouped_finding(
    tmp_path: Path, slack_api: SlackApiStandIn
) -> None:
    store, event_id, blocks = seeded(tmp_path)
    try:
        app = app_for(slack_api, store)
        assert await press_alert_button(app, slack_api, ACK_ACTION, event_id, blocks) == 200
        items = store.open_findings(now=NOW + timedelta(minutes=6))
        assert [i.acknowledged_by for i in items] == ["U0ONCALL1", "U0ONCALL1"]
        (update,) = slack_api.received("chat.update")
        assert update.params["ts"] == "1700000000.000009"
        assert "Acknowledged by <@U0ONCALL1>" in json.dumps(update.params["blocks"])
    finally:
        store.close()


async def test_snooze_seven_days(tmp_path: Path, slack_api: SlackApiStandIn) -> None:
    store, event_id, blocks = seeded(tmp_path)
    try:
        app = app_for(slack_api, store)
        assert await press_alert_button(app, slack_api, SNOOZE_7D_ACTION, event_id, blocks) == 200
        items = store.open_findings(now=NOW + timedelta(days=1))
        assert {i.snoozed_until for i in items} == {NOW + timedelta(minutes=5, days=7)}
        assert "Snoozed by <@U0ONCALL1>" in json.dumps(slack_api.received("chat.update")[0].params)
    finally:
        store.close()


async def test_unknown_alert_changes_nothing(tmp_path: Path, slack_api: SlackApiStandIn) -> None:
    store, _, blocks = seeded(tmp_path)
    try:
        app = app_for(slack_api, store)
        assert await press_alert_button(app, slack_api, ACK_ACTION, "opened:nope", blocks) == 200
        assert store.acks() == {}
        assert slack_api.received("chat.update") == []
        assert "no longer knows" in json.dumps([c.params for c in slack_api.responses()])
    finally:
        store.close()

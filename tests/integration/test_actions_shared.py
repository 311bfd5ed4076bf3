"""Buttons work on whichever replica receives them: two bolt apps, each with its own store
connection to one PostgreSQL database (and to one sqlite file), as two replicas would have."""

from __future__ import annotations

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


def replica_app(api: SlackApiStandIn, store: Store) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-test", base_url=api.base_url),
        signing_secret="unused",
        request_verification_enabled=False,
        process_before_response=True,
    )
    actions.register(app, store, clock=lambda: NOW + timedelta(minutes=5))
    return app


async def test_a_button_pressed_on_the_other_replica(
    state_where: str | Path, slack_api: SlackApiStandIn
) -> None:
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
    with (
        Store.open(state_where, channel="C0ALERTS", tenant="contoso") as leader,
        Store.open(state_where, channel="C0ALERTS", tenant="contoso") as other,
    ):
        result = advance({}, findings, now=NOW, policy=Policy())
        (event,) = result.events
        leader.record_cycle(
            run=RunRecord(started_at=NOW, finished_at=NOW, ok=True),
            states=result.states,
            drafts=render_event(event, AlertSettings()),
            now=NOW,
        )
        # the leader queued the alert; the click arrives at the other replica
        assert (
            await press_alert_button(replica_app(slack_api, other), slack_api, ACK_ACTION, event.id)
            == 200
        )
        assert (
            await press_alert_button(
                replica_app(slack_api, other), slack_api, SNOOZE_7D_ACTION, event.id
            )
            == 200
        )
        seen = {o.finding.cause: o for o in leader.open_findings(now=NOW + timedelta(hours=1))}
        assert {c: o.acknowledged_by for c, o in seen.items()} == {
            "192.0.2.1": "U0ONCALL1",
            "192.0.2.2": "U0ONCALL1",
        }
        assert all(o.snoozed_until is not None for o in seen.values())
        assert leader.for_tenant("fabrikam").acks() == {}

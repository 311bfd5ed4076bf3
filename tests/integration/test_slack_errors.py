"""Slack answering 5xx with a body that is not JSON (a proxy's HTML, plain text): every
listener still answers the user in one line, and nothing raises (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.alerting.alerts import ACK_ACTION
from tests.fakes.slack import SlackApiStandIn, press_alert_button
from tests.integration.slack_support import Runner, tenant_config
from tests.integration.test_alert_actions import NOW, app_for, seeded

BODIES = [
    ("<html><body>502 Bad Gateway</body></html>", "text/html"),
    ("upstream connect error", "text/plain"),
    ('{"ok": false, "error": "fatal_error"', "application/json"),  # cut short
]


@pytest.mark.parametrize(("body", "content_type"), BODIES, ids=["html", "text", "cut-json"])
async def test_share_gets_a_reply_when_slack_answers_garbage(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, body: str, content_type: str
) -> None:
    await run_bot(tenant_config(tmp_path))
    slack_api.fail_next("chat.postMessage", status=503, body=body, content_type=content_type)
    share = slack_api.push_block_action(
        "relaycheck_share", "<> -> kate@tailspintoys.com", response_id="s1"
    )
    await slack_api.ack_for(share)
    await slack_api.await_until(lambda: bool(slack_api.responses("s1")), within=10)
    said = json.dumps(slack_api.responses("s1")[0].params)
    assert "Slack refused to post it" in said
    assert "503" in said


@pytest.mark.parametrize(("body", "content_type"), BODIES, ids=["html", "text", "cut-json"])
async def test_acknowledge_is_recorded_when_the_message_edit_gets_garbage(
    tmp_path: Path, slack_api: SlackApiStandIn, body: str, content_type: str
) -> None:
    store, event_id, blocks = seeded(tmp_path)
    try:
        slack_api.fail_next("chat.update", status=503, body=body, content_type=content_type)
        app = app_for(slack_api, store)
        assert await press_alert_button(app, slack_api, ACK_ACTION, event_id, blocks) == 200
        items = store.open_findings(now=NOW)
        assert [i.acknowledged_by for i in items] == ["U0ONCALL1", "U0ONCALL1"]
        assert [c.status for c in slack_api.received("chat.update")] == [503]
    finally:
        store.close()

"""Slack answers and App Home neutralise control, bidi and zero-width characters (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

from checks.config import parse_config
from tests.e2e.test_hostile_text import REPAINT, SPOOF
from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import Runner


async def test_slack_answers_neutralise_bidi_and_control_characters(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    raw = {
        "tenant": {"name": SPOOF, "accepted_domains": ["contoso.com"]},
        "connectors": [{"name": f"IP {SPOOF}{REPAINT}", "sender_ip_addresses": ["203.0.113.10"]}],
    }
    await run_bot(parse_config(raw, base_dir=tmp_path))
    slack_api.push_slash_command(
        "/relaycheck", "kate@contoso.com -> x@tailspintoys.com", response_id="x"
    )
    await slack_api.await_until(lambda: bool(slack_api.responses("x")))
    answer = json.dumps(slack_api.responses("x")[0].params, ensure_ascii=False)
    home = slack_api.push_app_home_opened("U0ONCALL1")
    await slack_api.ack_for(home)
    await slack_api.await_until(lambda: bool(slack_api.received("views.publish")))
    view = json.dumps(slack_api.received("views.publish")[0].params["view"], ensure_ascii=False)
    ack = slack_api.push_slash_command("/relaycheck", f"what {SPOOF} <!channel>")
    echoed = json.dumps(await slack_api.ack_for(ack), ensure_ascii=False)
    for text in (answer, view, echoed):
        assert "\u202e" not in text
        assert "\u200b" not in text
        assert "\x1b" not in text
        # visible: U+202E, or Python's repr escape where the input is quoted back
        assert "U+202E" in text or "\\\\u202e" in text
    assert "\\\\x1b[32mOK" in answer  # JSON-encoded form of the visible `\x1b`
    assert "<!channel>" not in echoed

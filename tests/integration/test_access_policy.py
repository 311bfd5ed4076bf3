"""App Home and `/relaycheck` follow one access policy (issue 15), through the real bolt app
over Socket Mode to the stand-in: `[slack] allowed_users`, `allowed_channels` membership, and
channel names resolved to ids once at start."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import IP_CONNECTOR, Runner, tenant_config

SECRET_BITS = ("contoso.com", "On-prem IP", "Connectors")


async def home_for(slack_api: SlackApiStandIn, user: str) -> str:
    before = len(slack_api.received("views.publish"))
    envelope = slack_api.push_app_home_opened(user)
    await slack_api.ack_for(envelope)
    await slack_api.await_until(lambda: len(slack_api.received("views.publish")) > before)
    call = slack_api.received("views.publish")[before]
    assert call.params["user_id"] == user
    return json.dumps(call.params["view"])


async def command(slack_api: SlackApiStandIn, text: str, **where: str) -> str:
    envelope = slack_api.push_slash_command("/relaycheck", text, **where)
    return json.dumps(await slack_api.ack_for(envelope))


async def test_allowed_users_gate_app_home_and_status(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path, slack={"allowed_users": ["U0ONCALL1"]}))
    stranger = await home_for(slack_api, "U0STRANGER")
    assert all(bit not in stranger for bit in SECRET_BITS)
    assert "allowed_users" in stranger
    allowed = await home_for(slack_api, "U0ONCALL1")
    assert "contoso.com" in allowed
    assert "On-prem IP" in allowed
    refused = await command(slack_api, "status", user_id="U0STRANGER")
    assert "not enabled for you" in refused
    status = slack_api.push_slash_command("/relaycheck", "status", response_id="st")
    await slack_api.ack_for(status)
    await slack_api.await_until(lambda: bool(slack_api.responses("st")))


async def test_allowed_channels_membership_gates_app_home(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    slack_api.members = {"C0OPS": {"U0ONCALL1"}}
    await run_bot(tenant_config(tmp_path, slack={"allowed_channels": ["C0OPS"]}))
    member = await home_for(slack_api, "U0ONCALL1")
    assert "On-prem IP" in member
    outsider = await home_for(slack_api, "U0OUTSIDE")
    assert all(bit not in outsider for bit in SECRET_BITS)
    assert IP_CONNECTOR not in outsider
    assert [c.params["channel"] for c in slack_api.received("conversations.members")] == ["C0OPS"]


async def test_channel_names_are_resolved_to_ids_once_and_match_only_that_id(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    slack_api.channels = {"C0OPS": "ops", "C0OTHER": "general"}
    await run_bot(tenant_config(tmp_path, slack={"allowed_channels": ["#ops", "#nowhere"]}))
    ok = await command(slack_api, "help", channel_id="C0OPS")
    assert "Examples" in ok
    # another channel that calls itself ops (a rename, a shared channel) is not the one listed
    impostor = slack_api.slash_command_payload("/relaycheck", "help", channel_id="C0FAKE")
    impostor["channel_name"] = "ops"
    envelope = slack_api.push("slash_commands", impostor, accepts_response_payload=True)
    assert "not enabled in this channel" in json.dumps(await slack_api.ack_for(envelope))
    again = await command(slack_api, "help", channel_id="C0OPS")
    assert "Examples" in again
    assert len(slack_api.received("conversations.list")) == 1


async def test_without_a_policy_everyone_sees_app_home(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path))
    assert "On-prem IP" in await home_for(slack_api, "U0ANYONE")
    assert slack_api.received("conversations.members") == []

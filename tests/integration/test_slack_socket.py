"""Socket Mode: the real bolt app over a WebSocket to the loopback stand-in.

apps.connections.open returns the stand-in's WebSocket URL; envelopes pushed there are
acknowledged by bolt, answers go to response_url, shares to chat.postMessage, App Home to
views.publish: all recorded by the stand-in on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.mrkdwn import escape_mrkdwn
from checks.config import parse_config
from checks.model import Severity
from checks.rules.tenant import merge_tenant
from checks.scan import certificate_stage
from checks.stages import ScanContext
from tests.fakes.pki import Issued, Pki
from tests.fakes.slack import SlackApiStandIn
from tests.integration.slack_support import (
    CERT_CONNECTOR,
    Runner,
    tenant_config,
)


async def test_explain_is_acked_then_answered_and_shared(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path))
    envelope = slack_api.push_slash_command(
        "/relaycheck", "<> -> kate@tailspintoys.com", response_id="q1"
    )
    ack = await slack_api.ack_for(envelope, within=3)
    assert ack["envelope_id"] == envelope.envelope_id
    await slack_api.await_until(lambda: bool(slack_api.responses("q1")))
    blocks = str(slack_api.responses("q1")[0].params["blocks"])
    assert "(`ndr`)" in blocks
    assert "*Relayed*" in blocks
    assert "Cert &lt;@U123&gt; &amp; more" in blocks
    assert CERT_CONNECTOR not in blocks
    assert "mail.contoso.com" in blocks
    assert "days left" in blocks
    assert "trusted" in blocks

    share = slack_api.push_block_action(
        "relaycheck_share", "<> -> kate@tailspintoys.com", channel_id="C0INCIDENT"
    )
    await slack_api.ack_for(share, within=3)
    await slack_api.await_until(lambda: bool(slack_api.received("chat.postMessage")))
    post = slack_api.received("chat.postMessage")[0]
    assert post.params["channel"] == "C0INCIDENT"
    shared = str(post.params["blocks"])
    assert "(`ndr`)" in shared
    assert "shared by <@U0ONCALL1>" in shared
    assert "relaycheck_share" not in shared  # no second button in the channel copy


async def test_help_status_and_channel_restrictions(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    config = tenant_config(tmp_path, with_certificate=False, slack={"allowed_channels": ["C0OK"]})
    await run_bot(config)
    refused = slack_api.push_slash_command("/relaycheck", "help", channel_id="C0OTHER")
    assert "not enabled in this channel" in str(await slack_api.ack_for(refused))
    empty = slack_api.push_slash_command("/relaycheck", "", channel_id="C0OK")
    ack = await slack_api.ack_for(empty)
    assert "no input given" in str(ack["payload"])
    assert "Examples" in str(ack["payload"])
    status = slack_api.push_slash_command(
        "/relaycheck", "status", channel_id="C0OK", response_id="s"
    )
    await slack_api.ack_for(status)
    await slack_api.await_until(lambda: bool(slack_api.responses("s")))
    assert "no scan has run yet" in str(slack_api.responses("s")[0].params["blocks"])


async def test_app_home_is_published(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path))
    envelope = slack_api.push_app_home_opened("U0ONCALL1")
    await slack_api.ack_for(envelope)
    await slack_api.await_until(lambda: bool(slack_api.received("views.publish")))
    call = slack_api.received("views.publish")[0]
    assert call.params["user_id"] == "U0ONCALL1"
    view = str(call.params["view"])
    assert "Contoso &lt;!here&gt;" not in view  # header is plain text: shown literally
    assert "relaycheck: Contoso <!here>" in view
    assert "On-prem IP &lt;!channel&gt; &amp; co" in view
    assert "contoso.com" in view
    assert "no scan has run yet" in view


async def test_cert_probe_of_a_configured_endpoint_and_ad_hoc_hosts(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, pki: Any, smtp_server: Any
) -> None:
    server = await smtp_server(kind="good", chain=pki.leaf(("mail.contoso.com",)))
    raw = smarthost_config(
        pki,
        server.port,
        slack={"probe_allowed_domains": ["localhost"], "allow_private_targets": False},
    )
    await run_bot(parse_config(raw, base_dir=tmp_path))
    probe = slack_api.push_slash_command("/relaycheck", "cert smarthost", response_id="c1")
    assert "Probing smarthost" in str(await slack_api.ack_for(probe, within=3))
    await slack_api.await_until(lambda: bool(slack_api.responses("c1")))
    answer = _text(slack_api.responses("c1")[0].params["blocks"])
    assert "127.0.0.1 port" in answer
    assert "mail.contoso.com" in answer
    assert "days left" in answer
    assert "every check passed" in answer
    assert "`cert-chain`" in answer  # named among the checks that passed
    assert "`cert-expiry`" in answer
    assert _problems(answer) == set()

    for text, rid, reason in (
        (f"cert localhost:{server.port}", "c2", "private, loopback or link-local"),
        (f"cert 127.0.0.1:{server.port}", "c3", "is an IP address"),
        ("cert evil.example:25", "c4", "not within [slack] probe_allowed_domains"),
    ):
        envelope = slack_api.push_slash_command("/relaycheck", text, response_id=rid)
        await slack_api.ack_for(envelope)
        await slack_api.await_until(lambda rid=rid: bool(slack_api.responses(rid)))
        assert reason in str(slack_api.responses(rid)[0].params["blocks"])
    assert server.connections == 1  # only the configured endpoint was ever contacted


async def test_ad_hoc_loopback_probe_when_private_targets_are_allowed(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner, pki: Any, smtp_server: Any
) -> None:
    server = await smtp_server(kind="good", chain=pki.leaf(("mail.contoso.com",)))
    raw = {
        "tenant": {"name": "Contoso", "accepted_domains": ["contoso.com"]},
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {"timeout_seconds": 2, "deadline_seconds": 5},
        "slack": {"probe_allowed_domains": ["localhost"], "allow_private_targets": True},
    }
    await run_bot(parse_config(raw, base_dir=tmp_path))
    envelope = slack_api.push_slash_command(
        "/relaycheck", f"cert localhost:{server.port}", response_id="c5"
    )
    await slack_api.ack_for(envelope)
    await slack_api.await_until(lambda: bool(slack_api.responses("c5")), within=8)
    answer = _text(slack_api.responses("c5")[0].params["blocks"])
    # the certificate names mail.contoso.com; an ad-hoc host is judged as a smart host
    assert "*critical* `cert-hostname` certificate does not cover localhost" in answer
    assert server.connections >= 1


def smarthost_config(pki: Any, port: int, **extra: Any) -> dict[str, Any]:
    """Contoso with one smart host on loopback, trusting the test PKI."""
    return {
        "tenant": {"name": "Contoso", "accepted_domains": ["contoso.com"]},
        "endpoints": [
            {"name": "smarthost", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
        ],
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {"timeout_seconds": 2, "deadline_seconds": 5},
        **extra,
    }


def _text(blocks: list[dict[str, Any]]) -> str:
    """Every mrkdwn/plain text of a message, joined: what a person reads."""
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts.extend(e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(texts)


def _problems(answer: str) -> set[tuple[str, str]]:
    """(severity, check id) of every finding line that is not OK."""
    return set(re.findall(r"\*(critical|warning|info)\* `([a-z0-9-]+)`", answer))


def _served(pki: Pki, case: str) -> tuple[Issued, dict[str, Any]]:
    now = pki.now
    return {
        "expired": (
            pki.leaf(not_before=now - timedelta(days=100), not_after=now - timedelta(days=2)),
            {},
        ),
        "wrong-names": (pki.leaf(["smtp.fabrikam.com"]), {}),
        "missing-intermediate": (pki.leaf(), {"with_intermediates": False}),
        "expiring-and-weak": (pki.leaf(days=20.5, rsa_bits=1024), {}),
    }[case]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", {("critical", "cert-expiry")}),
        ("wrong-names", {("critical", "cert-hostname")}),
        ("missing-intermediate", {("critical", "cert-chain")}),
        ("expiring-and-weak", {("warning", "cert-expiry"), ("critical", "cert-weak")}),
    ],
)
async def test_cert_answer_says_what_the_scan_says(
    tmp_path: Path,
    slack_api: SlackApiStandIn,
    run_bot: Runner,
    pki: Pki,
    smtp_server: Any,
    case: str,
    expected: set[tuple[str, str]],
) -> None:
    issued, options = _served(pki, case)
    server = await smtp_server(kind="good", chain=issued, **options)
    raw = smarthost_config(pki, server.port, thresholds={"warning_days": 30, "critical_days": 7})
    config = parse_config(raw, base_dir=tmp_path)
    now = pki.now + timedelta(minutes=1)
    await run_bot(config, clock=lambda: now)
    probe = slack_api.push_slash_command("/relaycheck", "cert smarthost", response_id=case)
    await slack_api.ack_for(probe, within=3)
    await slack_api.await_until(lambda: bool(slack_api.responses(case)), within=8)
    reply = slack_api.responses(case)[0].params
    answer = _text(reply["blocks"])

    assert _problems(answer) == expected
    scan, _ = await certificate_stage(
        ScanContext(config=config, now=now, tenant=merge_tenant(config), environ={})
    )
    said = [f for f in scan if f.severity is not Severity.OK]
    assert {(f.severity.value, f.check.value) for f in said} == expected
    for finding in said:  # the same words as `relaycheck scan`, escaped for mrkdwn
        line = (
            f"*{finding.severity.value}* `{finding.check.value}` {escape_mrkdwn(finding.message)}"
        )
        assert line in answer
    worst = max(f.severity for f in said)
    assert reply["text"].startswith(
        f"certificate of smarthost (mail.contoso.com:{server.port}): {worst.value}"
    )


async def test_cert_probe_resolves_through_the_configured_dns_and_never_goes_silent(
    tmp_path: Path,
    slack_api: SlackApiStandIn,
    run_bot: Runner,
    pki: Any,
    smtp_server: Any,
    dns_server: Any,
) -> None:
    server = await smtp_server(kind="good", chain=pki.leaf(("mail.contoso.com",)))
    dns = dns_server(zone="mail.contoso.com. 300 IN A 127.0.0.1\n")
    raw = {
        "tenant": {"name": "Contoso"},
        "endpoints": [
            {"name": "smarthost", "host": "mail.contoso.com", "port": server.port},
            {"name": "gone", "host": "gone.contoso.com", "port": server.port},
        ],
        "dns": {"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_seconds": 1},
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {"timeout_seconds": 2, "deadline_seconds": 5},
    }
    await run_bot(parse_config(raw, base_dir=tmp_path))
    found = slack_api.push_slash_command("/relaycheck", "cert smarthost", response_id="d1")
    await slack_api.ack_for(found)
    await slack_api.await_until(lambda: bool(slack_api.responses("d1")), within=8)
    assert "every check passed" in _text(slack_api.responses("d1")[0].params["blocks"])
    assert ("udp", "mail.contoso.com.", "A") in dns.queries
    gone = slack_api.push_slash_command("/relaycheck", "cert gone", response_id="d2")
    await slack_api.ack_for(gone)
    await slack_api.await_until(lambda: bool(slack_api.responses("d2")), within=8)
    assert "gone.contoso.com does not resolve" in str(slack_api.responses("d2")[0].params["blocks"])


async def test_triage_is_answered_in_the_ack_and_catches_pasted_replies(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(tenant_config(tmp_path, with_certificate=False))
    keyword = slack_api.push_slash_command(
        "/relaycheck",
        "triage 550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
        response_id="t1",
    )
    payload = (await slack_api.ack_for(keyword, within=3))["payload"]
    answer = _text(payload["blocks"])
    assert payload["text"].startswith("550 5.7.64 TenantAttribution: ")
    assert "`san-coverage`, `cert-chain`, `cert-expiry`, `tls-handshake`" in answer
    assert "*Check and fix*" in answer

    # not a pair and no keyword: Slack's escaped paste of an NDR line gets the triage, not help
    pasted = slack_api.push_slash_command(
        "/relaycheck",
        "Remote Server returned &lt;450 4.4.317 Cannot connect [Message=UntrustedRoot]&gt; <!channel>",
        response_id="t2",
    )
    answer = _text((await slack_api.ack_for(pasted, within=3))["payload"]["blocks"])
    assert "450 4.4.317" in answer
    assert "`cert-chain`" in answer
    assert "Examples" not in answer

    unknown = slack_api.push_slash_command(
        "/relaycheck", "triage <!channel> help", response_id="t3"
    )
    answer = str((await slack_api.ack_for(unknown, within=3))["payload"])
    assert "no Exchange Online reply recognised" in answer
    assert "&lt;!channel&gt;" in answer
    assert "<!channel>" not in answer
    await asyncio.sleep(0.05)
    assert not slack_api.responses()  # pure answers never go through response_url


async def test_the_probing_acknowledgement_never_echoes_control_sequences(
    tmp_path: Path, slack_api: SlackApiStandIn, run_bot: Runner
) -> None:
    await run_bot(parse_config({"tenant": {"name": "Contoso"}}, base_dir=tmp_path))
    envelope = slack_api.push_slash_command("/relaycheck", "cert <!channel>", response_id="e1")
    ack = str(await slack_api.ack_for(envelope))
    assert "Probing &lt;!channel&gt;" in ack
    assert "<!channel>" not in ack

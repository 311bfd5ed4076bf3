"""Block Kit rendering: content, escaping of hostile strings, and Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk.models.views import View

from bot.records import LeaderRecord, OpenFinding, RunRecord
from bot.slack.blocks import (
    MAX_HOME_BLOCKS,
    MAX_MESSAGE_BLOCKS,
    certificate_probe_message,
    escape_mrkdwn,
    explanation_message,
    fit_lines,
    help_message,
    home_view,
    status_message,
)
from checks.config import parse_config
from checks.explain import explain
from checks.model import CheckId, Endpoint, Finding, Severity, Thresholds
from checks.observations import FailureKind, ProbeFailure, ProbeStage, TlsObservation
from checks.probes.exports import load_tenant
from checks.probes.trust import load_trust_anchors
from checks.rules.addresses import parse_pair
from checks.rules.certcheck import evaluate_endpoint
from checks.rules.certificates import facts_from_x509
from tests.fakes.pki import Pki

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sections(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields", []))
        texts.extend(e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return texts


def _no_control_sequences(payload: Any) -> None:
    dumped = json.dumps(payload)
    for needle in ("<!channel>", "<!here>", "<@U123>", "<@UEVIL>"):
        assert needle not in dumped


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def _explanation(tmp_path: Path, text: str) -> Any:
    config = parse_config(
        {
            "tenant": {"name": "Contoso", "accepted_domains": ["contoso.com"]},
            "connectors": [{"name": "IP <!channel> & co", "sender_ip_addresses": ["203.0.113.1"]}],
        },
        base_dir=tmp_path,
    )
    return explain(parse_pair(text), load_tenant(config), forwards=(), certificates={}, now=NOW)


def test_explanation_content_and_escaping(tmp_path: Path) -> None:
    rendered = explanation_message(
        _explanation(tmp_path, "<> -> kate@tailspintoys.com"), now=NOW, share_value="x"
    )
    payload = rendered.to_dict()
    text = "\n".join(_sections(payload["blocks"]))
    assert "(`ndr`)" in text
    assert "550 5.7.64 Relay Access Denied ATTR36" in text
    assert "IP &lt;!channel&gt; &amp; co" in text
    assert "*Refused*" in text
    assert payload["blocks"][0]["type"] == "header"
    assert any(b["type"] == "actions" for b in payload["blocks"])
    _no_control_sequences(payload)


def test_hostile_input_address_is_escaped(tmp_path: Path) -> None:
    explanation = _explanation(tmp_path, "a&b@fabrikam.com -> kate@tailspintoys.com")
    payload = explanation_message(explanation, now=NOW).to_dict()
    _no_control_sequences(payload)
    assert "a&amp;b@fabrikam.com" in json.dumps(payload)
    assert "a&b@" not in json.dumps(payload)


def test_help_names_the_reason_and_escapes_it() -> None:
    payload = help_message("could not read '<!channel>'").to_dict()
    assert "could not read '&lt;!channel&gt;'" in payload["blocks"][0]["text"]["text"]
    _no_control_sequences(payload)


def test_fit_lines_summarises_what_does_not_fit() -> None:
    text = fit_lines([f"line {i} " + "x" * 50 for i in range(300)], 3000, head="*Head*")
    assert len(text) <= 3000
    assert text.endswith("more")
    assert "…and" in text
    assert len(fit_lines(["&" * 5000])) <= 3000


def _findings(n: int) -> list[OpenFinding]:
    severities = [Severity.WARNING, Severity.CRITICAL, Severity.INFO]
    return [
        OpenFinding(
            finding=Finding(
                check=CheckId.CERT_EXPIRY,
                severity=severities[i % 3],
                subject=f"endpoint-{i} <!channel>",
                message="expires soon & " + "y" * 400,
            ),
            opened_at=NOW - timedelta(hours=i),
            last_seen_at=NOW,
            acknowledged_by="U0OWNER" if i % 2 else None,
        )
        for i in range(n)
    ]


def test_status_worst_first_and_within_limits() -> None:
    rendered = status_message(
        _findings(300), last_run=RunRecord(started_at=NOW, finished_at=NOW, ok=True), now=NOW
    )
    payload = rendered.to_dict()
    assert len(payload["blocks"]) <= MAX_MESSAGE_BLOCKS
    texts = _sections(payload["blocks"])
    assert texts[0] == "Open findings: 300"
    assert "critical" in texts[3]  # after header and context: the worst finding first
    assert texts[-1].startswith("…and")
    assert "more open findings" in texts[-1]
    assert all(len(t) <= 3000 for t in texts)
    _no_control_sequences(payload)


def test_home_with_300_endpoints_is_a_valid_view(tmp_path: Path) -> None:
    raw = {
        "tenant": {
            "name": "Contoso",
            "accepted_domains": [f"d{i}.contoso.com" for i in range(300)],
        },
        "connectors": [
            {"name": f"conn {i} <!channel>", "sender_ip_addresses": ["203.0.113.1"]}
            for i in range(300)
        ],
        "endpoints": [
            {"name": f"ep{i}", "host": f"mx{i}.contoso.com", "port": 25} for i in range(300)
        ],
    }
    config = parse_config(raw, base_dir=tmp_path)
    view = home_view(
        config,
        facts=load_tenant(config),
        certificates={},
        findings=_findings(300),
        last_run=None,
        now=NOW,
    )
    assert isinstance(view, View)
    payload = view.to_dict()  # raises SlackObjectFormationError beyond Slack's limits
    assert len(payload["blocks"]) <= MAX_HOME_BLOCKS
    texts = _sections(payload["blocks"])
    assert all(len(t) <= 3000 for t in texts)
    assert any("*Endpoints (300)*" in t and "more" in t for t in texts)
    assert any("no scan has run yet" in t for t in texts)
    _no_control_sequences(payload)


def test_cert_probe_answer_shows_the_rules_findings_per_address_within_limits(pki: Pki) -> None:
    """60 addresses of a pool: one refuses with hostile words, the rest serve an expired cert."""
    endpoint = Endpoint(name="relay <!channel>", host="mail.contoso.com", port=25)
    expired = pki.leaf(
        not_before=pki.now - timedelta(days=90), not_after=pki.now - timedelta(days=1)
    )
    chain = (expired.facts, facts_from_x509(pki.intermediate))
    observations = [
        TlsObservation(
            endpoint=endpoint.name,
            host=endpoint.host,
            port=25,
            address="192.0.2.1",
            failure=ProbeFailure(
                stage=ProbeStage.GREETING,
                kind=FailureKind.REJECTED,
                reason="554 at greeting",
                server_words="554 go away <!channel> <@U123>",
                code=554,
            ),
        ),
        *(
            TlsObservation(
                endpoint=endpoint.name,
                host=endpoint.host,
                port=25,
                address=f"192.0.2.{i}",
                chain=chain,
                tls_version="TLSv1.3",
            )
            for i in range(2, 62)
        ),
    ]
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    findings = evaluate_endpoint(
        endpoint, observations, now=pki.now, thresholds=Thresholds(), anchors=anchors
    )
    rendered = certificate_probe_message(endpoint, observations, findings, now=pki.now)
    payload = rendered.to_dict()  # raises beyond Slack's per-block limits
    assert len(payload["blocks"]) <= MAX_MESSAGE_BLOCKS
    texts = _sections(payload["blocks"])
    assert all(len(t) <= 3000 for t in texts)
    refused = next(t for t in texts if "192.0.2.1 port 25" in t)
    assert "*critical* `endpoint-unreachable`" in refused
    assert "&lt;!channel&gt; &lt;@U123&gt;" in refused
    first_served = next(t for t in texts if "192.0.2.2 port 25" in t)
    assert "*critical* `cert-expiry`" in first_served
    assert "expired" in first_served
    assert "`cert-chain`" in first_served  # passed: the chain itself is fine
    assert any("more addresses" in t for t in texts)
    assert rendered.text.startswith("certificate of relay &lt;!channel&gt;")
    header = payload["blocks"][0]
    assert header["text"] == {
        "type": "plain_text",
        "text": "Certificate of relay <!channel> (mail.contoso.com:25)",
    }  # plain text: shown literally, never parsed
    _no_control_sequences({"text": payload["text"], "blocks": payload["blocks"][1:]})


def test_expiry_marks_follow_the_configured_thresholds() -> None:
    """The same 20 days left is a warning at warning_days=30 and fine at warning_days=10."""
    from datetime import UTC, datetime, timedelta

    from bot.slack.blocks import explanation_message
    from checks.explain import explain
    from checks.model import AcceptedDomain, CertificateSource, Connector, Thresholds
    from checks.rules.addresses import parse_pair
    from checks.rules.certificates import CertificateObservation, ChainStatus, ChainVerdict
    from checks.rules.tenant import TenantFacts
    from tests.unit.test_explain import facts_cert

    now = datetime(2026, 11, 29, tzinfo=UTC)
    connector = Connector(
        name="c",
        tls_sender_certificate_name="*.contoso.com",
        certificate=CertificateSource(endpoint="mail1"),
    )
    tenant = TenantFacts(
        name="contoso",
        accepted_domains=(AcceptedDomain(name="contoso.com"),),
        connectors=(connector,),
    )
    cert = CertificateObservation(
        source="endpoint mail1",
        chain=(facts_cert(not_after=now + timedelta(days=20, hours=1)),),
        verdict=ChainVerdict(status=ChainStatus.TRUSTED),
    )
    answer = explain(parse_pair("<> -> a@fabrikam.com"), tenant, certificates={"c": cert}, now=now)

    def expiry_line(thresholds: Thresholds) -> str:
        text = str(explanation_message(answer, now=now, thresholds=thresholds).block_dicts())
        return next(part for part in text.split("\\n") if "days left" in part)

    assert ":large_orange_circle:" in expiry_line(Thresholds(warning_days=30, critical_days=7))
    assert "circle" not in expiry_line(Thresholds(warning_days=10, critical_days=7))


async def test_app_home_lists_the_domains_graph_gave_the_last_scan(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.alerting.store import Store
    from bot.records import RunRecord
    from bot.slack.listeners.common import Deps
    from bot.slack.listeners.home import render_home
    from checks.config import parse_config

    now = datetime(2026, 11, 29, tzinfo=UTC)
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "microsoft365": {"tenant_id": "t", "client_id": "c"},
        },
        base_dir=tmp_path,
    )
    with Store.open(tmp_path / "s.sqlite3") as store:
        run = RunRecord(job="domains", started_at=now, finished_at=now, ok=True, summary={})
        store.record_cycle(
            run=run,
            states={},
            drafts=[],
            accepted_domains={"contoso.com", "graph-only.com"},
            now=now,
        )
        view = await render_home(Deps(config=config, store=store, clock=lambda: now))
    text = str(view.to_dict())
    assert "graph-only.com" in text
    assert "contoso.com" in text


def test_home_says_which_replica_leads_and_since_when(tmp_path: Path) -> None:
    config = parse_config({"tenant": {"name": "Contoso"}}, base_dir=tmp_path)
    since = NOW - timedelta(hours=2)

    def context(leader: LeaderRecord | None) -> str:
        view = home_view(
            config, facts=None, certificates={}, findings=[], last_run=None, now=NOW, leader=leader
        )
        return json.dumps(view.to_dict()["blocks"][1])

    leading = LeaderRecord(
        replica="relaycheck-7f9 <!channel>", since=since, until=NOW, epoch=3, active=True
    )
    text = context(leading)
    assert "led by replica relaycheck-7f9 &lt;!channel&gt;" in text
    assert f"since {since:%Y-%m-%d %H:%M} UTC" in text
    assert "no leader" in context(
        LeaderRecord(replica="r1", since=since, until=NOW, epoch=3, active=False)
    )
    assert "no replica has led yet" in context(None)

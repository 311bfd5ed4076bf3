"""App Home's relay readiness rows and the digest's order: what on-call sees first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.alerting.alerts import render_digest
from bot.records import OpenFinding, RunRecord
from bot.slack.blocks import home_view, readiness_lines
from checks.model import CheckId, Config, Finding, Scenario, Severity, Tenant

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONFIG = Config(source=None, tenant=Tenant(name="contoso"))


def run(*entries: dict[str, object]) -> RunRecord:
    return RunRecord(
        job="certificates",
        started_at=NOW,
        finished_at=NOW,
        ok=True,
        summary={"relay_scenarios": list(entries)},
    )


def test_a_row_per_scenario_relays_refused_or_unknown() -> None:
    lines = readiness_lines(
        CONFIG,
        run(
            {
                "scenario": "ndr",
                "cause": "",
                "severity": "critical",
                "accepted": False,
                "smtp_response": "550 5.7.64 Relay Access Denied ATTR36",
            },
            {
                "scenario": "accepted-sender",
                "cause": "contoso.com",
                "severity": "ok",
                "accepted": True,
                "smtp_response": None,
            },
            {
                "scenario": "forwarding",
                "cause": "kate@contoso.com",
                "severity": "warning",
                "accepted": True,
                "smtp_response": None,
            },
        ),
    )
    text = "\n".join(lines)
    assert "`ndr`: refused: 550 5.7.64 Relay Access Denied ATTR36" in text
    assert "`accepted-sender` (contoso.com): relays" in text
    assert "`forwarding` (kate@contoso.com): relays, with a caveat" in text
    assert "`unregistered-sender`: unknown" in text
    assert len(lines) == len(Scenario) - 1  # every relay scenario, to-tenant is none


def test_home_shows_readiness_from_the_run_that_judged_it() -> None:
    judged = run(
        {
            "scenario": "ndr",
            "cause": "",
            "severity": "critical",
            "accepted": False,
            "smtp_response": "550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
        }
    )
    domains_run = RunRecord(job="domains", started_at=NOW, finished_at=NOW, ok=True, summary={})
    view = home_view(
        CONFIG,
        facts=None,
        certificates={},
        findings=[],
        last_run=domains_run,
        now=NOW,
        readiness=judged,
    ).to_dict()
    text = json.dumps(view)
    assert "Relay readiness" in text
    assert "TenantAttribution" in text


def test_the_digest_lists_refused_scenarios_first() -> None:
    def open_finding(check: CheckId, subject: str, **details: object) -> OpenFinding:
        finding = Finding(
            check=check,
            severity=Severity.CRITICAL,
            subject=subject,
            message=f"{subject} problem",
            details=dict(details),
        )
        return OpenFinding(finding=finding, opened_at=NOW - timedelta(days=1), last_seen_at=NOW)

    draft = render_digest(
        [
            open_finding(CheckId.CERT_EXPIRY, "mail1"),
            open_finding(CheckId.RELAY_SCENARIO, "ndr", accepted=False),
        ],
        [],
        now=NOW,
        settings=CONFIG.alerts,
        digest_id="digest@test",
    )
    body = json.dumps(draft.blocks)
    assert body.index("ndr problem") < body.index("mail1 problem")

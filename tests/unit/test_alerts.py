"""Alert rendering: content, buttons, escaping and Slack limits through slack_sdk models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from bot.alerting.alerts import (
    ACK_ACTION,
    RUNBOOK_ACTION,
    SNOOZE_1D_ACTION,
    SNOOZE_7D_ACTION,
    render_digest,
    render_event,
    with_status,
)
from checks.model import AlertSettings, CheckId, Finding, Severity
from checks.rules.lifecycle import (
    CertificateSnapshot,
    Event,
    EventKind,
    certificate_changes,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SETTINGS = AlertSettings(runbook_url="https://wiki.example/relay?a=1&b=2")
EVIL = "<!channel> & <@U999>"


def f(subject: str = "smarthost", **kw: object) -> Finding:
    values: dict[str, object] = {
        "check": CheckId.SAN_COVERAGE,
        "severity": Severity.CRITICAL,
        "subject": subject,
        "message": f"certificate CN={EVIL} does not cover *.contoso.com",
    }
    values.update(kw)
    return Finding(**values)  # type: ignore[arg-type]


def event(kind: EventKind, findings: tuple[Finding, ...], **kw: object) -> Event:
    return Event(id=f"{kind.value}:x@1", kind=kind, at=NOW, findings=findings, **kw)  # type: ignore[arg-type]


def test_alert_has_buttons_and_escapes_everything_foreign() -> None:
    (draft,) = render_event(event(EventKind.OPENED, (f(subject=EVIL),)), SETTINGS)
    assert draft.action == "post"
    # header is plain_text (Slack parses no mentions there); every mrkdwn block is escaped
    dumped = json.dumps([b for b in draft.blocks if b["type"] != "header"])
    assert "<!channel>" not in dumped
    assert "<@U999>" not in dumped
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in dumped
    assert "<!channel>" not in draft.text
    actions = next(b for b in draft.blocks if b["type"] == "actions")
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [ACK_ACTION, SNOOZE_1D_ACTION, SNOOZE_7D_ACTION, RUNBOOK_ACTION]
    assert actions["elements"][0]["value"] == "opened:x@1"
    assert actions["elements"][3]["url"] == f"{SETTINGS.runbook_url}#san-coverage"  # the check id
    assert draft.keys == (f(subject=EVIL).key,)


def test_no_runbook_button_without_url() -> None:
    (draft,) = render_event(event(EventKind.ESCALATED, (f(),)), AlertSettings())
    actions = next(b for b in draft.blocks if b["type"] == "actions")
    assert RUNBOOK_ACTION not in [e["action_id"] for e in actions["elements"]]


def test_grouped_alert_lists_every_address_within_limits() -> None:
    findings = tuple(
        f(subject="smarthost", cause=f"192.0.2.{i}", details={"fingerprint_sha256": "ab" * 32})
        for i in range(60)
    )
    (draft,) = render_event(event(EventKind.OPENED, findings), SETTINGS)
    assert len(draft.blocks) <= 50
    section = draft.blocks[1]["text"]["text"]
    assert "192.0.2.0" in section
    assert "…and 40 more" in section
    assert len(section) <= 3000
    assert "60 endpoints share one cause" in draft.blocks[0]["text"]["text"]


def test_resolution_is_update_plus_thread_reply() -> None:
    ev = event(EventKind.RESOLVED, (f(),), reply_to="opened:x@0", reason="no longer seen")
    update, reply = render_event(ev, SETTINGS)
    assert (update.action, reply.action) == ("update", "reply")
    assert update.reply_to == reply.reply_to == "opened:x@0"
    assert not any(b["type"] == "actions" for b in update.blocks)
    assert "Resolved" in reply.text


def test_silenced_event_renders_nothing() -> None:
    assert render_event(event(EventKind.OPENED, (f(),), notify=False), SETTINGS) == []


def test_cert_change_message_names_what_changed() -> None:
    def snap(fp: str, names: tuple[str, ...], issuer: str) -> CertificateSnapshot:
        return CertificateSnapshot(
            source="smarthost/192.0.2.1",
            fingerprint=fp * 32,
            subject="CN=mail",
            issuer=issuer,
            names=names,
            not_after=NOW + timedelta(days=90),
            chain_length=2,
        )

    (ev,) = certificate_changes(
        {"s": snap("aa", ("mail.contoso.com", "relay.contoso.com"), "CN=R3")},
        {"s": snap("bb", ("mail.contoso.com",), f"CN={EVIL}")},
        now=NOW,
    )
    (draft,) = render_event(ev, SETTINGS)
    text = json.dumps(draft.blocks, ensure_ascii=False)
    assert "Names removed:* relay.contoso.com" in text
    assert "CN=R3 → CN=&lt;!channel&gt;" in text
    assert "<!channel>" not in text
    # a new issuer breaks an Exchange send connector's '<I>issuer<S>subject' selector
    assert "454 4.7.5" in text
    assert "&lt;I&gt;issuer&lt;S&gt;subject" in text


def test_digest_lists_open_findings_and_expiring_certificates() -> None:
    open_ = [
        SimpleNamespace(finding=f(), opened_at=NOW - timedelta(days=3), acknowledged_by="U1"),
    ]
    certs = [
        CertificateSnapshot(
            source=f"ep{i}",
            fingerprint="x",
            subject="CN=x",
            issuer="CN=ca",
            names=(f"host{i}.contoso.com",),
            not_after=NOW + timedelta(days=10 * i),
            chain_length=2,
        )
        for i in range(1, 10)
    ]
    draft = render_digest(open_, certs, now=NOW, settings=AlertSettings(), digest_id="digest@1")
    text = json.dumps(draft.blocks)
    assert "open 3 d" in text
    assert "host6.contoso.com" in text  # 60 days: included
    assert "host7.contoso.com" not in text  # 70 days: beyond digest_days
    assert "<!channel>" not in text


def test_with_status_replaces_previous_status() -> None:
    (draft,) = render_event(event(EventKind.OPENED, (f(),)), SETTINGS)
    once = with_status(draft.blocks, "acknowledged by <@U1>")
    twice = with_status(once, "snoozed by <@U2>")
    statuses = [b for b in twice if b.get("block_id") == "relaycheck_status"]
    assert len(statuses) == 1
    assert "U2" in json.dumps(statuses)
    assert twice[-1]["type"] == "actions"


def test_storm_alert_says_how_many_and_lists_them_within_limits() -> None:
    findings = tuple(
        f(
            subject=f"relay-{i:02d}",
            check=CheckId.ENDPOINT_UNREACHABLE,
            message="connection refused",
            details={"fingerprint_sha256": f"{i:064x}"},
        )
        for i in range(60)
    )
    (draft,) = render_event(event(EventKind.OPENED, findings, details={"storm": 60}), SETTINGS)
    header = draft.blocks[0]["text"]["text"]
    assert header == "New endpoint-unreachable: 60 at once"
    section = draft.blocks[1]["text"]["text"]
    assert "relay-19" in section
    assert "relay-20" not in section
    assert "…and 40 more" in section
    assert "relay-00, relay-01" in draft.text
    assert "and 40 more" in draft.text
    assert len(draft.text) <= 3000
    context = json.dumps(draft.blocks[2])
    assert "60 endpoint-unreachable findings in one run" in context
    assert "certificate `" not in context  # sixty certificates: none of them is "the" one
    assert len(draft.keys) == 60


def test_partial_resolution_is_a_reply_naming_what_is_still_open() -> None:
    still = [f"relay-{i:02d} (127.0.0.1)" for i in range(3, 60)]
    ev = event(
        EventKind.RESOLVED,
        (f(subject="relay-00"),),
        reply_to="opened:x@0",
        reason="no longer seen",
        details={"still_open": len(still), "still_open_subjects": still},
    )
    (reply,) = render_event(ev, SETTINGS)
    assert reply.action == "reply"
    assert reply.reply_to == "opened:x@0"
    assert "57 still open: relay-03 (127.0.0.1)" in reply.text
    assert "and 37 more" in reply.text
    assert len(reply.text) <= 3000


def test_closing_resolution_edit_strikes_every_member_line() -> None:
    ev = event(
        EventKind.RESOLVED,
        (f(subject="b"),),
        reply_to="opened:x@0",
        reason="no longer seen",
        resolved_before=(f(subject="a"), f(subject="c")),
    )
    update, reply = render_event(ev, SETTINGS)
    lines = update.blocks[1]["text"]["text"].splitlines()
    assert len(lines) == 3
    assert all(line.startswith("~") and line.endswith("~") for line in lines)
    assert update.blocks[0]["text"]["text"].startswith("Resolved san-coverage: all 3: b, a, c")
    assert "all 3 resolved" in reply.text

"""Alert storms and partial resolution of grouped messages, over scripted runs with a fake clock
(pure lifecycle and pure rendering: no I/O)."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.alerting.alerts import render_event
from checks.model import AlertSettings, CheckId, Finding, Severity
from checks.rules.lifecycle import (
    STORM_THRESHOLD,
    Acknowledgement,
    Event,
    EventKind,
    Policy,
    Snooze,
)
from tests.unit.test_lifecycle import Runner, expiry, kinds

NAMES = [f"relay-{i:02d}" for i in range(12)]
SETTINGS = AlertSettings()


def down(subject: str) -> Finding:
    return Finding(
        check=CheckId.ENDPOINT_UNREACHABLE,
        severity=Severity.CRITICAL,
        subject=subject,
        message="connection refused",
        cause="127.0.0.1",
    )


def outage(names: list[str]) -> list[Finding]:
    return [down(n) for n in names]


def cert(subject: str, days_left: int) -> Finding:
    """An expiring certificate of its own (its own fingerprint: no fingerprint group)."""
    return Finding(
        check=CheckId.CERT_EXPIRY,
        severity=Severity.CRITICAL if days_left <= 7 else Severity.WARNING,
        subject=subject,
        message=f"expires in {days_left} days",
        details={"days_left": days_left, "fingerprint_sha256": subject.encode().hex()},
    )


def test_twelve_unreachable_in_one_run_are_one_alert() -> None:
    r = Runner()
    (ev,) = r.run(outage(NAMES))
    assert ev.kind is EventKind.OPENED
    assert [f.subject for f in ev.findings] == NAMES
    assert ev.details["storm"] == 12
    # every member points at the one message (resolution and buttons find it)
    assert {r.states[down(n).key].alert_event for n in NAMES} == {ev.id}
    (draft,) = render_event(ev, SETTINGS)
    assert "12 at once" in draft.text
    assert all(n in draft.text for n in NAMES)
    assert draft.keys == tuple(down(n).key for n in NAMES)
    section = draft.blocks[1]["text"]["text"]
    assert all(n in section for n in NAMES)


def test_threshold_is_more_than_five_of_one_kind_and_check() -> None:
    assert STORM_THRESHOLD == 5
    r = Runner()
    assert len(r.run(outage(NAMES[:5]))) == 5
    r2 = Runner()
    assert len(r2.run(outage(NAMES[:6]))) == 1
    r3 = Runner(Policy(storm_threshold=20))
    assert len(r3.run(outage(NAMES))) == 12


def test_storm_never_mixes_checks_or_silenced_with_notified() -> None:
    r = Runner()
    snoozed = NAMES[:7]
    for n in snoozed:
        r.snoozes[down(n).key] = Snooze(until=r.now + timedelta(days=30), user="U1", at=r.now)
    chains = [
        Finding(check=CheckId.CERT_CHAIN, severity=Severity.CRITICAL, subject=n, message="x")
        for n in NAMES[:3]
    ]
    # snoozes are by key, so they silence even the run that opens the finding
    events = r.run([*outage(NAMES), *chains])
    by_check: dict[tuple[str, bool], list[Event]] = {}
    for ev in events:
        by_check.setdefault((ev.findings[0].check.value, ev.notify), []).append(ev)
    # 7 silenced unreachable: one silent storm; 5 notified unreachable: five messages;
    # 3 chain findings: three messages
    assert [len(e.findings) for e in by_check[("endpoint-unreachable", False)]] == [7]
    assert len(by_check[("endpoint-unreachable", True)]) == 5
    assert len(by_check[("cert-chain", True)]) == 3


def test_three_recover_is_a_partial_resolution_a_reply_without_edit() -> None:
    r = Runner()
    (alert,) = r.run(outage(NAMES))
    (partial,) = r.run(outage(NAMES[3:]))
    assert partial.kind is EventKind.RESOLVED
    assert partial.reply_to == alert.id
    assert [f.subject for f in partial.findings] == NAMES[:3]
    assert partial.details["still_open"] == 9
    assert partial.details["still_open_subjects"] == [f"{n} (127.0.0.1)" for n in NAMES[3:]]
    (reply,) = render_event(partial, SETTINGS)
    assert reply.action == "reply"
    assert reply.reply_to == alert.id
    assert "9 still open" in reply.text
    assert "relay-00" in reply.text
    assert "relay-11" in reply.text
    # the rest recover: one closing resolution that edits the message and lists all twelve
    (final,) = r.run([])
    assert "still_open" not in final.details
    assert [f.subject for f in final.resolved_before] == NAMES[:3]
    update, closing = render_event(final, SETTINGS)
    assert (update.action, closing.action) == ("update", "reply")
    assert update.reply_to == closing.reply_to == alert.id
    body = json.dumps(update.blocks)
    assert all(n in body for n in NAMES)
    assert "all 12" in update.text
    assert "all 12 resolved" in closing.text
    assert not any(b["type"] == "actions" for b in update.blocks)


def test_fingerprint_group_resolving_one_address_is_partial_too() -> None:
    r = Runner()
    (alert,) = r.run(
        [expiry(20, cause="192.0.2.1"), expiry(20, cause="192.0.2.2"), expiry(20, cause="x")]
    )
    (partial,) = r.run([expiry(20, cause="192.0.2.1"), expiry(20, cause="192.0.2.2")])
    assert partial.reply_to == alert.id
    assert partial.details["still_open"] == 2
    assert [d.action for d in render_event(partial, SETTINGS)] == ["reply"]
    (final,) = r.run([])
    assert len(final.findings) == 2
    assert [d.action for d in render_event(final, SETTINGS)] == ["update", "reply"]


def test_a_member_still_open_because_unobserved_keeps_the_resolution_partial() -> None:
    """An endpoint that is down keeps its certificate finding open: the group is not closed."""
    r = Runner()
    certs = [cert(n, 5) for n in NAMES[:8]]
    (alert,) = r.run(certs)
    assert alert.details["storm"] == 8
    events = r.run([down("relay-00")])
    resolved = [e for e in events if e.kind is EventKind.RESOLVED]
    (partial,) = resolved
    assert len(partial.findings) == 7
    assert partial.details["still_open"] == 1


def test_storm_of_escalations_is_one_message_and_one_group() -> None:
    r = Runner()
    names = NAMES[:8]
    # opened one per run: eight messages (each certificate its own fingerprint)
    for i in range(len(names)):
        r.run([cert(n, 20) for n in names[: i + 1]])
    assert len({s.alert_event for s in r.states.values()}) == 8
    state_now = [cert(n, 6) for n in names]
    r.acks = {f.key: Acknowledgement(user="U7", at=r.now) for f in state_now}
    (ev,) = r.run(state_now, step=timedelta(days=14))
    assert ev.kind is EventKind.ESCALATED
    assert ev.details["storm"] == 8
    assert ev.step == 7
    assert ev.acknowledged_by == "U7"  # every member acknowledged by the same person
    assert {r.states[f.key].alert_event for f in state_now} == {ev.id}


def test_storm_absorbs_fingerprint_groups_and_rebinds_their_members() -> None:
    r = Runner()
    shared = [expiry(20, subject="smarthost", cause=f"192.0.2.{i}") for i in range(3)]
    others = [cert(n, 20) for n in NAMES[:6]]
    (ev,) = r.run([*shared, *others])
    assert len(ev.findings) == 9
    assert {r.states[f.key].alert_event for f in [*shared, *others]} == {ev.id}
    assert kinds(r.run([*shared, *others])) == []


def test_snooze_and_ack_by_key_cover_a_storm_like_any_alert() -> None:
    r = Runner(Policy(flap_runs=2))
    (alert,) = r.run(outage(NAMES))
    # the buttons act on every key of the message (Store.keys_for_event returns alert.keys)
    for key in alert.keys:
        r.snoozes[key] = Snooze(until=r.now + timedelta(days=1), user="U1", at=r.now)
    r.run([])
    r.run([])
    back = r.run(outage(NAMES))
    assert kinds(back, notified_only=False) == ["reopened"]
    assert kinds(back) == []  # snoozed: recorded, not posted

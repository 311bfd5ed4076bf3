"""Scripted sequences of runs through the pure lifecycle, with a fake clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from checks.model import CheckId, Finding, Severity
from checks.rules.lifecycle import (
    Acknowledgement,
    CertificateSnapshot,
    Event,
    EventKind,
    FindingKey,
    FindingState,
    Policy,
    Snooze,
    advance,
    certificate_changes,
    expiry_step,
)

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
POLICY = Policy(expiry_steps=(30, 14, 7, 3, 1), flap_runs=3)


def expiry(days_left: int, *, subject: str = "smarthost", cause: str = "") -> Finding:
    severity = Severity.CRITICAL if days_left <= 7 else Severity.WARNING
    return Finding(
        check=CheckId.CERT_EXPIRY,
        severity=severity,
        subject=subject,
        message=f"expires in {days_left} days",
        details={"days_left": days_left, "fingerprint_sha256": "ab" * 32},
        cause=cause,
    )


def chain(severity: Severity = Severity.CRITICAL, subject: str = "smarthost") -> Finding:
    return Finding(check=CheckId.CERT_CHAIN, severity=severity, subject=subject, message="chain")


class Runner:
    """Replays runs six hours apart, keeping state like the store would."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.policy = policy
        self.states: dict[FindingKey, FindingState] = {}
        self.now = T0
        self.acks: dict[FindingKey, Acknowledgement] = {}
        self.snoozes: dict[FindingKey, Snooze] = {}

    def run(
        self,
        findings: Iterable[Finding],
        *,
        checked: Iterable[CheckId] | None = None,
        step: timedelta = timedelta(hours=6),
    ) -> list[Event]:
        self.now += step
        result = advance(
            self.states,
            list(findings),
            now=self.now,
            policy=self.policy,
            checked=checked,
            acks=self.acks,
            snoozes=self.snoozes,
        )
        self.states = result.states
        return list(result.events)


def kinds(events: Iterable[Event], *, notified_only: bool = True) -> list[str]:
    return [e.kind.value for e in events if e.notify or not notified_only]


def test_open_then_quiet_while_unchanged() -> None:
    r = Runner()
    assert kinds(r.run([chain()])) == ["opened"]
    assert r.run([chain()]) == []
    assert r.run([chain()]) == []
    state = r.states[chain().key]
    assert state.open
    assert state.opened_at == T0 + timedelta(hours=6)
    assert state.last_seen_at == T0 + timedelta(hours=18)


def test_info_findings_never_open() -> None:
    r = Runner()
    assert r.run([chain(Severity.INFO), chain(Severity.OK, subject="other")]) == []
    assert r.states == {}


def test_escalates_at_each_expiry_step_once() -> None:
    r = Runner()
    got: list[tuple[str, int | None]] = []
    for days in (29, 28, 20, 14, 13, 8, 7, 6, 3, 2, 1, 0):
        for ev in r.run([expiry(days)], step=timedelta(days=1)):
            got.append((ev.kind.value, ev.step))
    assert got == [
        ("opened", 30),
        ("escalated", 14),
        ("escalated", 7),  # also warning -> critical: one message, not two
        ("escalated", 3),
        ("escalated", 1),
    ]


def test_escalation_reason_names_the_step_or_the_severity() -> None:
    r = Runner()
    r.run([chain(Severity.WARNING)])
    (ev,) = r.run([chain(Severity.CRITICAL)])
    assert ev.kind is EventKind.ESCALATED
    assert ev.previous_severity is Severity.WARNING
    assert "warning to critical" in ev.reason
    r2 = Runner()
    r2.run([expiry(20)])
    (ev2,) = r2.run([expiry(13)])
    assert "14-day step" in ev2.reason


def test_severity_drop_is_silent_and_rise_back_is_not_a_new_alert() -> None:
    r = Runner()
    r.run([chain(Severity.CRITICAL)])
    assert r.run([chain(Severity.WARNING)]) == []
    assert r.run([chain(Severity.CRITICAL)]) == []


def test_resolve_then_reopen_edits_and_replies_to_the_original() -> None:
    r = Runner(Policy(flap_runs=2))
    (opened,) = r.run([chain()])
    (resolved,) = r.run([])
    assert resolved.kind is EventKind.RESOLVED
    assert resolved.reply_to == opened.id
    assert not r.states[chain().key].open
    assert r.run([]) == []
    (reopened,) = r.run([chain()])
    assert reopened.kind is EventKind.REOPENED
    assert r.states[chain().key].open
    assert r.states[chain().key].alert_event == reopened.id


def test_runs_that_did_not_cover_a_check_do_not_resolve_it() -> None:
    r = Runner()
    r.run([chain()])
    assert r.run([], checked=[CheckId.MX, CheckId.DNS]) == []
    assert r.states[chain().key].open
    assert kinds(r.run([], checked=[CheckId.CERT_CHAIN])) == ["resolved"]


def test_flapping_alerts_once_then_one_note_then_silence_until_settled() -> None:
    r = Runner()
    script = [[chain()], [], [chain()], [], [chain()], [], [chain()]]
    seen = [kinds(r.run(findings), notified_only=False) for findings in script]
    assert seen == [["opened"], ["resolved"], ["flapping"], ["note"], [], [], []]
    assert r.states[chain().key].flapping
    # three good runs in a row: settled, and the flapping message is closed
    assert r.run([]) == []
    assert r.run([]) == []
    assert kinds(r.run([])) == ["resolved"]
    assert not r.states[chain().key].flapping


def test_flapping_that_settles_bad_stays_open_without_messages() -> None:
    r = Runner()
    for findings in ([chain()], [], [chain()]):
        r.run(findings)
    assert r.run([chain()]) == []
    assert r.run([chain()]) == []
    assert not r.states[chain().key].flapping
    assert r.states[chain().key].open


def test_snooze_silences_until_it_ends() -> None:
    r = Runner(Policy(flap_runs=2))
    r.run([chain(Severity.WARNING)])
    r.snoozes[chain().key] = Snooze(until=r.now + timedelta(days=1), user="U1", at=r.now)
    r.run([])  # resolution edits the message even while snoozed
    events = r.run([chain(Severity.WARNING)])
    assert kinds(events, notified_only=False) == ["reopened"]
    assert kinds(events) == []  # recorded, not posted
    r.run([])
    # after the snooze ends, a comeback is posted again
    events = r.run([chain(Severity.WARNING)], step=timedelta(days=1))
    assert kinds(events) == ["reopened"]


def test_snooze_is_broken_by_escalation() -> None:
    r = Runner()
    r.run([expiry(20)])
    r.snoozes[expiry(20).key] = Snooze(until=r.now + timedelta(days=7), user="U1", at=r.now)
    assert r.run([expiry(19)], step=timedelta(days=1)) == []
    (ev,) = r.run([expiry(13)], step=timedelta(days=1))
    assert ev.kind is EventKind.ESCALATED
    assert ev.notify
    assert r.states[expiry(20).key].snooze_broken_at == r.now


def test_acknowledgement_is_carried_and_stale_after_reopen() -> None:
    r = Runner(Policy(flap_runs=2))
    r.run([chain(Severity.WARNING)])
    r.acks[chain().key] = Acknowledgement(user="U2", at=r.now + timedelta(minutes=5))
    (ev,) = r.run([chain(Severity.CRITICAL)])
    assert ev.acknowledged_by == "U2"
    (res,) = r.run([])
    assert res.acknowledged_by == "U2"
    r.run([])
    r.run([chain(Severity.WARNING)])
    (ev2,) = r.run([chain(Severity.CRITICAL)])
    assert ev2.acknowledged_by is None  # the ack belonged to the previous incident


def test_one_certificate_on_several_addresses_is_one_alert() -> None:
    r = Runner()
    findings = [
        expiry(20, subject="smarthost", cause="192.0.2.1"),
        expiry(20, subject="smarthost", cause="192.0.2.2"),
        expiry(20, subject="mx-edge", cause="192.0.2.9"),
        chain(),
    ]
    events = r.run(findings)
    assert kinds(events) == ["opened", "opened"]
    grouped = next(e for e in events if len(e.findings) == 3)
    assert {f.cause for f in grouped.findings} == {"192.0.2.1", "192.0.2.2", "192.0.2.9"}
    # every member points at the grouped message, so a later resolution edits it
    for f in grouped.findings:
        assert r.states[f.key].alert_event == grouped.id
    events = r.run([chain()])
    (res,) = events
    assert res.kind is EventKind.RESOLVED
    assert res.reply_to == grouped.id
    assert len(res.findings) == 3


def test_same_key_twice_in_one_run_keeps_the_worst() -> None:
    r = Runner()
    (ev,) = r.run([chain(Severity.WARNING), chain(Severity.CRITICAL)])
    assert ev.findings[0].severity is Severity.CRITICAL


def test_expiry_step_boundaries() -> None:
    steps = (30, 14, 7, 3, 1)
    assert expiry_step(31, steps) is None
    assert expiry_step(30, steps) == 30
    assert expiry_step(14.5, steps) == 30
    assert expiry_step(0, steps) == 1
    assert expiry_step(-3, steps) == 1
    assert expiry_step(None, steps) is None


def snap(source: str, fp: str, **kw: object) -> CertificateSnapshot:
    values: dict[str, object] = {
        "source": source,
        "fingerprint": fp,
        "subject": "CN=mail.contoso.com",
        "issuer": "CN=Old CA",
        "names": ("mail.contoso.com", "relay.contoso.com"),
        "not_after": datetime(2026, 4, 1, tzinfo=UTC),
        "chain_length": 2,
    }
    values.update(kw)
    return CertificateSnapshot(**values)  # type: ignore[arg-type]


def test_certificate_change_describes_what_changed_and_groups_sources() -> None:
    prev: Mapping[str, CertificateSnapshot] = {
        "smarthost/192.0.2.1": snap("smarthost/192.0.2.1", "old"),
        "smarthost/192.0.2.2": snap("smarthost/192.0.2.2", "old"),
        "mx/192.0.2.9": snap("mx/192.0.2.9", "same"),
    }
    new = snap(
        "x",
        "new",
        issuer="CN=New CA",
        names=("mail.contoso.com", "www.contoso.com"),
        not_after=datetime(2027, 4, 1, tzinfo=UTC),
        chain_length=3,
        client_auth=False,
    )
    cur = {
        "smarthost/192.0.2.1": snap("smarthost/192.0.2.1", "new", **_fields(new)),
        "smarthost/192.0.2.2": snap("smarthost/192.0.2.2", "new", **_fields(new)),
        "mx/192.0.2.9": snap("mx/192.0.2.9", "same"),
        "fresh/192.0.2.7": snap("fresh/192.0.2.7", "other"),
    }
    (ev,) = certificate_changes(prev, cur, now=T0)
    assert ev.kind is EventKind.CERT_CHANGED
    assert ev.details["sources"] == ["smarthost/192.0.2.1", "smarthost/192.0.2.2"]
    assert ev.details["issuer_changed"] is True
    assert ev.details["names_added"] == ["www.contoso.com"]
    assert ev.details["names_removed"] == ["relay.contoso.com"]
    assert ev.details["chain_length"] == [2, 3]
    assert ev.details["client_auth_dropped"] is True
    assert ev.severity is Severity.WARNING  # a dropped name is how relay breaks
    assert "names removed: relay.contoso.com" in ev.reason
    assert certificate_changes(cur, cur, now=T0) == ()


def _fields(s: CertificateSnapshot) -> dict[str, object]:
    return {
        "issuer": s.issuer,
        "names": s.names,
        "not_after": s.not_after,
        "chain_length": s.chain_length,
        "client_auth": s.client_auth,
    }


def test_snapshot_json_round_trip() -> None:
    s = snap("a", "fp", chain_fingerprints=("fp", "ca"), client_auth=False)
    assert CertificateSnapshot.from_json(s.to_json()) == s


def unreachable(subject: str = "smarthost") -> Finding:
    return Finding(
        check=CheckId.ENDPOINT_UNREACHABLE,
        severity=Severity.CRITICAL,
        subject=subject,
        message="connection refused",
        cause="192.0.2.25",
    )


def test_an_unreachable_endpoint_does_not_resolve_its_certificate_findings() -> None:
    """The certificate cannot be seen while the server is down: unknown is not resolved."""
    r = Runner()
    assert kinds(r.run([expiry(5), chain()])) == ["opened", "opened"]
    down = r.run([unreachable()])
    assert kinds(down) == ["opened"]
    assert [f.check for e in down for f in e.findings] == [CheckId.ENDPOINT_UNREACHABLE]
    # another endpoint's certificate findings still resolve normally
    assert kinds(r.run([unreachable(), expiry(20, subject="other")])) == ["opened"]
    assert kinds(r.run([unreachable()])) == ["resolved"]
    # back up and renewed: now the certificate findings resolve, and so does the outage
    assert sorted(kinds(r.run([]))) == ["resolved", "resolved", "resolved"]

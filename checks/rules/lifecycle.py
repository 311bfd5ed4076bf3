"""The finding lifecycle: which runs deserve a message, and which only a silent update.

A run produces findings; people want transitions (healthchecks' `Flip`), not repeats. This module
is a pure function of the previous state, this run's findings and `now`, so a sequence of runs
can be replayed with a fake clock and the exact alerts it would have sent can be asserted.

Identity is `Finding.key` = (check, subject, cause). A finding is *opened* when first seen at
warning or worse, *escalated* when its severity rises above what was last alerted or when
`details["days_left"]` crosses an expiry step, *resolved* when a run that covered its check no
longer sees it, *reopened* when it comes back. A finding that goes bad, good, bad within
`flap_runs` runs is *flapping*: one alert, one quiet note, then silence until it settles.
Snoozes silence everything but escalation (which ends the snooze); acknowledgements are recorded
and only count for the incident they were made in (an ack older than the opening is stale).

Findings that share a cause (one certificate fingerprint served on several endpoints or
addresses, `details["fingerprint_sha256"]`) are delivered as one grouped alert (`group_events`),
and so are more than `STORM_THRESHOLD` findings of one check that open at once (an outage makes
40 endpoints unreachable in one run: one message, not 40 at one per second). Every member's
state then points at that one message; when some members resolve while others stay open, the
resolution is *partial* (`details["still_open"]`): a thread reply, never an edit that would
make the message look resolved while part of it is still broken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.i18n import _, format_day, ngettext
from checks.model import CheckId, Finding, Severity

FindingKey = tuple[str, str, str]

# More alerts than this of one kind and check in one run are merged into one (alert storm).
STORM_THRESHOLD = 5


class EventKind(StrEnum):
    """What happened to a finding (or a certificate) in one run."""

    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    FLAPPING = "flapping"
    NOTE = "note"
    CERT_CHANGED = "cert-changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledgement:
    user: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Snooze:
    until: datetime
    user: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingState:
    """What is remembered about one finding identity between runs."""

    finding: Finding
    open: bool
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    # the worst severity / smallest expiry step a message has already told people about
    alerted_severity: Severity | None = None
    alerted_step: int | None = None
    # bad (True) / good (False) for the last `flap_runs` runs that covered this check, oldest first
    history: tuple[bool, ...] = ()
    flapping: bool = False
    flap_noted: bool = False
    # a snooze set before this instant no longer silences (escalation broke it)
    snooze_broken_at: datetime | None = None
    # the event whose Slack message stands for this incident (resolution edits it)
    alert_event: str | None = None

    @property
    def key(self) -> FindingKey:
        return self.finding.key


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One transition; `notify` False means recorded (store, digest) but not posted."""

    id: str
    kind: EventKind
    at: datetime
    findings: tuple[Finding, ...]
    notify: bool = True
    reason: str = ""
    previous_severity: Severity | None = None
    step: int | None = None
    acknowledged_by: str | None = None
    # the event whose message this one edits or replies to (resolution, flapping note)
    reply_to: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # a resolution that closes a grouped message: the members that resolved in earlier runs,
    # so the edit can list every finding the message was about
    resolved_before: tuple[Finding, ...] = ()

    @property
    def keys(self) -> tuple[FindingKey, ...]:
        return tuple(f.key for f in self.findings)

    @property
    def severity(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.INFO)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    expiry_steps: tuple[int, ...] = (30, 14, 7, 3, 1)
    flap_runs: int = 3
    storm_threshold: int = STORM_THRESHOLD


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """The result of one run: the new state of every identity ever seen, and what happened."""

    states: dict[FindingKey, FindingState]
    events: tuple[Event, ...]


def job_cause(job: str) -> str:
    """The `cause` of the `relaycheck` finding that says a scheduled job failed inside us."""
    return f"job:{job}"


def vouched_checks(
    job_checks: Collection[CheckId] | None,
    *,
    ran: bool,
    unjudged: Collection[CheckId] = (),
) -> frozenset[CheckId] | None:
    """The checks one run of a job may confirm or resolve findings of (None: all of them).

    A job that ran vouches for its own checks (`job_checks`; None = every check) and for the
    `relaycheck` finding about its own earlier failure, minus what it could not judge this time
    (a failing tenant source leaves its checks neither confirmed nor resolved). A job that
    failed inside relaycheck vouches only for the `relaycheck` finding it raises.
    """
    if not ran:
        return frozenset({CheckId.RELAYCHECK})
    checked = None if job_checks is None else frozenset(job_checks) | {CheckId.RELAYCHECK}
    if unjudged:
        checked = (checked if checked is not None else frozenset(CheckId)) - frozenset(unjudged)
    return checked


def _foreign_job_failure(key: FindingKey, job: str) -> bool:
    return key[0] == CheckId.RELAYCHECK.value and key[2] != job_cause(job)


def confine_to_job(
    previous: Mapping[FindingKey, FindingState],
    transition: Transition,
    *,
    job: str,
    whole: bool,
) -> Transition:
    """Undo what one job's run decided about another job's failure finding.

    Only a complete run (`whole`: every check ran and the job did not fail) may settle every
    `relaycheck` finding; a partial or failed job vouches only for its own (`job:<name>`), so
    the certificates job recovering never resolves "the domains job failed", and vice versa.
    """
    if whole:
        return transition
    states = dict(transition.states)
    for key in [k for k in states if _foreign_job_failure(k, job)]:
        if key in previous:
            states[key] = previous[key]
        else:
            del states[key]
    events = tuple(
        e for e in transition.events if not any(_foreign_job_failure(k, job) for k in e.keys)
    )
    return Transition(states=states, events=events)


def event_id(kind: EventKind, key: FindingKey | str, at: datetime) -> str:
    """A stable id: the outbox uses it to suppress a second post of the same event."""
    ident = key if isinstance(key, str) else "|".join(key)
    return f"{kind.value}:{ident}@{at.isoformat()}"


def expiry_step(days_left: float | None, steps: Sequence[int]) -> int | None:
    """The smallest configured step that `days_left` is at or below (None: above all steps)."""
    if days_left is None:
        return None
    crossed = [s for s in steps if days_left <= s]
    return min(crossed) if crossed else None


def _days_left(finding: Finding) -> float | None:
    if finding.check is not CheckId.CERT_EXPIRY:
        return None
    value = finding.details.get("days_left")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# Checks judged from a certificate that was observed; unknowable while it cannot be observed.
CERTIFICATE_DERIVED = frozenset(
    {
        CheckId.CERT_EXPIRY,
        CheckId.CERT_NOT_YET_VALID,
        CheckId.CERT_CHAIN,
        CheckId.CERT_HOSTNAME,
        CheckId.CERT_WEAK,
        CheckId.CERT_EKU,
        CheckId.CERT_NOT_DEPLOYED,
        CheckId.CERT_REVOKED,
        CheckId.SAN_COVERAGE,
    }
)
# Failures that mean "no certificate was observed for this subject in this run".
_BLINDING = frozenset(
    {
        CheckId.ENDPOINT_UNREACHABLE,
        CheckId.STARTTLS_MISSING,
        CheckId.TLS_HANDSHAKE,
        CheckId.CERT_SOURCE,
    }
)


def unobserved_subjects(findings: Iterable[Finding]) -> frozenset[str]:
    """Subjects (endpoints, connectors) whose certificate this run could not observe.

    An expired certificate behind an endpoint that is down for an hour is still expired: its
    findings must stay open (and not be announced as resolved) until a run sees the endpoint.
    """
    return frozenset(
        f.subject for f in findings if f.check in _BLINDING and f.severity >= Severity.WARNING
    )


_CHECK_IDS = {c.value: c for c in CheckId}
_BAD = frozenset(s for s in Severity if s >= Severity.WARNING)


def _check_id(value: str) -> CheckId | None:
    return _CHECK_IDS.get(value)  # a dict, not `CheckId(value)`: called once per finding


def _is_bad(finding: Finding | None) -> bool:
    return finding is not None and finding.severity in _BAD


def _flapped(history: Sequence[bool]) -> bool:
    """bad, then good, then bad again inside the window."""
    seen_bad = seen_good_after_bad = False
    for bad in history:
        if bad and seen_good_after_bad:
            return True
        if bad:
            seen_bad = True
        elif seen_bad:
            seen_good_after_bad = True
    return False


def _ack_for(state: FindingState, acks: Mapping[FindingKey, Acknowledgement]) -> str | None:
    ack = acks.get(state.key)
    if ack is None or ack.at < state.opened_at:
        return None
    return ack.user


def snooze_active(state: FindingState, snooze: Snooze | None, now: datetime) -> bool:
    """A snooze silences the finding (even if it resolves and comes back) until it ends or an
    escalation breaks it."""
    if snooze is None or snooze.until <= now:
        return False
    return state.snooze_broken_at is None or snooze.at > state.snooze_broken_at


def advance(
    previous: Mapping[FindingKey, FindingState],
    findings: Iterable[Finding],
    *,
    now: datetime,
    policy: Policy,
    checked: Iterable[CheckId] | None = None,
    acks: Mapping[FindingKey, Acknowledgement] | None = None,
    snoozes: Mapping[FindingKey, Snooze] | None = None,
) -> Transition:
    """Apply one run to the lifecycle state.

    `checked` is the set of checks this run covered (None: all). A finding whose check was not
    run is left alone: a domains-only run must not resolve every certificate finding.
    """
    acks = acks or {}
    snoozes = snoozes or {}
    covered = None if checked is None else frozenset(checked)
    findings = tuple(findings)
    blind = unobserved_subjects(findings)
    seen: dict[FindingKey, Finding] = {}
    for item in findings:
        # the same identity twice in one run: keep the worst
        key = item.key  # built once: a run of 5,000 endpoints has ~45,000 findings
        old = seen.get(key)
        if old is None or item.severity > old.severity:
            seen[key] = item
    states = dict(previous)
    events: list[Event] = []
    window = max(policy.flap_runs, 2)

    # a finding that is neither bad nor remembered leaves no trace (see `state is None` below):
    # skipping those up front keeps a run of 5,000 healthy endpoints (45,000 OK findings) cheap
    relevant = set(states)
    relevant.update(key for key, item in seen.items() if item.severity in _BAD)
    for key in sorted(relevant):
        state = states.get(key)
        finding = seen.get(key)
        check = _check_id(key[0])
        if covered is not None and check not in covered and finding is None:
            continue
        if finding is None and check in CERTIFICATE_DERIVED and key[1] in blind:
            continue  # the certificate was not seen this run: unknown is not resolved
        bad = _is_bad(finding)

        if state is None:
            if not bad or finding is None:
                continue  # info/ok about something never alerted: nothing to remember
            step = expiry_step(_days_left(finding), policy.expiry_steps)
            ev = Event(
                id=event_id(EventKind.OPENED, key, now),
                kind=EventKind.OPENED,
                at=now,
                findings=(finding,),
                step=step,
            )
            states[key] = FindingState(
                finding=finding,
                open=True,
                opened_at=now,
                last_seen_at=now,
                alerted_severity=finding.severity,
                alerted_step=step,
                history=(True,),
                alert_event=ev.id,
            )
            events.append(ev)
            continue

        history = (*state.history, bad)[-window:]
        snooze = snoozes.get(key)

        if state.open and bad and finding is not None:
            new, ev_list = _still_bad(state, finding, now, policy, history, acks, snooze)
        elif state.open:
            new, ev_list = _resolved(state, finding, now, history, acks, snooze, policy)
        elif bad and finding is not None:
            new, ev_list = _reopened(state, finding, now, policy, history, acks, snooze)
        else:
            new = replace(state, history=history)
            if finding is not None:
                new = replace(new, finding=finding)
            ev_list = []
            settled = len(history) >= policy.flap_runs and not any(history[-policy.flap_runs :])
            if new.flapping and settled:
                # steadily good again: close the flapping message like any resolution
                new = replace(new, flapping=False, flap_noted=False)
                ev_list = [
                    Event(
                        id=event_id(EventKind.RESOLVED, key, now),
                        kind=EventKind.RESOLVED,
                        at=now,
                        findings=(new.finding,),
                        reason=_("stable for {runs} runs after flapping").format(
                            runs=policy.flap_runs
                        ),
                        reply_to=state.alert_event,
                    )
                ]
        states[key] = new
        events.extend(ev_list)
    quiet = apply_snoozes(events, states, snoozes, now)
    grouped = group_events(quiet, storm_threshold=policy.storm_threshold)
    bound = rebind_alert_events(states, grouped)
    return Transition(states=bound, events=mark_partial_resolutions(grouped, bound))


def _still_bad(
    state: FindingState,
    finding: Finding,
    now: datetime,
    policy: Policy,
    history: tuple[bool, ...],
    acks: Mapping[FindingKey, Acknowledgement],
    snooze: Snooze | None,
) -> tuple[FindingState, list[Event]]:
    step = expiry_step(_days_left(finding), policy.expiry_steps)
    alerted = state.alerted_severity or Severity.INFO
    rose = finding.severity > alerted
    crossed = step is not None and (state.alerted_step is None or step < state.alerted_step)
    new = replace(state, finding=finding, last_seen_at=now, history=history)
    if new.flapping and all(history[-policy.flap_runs :]) and len(history) >= policy.flap_runs:
        new = replace(new, flapping=False, flap_noted=False)  # settled: steadily bad
    if not (rose or crossed):
        return new, []
    reason = (
        _("severity rose from {old} to {new}").format(old=alerted.value, new=finding.severity.value)
        if rose
        else _("{left} left: crossed the {step}-day step").format(
            left=_fmt_days(_days_left(finding)), step=step
        )
    )
    ev = Event(
        id=event_id(EventKind.ESCALATED, state.key, now),
        kind=EventKind.ESCALATED,
        at=now,
        findings=(finding,),
        reason=reason,
        previous_severity=alerted,
        step=step,
        acknowledged_by=_ack_for(state, acks),
    )
    new = replace(
        new,
        alerted_severity=max(alerted, finding.severity),
        alerted_step=step if crossed else state.alerted_step,
        alert_event=ev.id,
        # escalation ends any snooze set so far (habit: a louder problem is never silenced)
        snooze_broken_at=now if snooze_active(state, snooze, now) else state.snooze_broken_at,
    )
    return new, [ev]


def _fmt_days(days: float | None) -> str:
    if days is None:
        return _("unknown time")
    whole = int(days)
    return ngettext("{n} day", "{n} days", whole).format(n=whole)


def _resolved(
    state: FindingState,
    finding: Finding | None,
    now: datetime,
    history: tuple[bool, ...],
    acks: Mapping[FindingKey, Acknowledgement],
    snooze: Snooze | None,
    policy: Policy,
) -> tuple[FindingState, list[Event]]:
    new = replace(
        state,
        open=False,
        resolved_at=now,
        history=history,
        finding=finding if finding is not None else state.finding,
    )
    if state.flapping:
        # still inside a flapping episode: at most one quiet note in the thread
        return _flap_note(new, now, _("resolved again"))
    ev = Event(
        id=event_id(EventKind.RESOLVED, state.key, now),
        kind=EventKind.RESOLVED,
        at=now,
        findings=(state.finding,),
        reason=_("no longer seen"),
        acknowledged_by=_ack_for(state, acks),
        reply_to=state.alert_event,
    )
    return new, [ev]


def _flap_note(state: FindingState, now: datetime, what: str) -> tuple[FindingState, list[Event]]:
    if state.flap_noted:
        return state, []
    ev = Event(
        id=event_id(EventKind.NOTE, state.key, now),
        kind=EventKind.NOTE,
        at=now,
        findings=(state.finding,),
        reason=_(
            "still flapping ({what}); further changes are recorded without messages until it "
            "settles"
        ).format(what=what),
        reply_to=state.alert_event,
    )
    return replace(state, flap_noted=True), [ev]


def _reopened(
    state: FindingState,
    finding: Finding,
    now: datetime,
    policy: Policy,
    history: tuple[bool, ...],
    acks: Mapping[FindingKey, Acknowledgement],
    snooze: Snooze | None,
) -> tuple[FindingState, list[Event]]:
    step = expiry_step(_days_left(finding), policy.expiry_steps)
    base = replace(
        state,
        finding=finding,
        open=True,
        last_seen_at=now,
        resolved_at=None,
        history=history,
    )
    if state.flapping:
        escalated = finding.severity > (state.alerted_severity or Severity.INFO)
        if not escalated:
            return _flap_note(base, now, _("came back"))
    flapping = _flapped(history[-policy.flap_runs :])
    kind = EventKind.FLAPPING if flapping and not state.flapping else EventKind.REOPENED
    # a new incident: acks and snoozes of the previous one no longer apply
    base = replace(base, opened_at=now)
    ev = Event(
        id=event_id(kind, state.key, now),
        kind=kind,
        at=now,
        findings=(finding,),
        reason=(
            _("bad, good and bad again within {runs} runs").format(runs=policy.flap_runs)
            if kind is EventKind.FLAPPING
            else _("seen again after it was resolved")
        ),
        previous_severity=state.alerted_severity,
        step=step,
        reply_to=state.alert_event if kind is EventKind.REOPENED else None,
    )
    new = replace(
        base,
        alerted_severity=finding.severity,
        alerted_step=step,
        flapping=flapping or state.flapping,
        flap_noted=False,
        alert_event=ev.id,
    )
    return new, [ev]


_SNOOZABLE = frozenset({EventKind.OPENED, EventKind.REOPENED, EventKind.NOTE, EventKind.FLAPPING})


def apply_snoozes(
    events: Iterable[Event],
    states: Mapping[FindingKey, FindingState],
    snoozes: Mapping[FindingKey, Snooze],
    now: datetime,
) -> tuple[Event, ...]:
    """Silence events of snoozed findings; escalations break through (their state says so)."""
    out = []
    for ev in events:
        silenced = ev.kind in (
            EventKind.OPENED,
            EventKind.REOPENED,
            EventKind.NOTE,
            EventKind.FLAPPING,
        )
        if silenced and all(
            k in states and snooze_active(states[k], snoozes.get(k), now) for k in ev.keys
        ):
            ev = replace(ev, notify=False)
        out.append(ev)
    return tuple(out)


# --------------------------------------------------------------------------- grouping


def _group_key(ev: Event) -> tuple[str, ...] | None:
    if ev.kind is EventKind.RESOLVED and ev.reply_to:
        # resolutions of members of one message are one edit/reply, whatever grouped them
        return (ev.kind.value, ev.reply_to, str(ev.notify))
    fingerprints = {f.details.get("fingerprint_sha256") for f in ev.findings}
    if len(fingerprints) != 1:
        return None
    (fp,) = fingerprints
    if not isinstance(fp, str) or not fp:
        return None
    check = ev.findings[0].check.value
    return (ev.kind.value, check, fp, str(ev.notify), ev.reply_to or "")


_STORMABLE = frozenset({EventKind.OPENED, EventKind.REOPENED, EventKind.ESCALATED})


def _storm_key(ev: Event) -> tuple[str, ...] | None:
    if ev.kind not in _STORMABLE or not ev.findings:
        return None
    return (ev.kind.value, ev.findings[0].check.value, str(ev.notify), ev.reply_to or "")


def _merge(head: Event, ev: Event) -> Event:
    """`head` now also speaks for `ev` (and for whatever `ev` already spoke for)."""
    merged = [*head.details.get("merged", []), ev.id, *ev.details.get("merged", [])]
    return replace(
        head, findings=head.findings + ev.findings, details={**head.details, "merged": merged}
    )


def group_events(
    events: Iterable[Event], *, storm_threshold: int = STORM_THRESHOLD
) -> tuple[Event, ...]:
    """Merge events that share a certificate fingerprint (or a message to resolve) into one,
    then merge a storm: more than `storm_threshold` alerts of one kind and check in this run.

    The merged event keeps the id of its first member, so a resolution that refers to any member
    finds the one message that told people about all of them.
    """
    order: list[Event] = []
    groups: dict[tuple[str, ...], int] = {}
    for ev in events:
        gk = _group_key(ev)
        if gk is None:
            order.append(ev)
            continue
        index = groups.get(gk)
        if index is None:
            groups[gk] = len(order)
            order.append(ev)
            continue
        order[index] = _merge(order[index], ev)
    return _merge_storms(order, storm_threshold)


def _merge_storms(events: Sequence[Event], threshold: int) -> tuple[Event, ...]:
    counts = Counter(k for k in map(_storm_key, events) if k is not None)
    order: list[Event] = []
    heads: dict[tuple[str, ...], int] = {}
    members: dict[tuple[str, ...], list[Event]] = {}
    for ev in events:
        sk = _storm_key(ev)
        if sk is None or counts[sk] <= threshold:
            order.append(ev)
            continue
        members.setdefault(sk, []).append(ev)
        index = heads.get(sk)
        if index is None:
            heads[sk] = len(order)
            order.append(ev)
        else:
            order[index] = _merge(order[index], ev)
    for sk, index in heads.items():
        group = members[sk]
        reasons = list(dict.fromkeys(e.reason for e in group if e.reason))
        acked = {e.acknowledged_by for e in group}
        steps = [e.step for e in group if e.step is not None]
        order[index] = replace(
            order[index],
            reason="; ".join(reasons),
            # an ack shown on a storm must hold for every member, not just the first
            acknowledged_by=acked.pop() if len(acked) == 1 else None,
            step=min(steps) if steps else None,
            details={**order[index].details, "storm": len(order[index].findings)},
        )
    return tuple(order)


def rebind_alert_events(
    states: Mapping[FindingKey, FindingState], events: Iterable[Event]
) -> dict[FindingKey, FindingState]:
    """After grouping, point each member's state at the merged event that carries its message."""
    target = {merged: ev.id for ev in events for merged in ev.details.get("merged", [])}
    return {
        key: replace(state, alert_event=target[state.alert_event])
        if state.alert_event in target
        else state
        for key, state in states.items()
    }


def subject_label(finding: Finding) -> str:
    """How a finding is named in a list of members: subject, and the address if there is one."""
    return f"{finding.subject} ({finding.cause})" if finding.cause else finding.subject


def mark_partial_resolutions(
    events: Iterable[Event], states: Mapping[FindingKey, FindingState]
) -> tuple[Event, ...]:
    """Tell each resolution whether its message still has open members.

    A grouped message resolves member by member. While any member whose state still points at
    the message is open, the resolution is partial (`details["still_open"]`, and the subjects in
    `details["still_open_subjects"]`); the last one carries the members that resolved before
    (`resolved_before`), so the edit lists everything the message was about.
    """
    by_message: dict[str, list[FindingState]] = {}
    for state in states.values():
        if state.alert_event is not None:
            by_message.setdefault(state.alert_event, []).append(state)
    out = []
    for ev in events:
        if ev.kind is EventKind.RESOLVED and ev.reply_to is not None:
            own = set(ev.keys)
            others = sorted(
                (s for s in by_message.get(ev.reply_to, []) if s.key not in own),
                key=lambda s: s.key,
            )
            still = [s for s in others if s.open]
            if still:
                ev = replace(
                    ev,
                    details={
                        **ev.details,
                        "still_open": len(still),
                        "still_open_subjects": [subject_label(s.finding) for s in still],
                    },
                )
            elif others:
                ev = replace(ev, resolved_before=tuple(s.finding for s in others))
        out.append(ev)
    return tuple(out)


# --------------------------------------------------------------------------- certificate change


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSnapshot:
    """The served certificate of one endpoint/address, reduced to what a change report needs."""

    source: str
    fingerprint: str
    subject: str
    issuer: str
    names: tuple[str, ...]
    not_after: datetime
    chain_length: int
    chain_fingerprints: tuple[str, ...] = ()
    client_auth: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "not_after": self.not_after.isoformat(),
            "chain_length": self.chain_length,
            "chain_fingerprints": list(self.chain_fingerprints),
            "client_auth": self.client_auth,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CertificateSnapshot:
        return cls(
            source=str(data["source"]),
            fingerprint=str(data["fingerprint"]),
            subject=str(data["subject"]),
            issuer=str(data["issuer"]),
            names=tuple(str(n) for n in data["names"]),
            not_after=datetime.fromisoformat(str(data["not_after"])),
            chain_length=int(data["chain_length"]),
            chain_fingerprints=tuple(str(n) for n in data.get("chain_fingerprints", ())),
            client_auth=bool(data.get("client_auth", True)),
        )


def certificate_changes(
    previous: Mapping[str, CertificateSnapshot],
    current: Mapping[str, CertificateSnapshot],
    *,
    now: datetime,
) -> tuple[Event, ...]:
    """One `cert-changed` event per (old, new) certificate pair, listing every source that switched.

    A source seen for the first time is not a change (nothing to compare with); a source that
    disappeared is the unreachable check's business, not this one's.
    """
    groups: dict[tuple[str, str], list[tuple[CertificateSnapshot, CertificateSnapshot]]] = {}
    for source in sorted(current):
        new = current[source]
        old = previous.get(source)
        if old is None or old.fingerprint == new.fingerprint:
            continue
        groups.setdefault((old.fingerprint, new.fingerprint), []).append((old, new))
    events = []
    for (old_fp, new_fp), pairs in groups.items():
        old, new = pairs[0]
        sources = [n.source for _, n in pairs]
        added = sorted(set(new.names) - set(old.names))
        removed = sorted(set(old.names) - set(new.names))
        details: dict[str, Any] = {
            "sources": sources,
            "old": old.to_json(),
            "new": new.to_json(),
            "issuer_changed": old.issuer != new.issuer,
            "subject_changed": old.subject != new.subject,
            "names_added": added,
            "names_removed": removed,
            "chain_length": [old.chain_length, new.chain_length],
            "not_after": [old.not_after.isoformat(), new.not_after.isoformat()],
            "client_auth_dropped": old.client_auth and not new.client_auth,
        }
        severity = Severity.WARNING if removed or details["client_auth_dropped"] else Severity.INFO
        findings = tuple(
            Finding(
                check=CheckId.CERT_CHANGED,
                severity=severity,
                subject=source,
                message=_change_summary(old, new, added, removed),
                details={"fingerprint": new_fp, "previous_fingerprint": old_fp},
                cause=new_fp,
            )
            for source in sources
        )
        events.append(
            Event(
                id=event_id(EventKind.CERT_CHANGED, f"{old_fp}>{new_fp}", now),
                kind=EventKind.CERT_CHANGED,
                at=now,
                findings=findings,
                reason=findings[0].message,
                details=details,
            )
        )
    return tuple(events)


def _change_summary(
    old: CertificateSnapshot, new: CertificateSnapshot, added: list[str], removed: list[str]
) -> str:
    parts = []
    if old.issuer != new.issuer:
        parts.append(_("issuer {old} -> {new}").format(old=old.issuer, new=new.issuer))
    if added:
        parts.append(_("names added: {names}").format(names=", ".join(added)))
    if removed:
        parts.append(_("names removed: {names}").format(names=", ".join(removed)))
    if old.not_after != new.not_after:
        parts.append(
            _("expires {old} -> {new}").format(
                old=format_day(old.not_after), new=format_day(new.not_after)
            )
        )
    if old.chain_length != new.chain_length:
        parts.append(
            _("chain length {old} -> {new}").format(old=old.chain_length, new=new.chain_length)
        )
    if old.client_auth and not new.client_auth:
        parts.append(_("clientAuth EKU dropped"))
    return "; ".join(parts) or _("new certificate with the same names, issuer and expiry")


def _of_certificate(finding: Finding, fingerprint: str) -> bool:
    """Is this finding about the certificate with that (full, hex) fingerprint?"""
    full = finding.details.get("fingerprint_sha256")
    if isinstance(full, str) and full:
        return full == fingerprint
    return finding.cause.startswith(f"sha256:{fingerprint[:16]}")


def _summary(finding: Finding) -> dict[str, str]:
    return {
        "check": finding.check.value,
        "subject": finding.subject,
        "severity": finding.severity.value,
        "message": finding.message,
    }


def fold_replacements(
    events: Sequence[Event], changes: Sequence[Event]
) -> tuple[tuple[Event, ...], tuple[Event, ...]]:
    """Make a certificate replacement one story: what the new certificate fixed and broke.

    When an endpoint's certificate is replaced, every finding about the old certificate
    resolves ("no longer seen") in the same run the new one's findings open. Announced apart,
    that reads as good news beside the bad. Here the resolutions of the old certificate's
    findings are folded into the `cert-changed` event (`details["fixed"]`; their messages are
    still edited to say they were replaced, without a thread reply of their own), and the new
    certificate's opened findings are listed there too (`details["new_problems"]`; they keep
    their own alerts, which carry the buttons).
    """
    if not changes:
        return tuple(events), tuple(changes)
    folded_changes: list[Event] = []
    kept = list(events)
    for change in changes:
        old_fp = str(change.details.get("old", {}).get("fingerprint", ""))
        new_fp = str(change.details.get("new", {}).get("fingerprint", ""))
        if not old_fp or not new_fp:
            folded_changes.append(change)
            continue
        fixed: list[dict[str, str]] = []
        worse: list[dict[str, str]] = []
        for index, event in enumerate(kept):
            if not event.findings:
                continue
            if event.kind is EventKind.RESOLVED and all(
                _of_certificate(f, old_fp) for f in event.findings
            ):
                fixed.extend(_summary(f) for f in event.findings)
                kept[index] = replace(
                    event,
                    reason=_("replaced by the new certificate {fingerprint}…").format(
                        fingerprint=new_fp[:16]
                    ),
                    details={**event.details, "replaced_by": new_fp},
                )
            elif event.kind in (EventKind.OPENED, EventKind.REOPENED) and all(
                _of_certificate(f, new_fp) for f in event.findings
            ):
                worse.extend(_summary(f) for f in event.findings)
        folded_changes.append(
            replace(change, details={**change.details, "fixed": fixed, "new_problems": worse})
        )
    return tuple(kept), tuple(folded_changes)

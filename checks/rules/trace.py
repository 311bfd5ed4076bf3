"""Summaries of Exchange Online message traces: which relay failures, how many, since when (pure).

An incident rarely starts with one bounce: it starts with a message trace exported by whoever
noticed (`Get-MessageTraceV2 ... | Export-Csv`, `Get-MessageTraceDetailV2 ... | Export-Csv`, or
the historical search report from the admin center). The reader (`checks.probes.trace`) turns
any of those layouts into `TraceRow`s; this module counts the failures per status (the replies
recognised in the row, by `checks.rules.replies`, or the trace's own status word) and per relay
scenario (NDRs by their null sender, forwards by the configured forwarding rules, foreign sender
domains by the accepted domains), and says when they were first and last seen, who sent and
received most of them, and what to fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks.i18n import _
from checks.model import AcceptedDomain, Forward, Scenario
from checks.rules.replies import UNKNOWN_KEY, Triage, triage_all

# status words of the three layouts that mean "this recipient did not get it"
FAILED_WORDS = frozenset({"failed", "fail", "drop", "defer", "deferred", "expand", "quarantined"})
TOP = 5
# the senders Exchange Online and Exchange use for non-delivery reports
_NDR_SENDERS = ("microsoftexchange", "postmaster@", "mailer-daemon@")


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRow:
    """One row of a trace export, whatever its layout."""

    at: datetime | None
    sender: str  # the envelope sender; "" or "<>" for a non-delivery report
    recipient: str
    status: str  # Failed, Delivered, Fail, Receive ... as the export says
    detail: str = ""  # the text that may hold the SMTP reply (Detail, Data, recipient_status)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusCount:
    code: str  # as in the trace: "550 5.7.64 TenantAttribution", or the status word
    key: str | None  # the triage entry, None for a bare status word
    count: int
    answer: Triage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSummary:
    layout: str
    rows: int
    failures: int
    statuses: tuple[StatusCount, ...]
    scenarios: tuple[tuple[str, int], ...]  # scenario id (or "unknown") -> failures
    first_seen: datetime | None
    last_seen: datetime | None
    top_senders: tuple[tuple[str, int], ...]
    top_recipients: tuple[tuple[str, int], ...]
    fixes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "rows": self.rows,
            "failures": self.failures,
            "statuses": [
                {
                    "code": s.code,
                    "key": s.key,
                    "count": s.count,
                    "class": s.answer.status_class if s.answer else None,
                    "message": s.answer.meaning if s.answer else None,
                }
                for s in self.statuses
            ],
            "scenarios": dict(self.scenarios),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "top_senders": [{"address": a, "count": n} for a, n in self.top_senders],
            "top_recipients": [{"address": a, "count": n} for a, n in self.top_recipients],
            "fixes": list(self.fixes),
            "message": summary_line(self),
        }


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


def _is_ndr(sender: str) -> bool:
    text = sender.strip().lower()
    return text in ("", "<>") or text.startswith(_NDR_SENDERS)


def scenario_of(
    row: TraceRow, *, accepted: Sequence[AcceptedDomain], forwards: Sequence[Forward]
) -> str:
    """The relay scenario of a row, as far as a trace shows it ("unknown" without domains)."""
    names = {d.name for d in accepted}
    if names and _domain(row.recipient) in names:
        return Scenario.TO_TENANT.value
    if _is_ndr(row.sender):
        return Scenario.NDR.value
    if names and _domain(row.sender) in names:
        return Scenario.ACCEPTED_SENDER.value
    # a foreign sender to a configured forward target: the on-prem forward (KB scenario 3)
    targets = {f.to.lower() for f in forwards}
    if row.recipient.strip().lower() in targets:
        return Scenario.FORWARDING.value
    if not names:
        return "unknown"
    return Scenario.UNREGISTERED_SENDER.value


def is_failure(row: TraceRow, answers: Sequence[Triage]) -> bool:
    return row.status.strip().lower() in FAILED_WORDS or any(a.key != UNKNOWN_KEY for a in answers)


def summarise(
    rows: Iterable[TraceRow],
    *,
    layout: str,
    accepted: Sequence[AcceptedDomain] = (),
    forwards: Sequence[Forward] = (),
) -> TraceSummary:
    """Count the failures of a trace per status and scenario, with first/last seen and top
    senders and recipients; the fixes are those of the statuses seen, most frequent first."""
    total = 0
    failures = 0
    statuses: Counter[str] = Counter()
    answers: dict[str, Triage | None] = {}
    scenarios: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    recipients: Counter[str] = Counter()
    times: list[datetime] = []
    for row in rows:
        total += 1
        found = triage_all(row.detail) if row.detail else ()
        if not is_failure(row, found):
            continue
        failures += 1
        known = [a for a in found if a.key != UNKNOWN_KEY]
        if known:
            for answer in known:
                statuses[answer.code] += 1
                answers.setdefault(answer.code, answer)
        else:
            word = row.status.strip() or "Failed"
            statuses[word] += 1
            answers.setdefault(word, None)
        scenarios[scenario_of(row, accepted=accepted, forwards=forwards)] += 1
        senders[row.sender.strip() or "<>"] += 1
        recipients[row.recipient.strip()] += 1
        if row.at is not None:
            times.append(row.at)
    ordered = [
        StatusCount(
            code=code,
            key=answers[code].key if answers[code] is not None else None,  # type: ignore[union-attr]
            count=count,
            answer=answers[code],
        )
        for code, count in statuses.most_common()
    ]
    fixes: list[str] = []
    for status in ordered:
        if status.answer is not None:
            fixes.extend(status.answer.fixes)
    relay_scenarios = {s.value for s in Scenario if s.needs_certificate_connector}
    if any(s in relay_scenarios for s in scenarios):
        fixes.append(
            _(
                "NDRs, sender domains that are not accepted and forwards need a "
                "certificate-based OnPremises connector whose certificate domain is an "
                'accepted domain: `relaycheck explain "SENDER -> RECIPIENT"` shows what is missing'
            )
        )
    return TraceSummary(
        layout=layout,
        rows=total,
        failures=failures,
        statuses=tuple(ordered),
        scenarios=tuple(scenarios.most_common()),
        first_seen=min(times) if times else None,
        last_seen=max(times) if times else None,
        top_senders=tuple(senders.most_common(TOP)),
        top_recipients=tuple(recipients.most_common(TOP)),
        fixes=tuple(dict.fromkeys(fixes)),
    )


def summary_line(summary: TraceSummary) -> str:
    """One sentence for a notification or the JSON `message` field."""
    return _("{failures} of {rows} trace rows are relay failures").format(
        failures=summary.failures, rows=summary.rows
    )

"""One scheduled cycle: scan -> lifecycle -> store (+ outbox), in that order, every time.

The scan is the only slow, fallible part; everything after it is pure (lifecycle, rendering)
followed by one store transaction. A scan that raises is our bug: it is logged, recorded as a
`relaycheck` finding about relaycheck itself (so it reaches the channel like any other
problem), nothing else is resolved by that run, and the next run happens as scheduled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.alerting.alerts import render_digest, render_event
from bot.alerting.lease import Fence
from bot.alerting.store import Store
from bot.records import OutboxDraft, RunRecord
from checks.model import CheckId, Config, Finding, Severity
from checks.report import EXIT_UNKNOWN, exit_code
from checks.rules.lifecycle import (
    CertificateSnapshot,
    Event,
    Policy,
    advance,
    certificate_changes,
    confine_to_job,
    fold_replacements,
    job_cause,
    vouched_checks,
)
from checks.scan import ObservedCertificate, run_scan

log = logging.getLogger("relaycheck.cycle")

# which checks each scheduled job runs; None = every check (and so it may resolve every finding)
JOB_CHECKS: dict[str, tuple[CheckId, ...] | None] = {
    "certificates": None,
    "domains": (CheckId.ACCEPTED_DOMAIN, CheckId.MX, CheckId.DNS, CheckId.TENANT_SOURCE),
}

Scan = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleResult:
    job: str
    ok: bool
    findings: tuple[Finding, ...]
    events: tuple[Event, ...]
    drafts: int

    @property
    def exit_code(self) -> int:
        """Like `relaycheck scan`: 0 ok, 1 warning, 2 critical, 3 the scan could not run."""
        return exit_code(self.findings) if self.ok else EXIT_UNKNOWN


def policy_from(config: Config) -> Policy:
    return Policy(expiry_steps=config.alerts.expiry_steps, flap_runs=config.alerts.flap_runs)


def failure_finding(job: str, err: BaseException) -> Finding:
    return Finding(
        check=CheckId.RELAYCHECK,
        severity=Severity.WARNING,
        subject="relaycheck",
        message=f"the scheduled {job} run failed inside relaycheck ({type(err).__name__}: {err}); "
        "its checks did not run this time, the next run happens as scheduled",
        details={"job": job, "error": type(err).__name__},
        cause=job_cause(job),
    )


def snapshots(observed: Iterable[ObservedCertificate]) -> dict[str, CertificateSnapshot]:
    """Reduce the scan's observed chains to per-source snapshots (source = subject/address)."""
    out: dict[str, CertificateSnapshot] = {}
    for item in observed:
        chain = item.chain
        if not chain:
            continue
        leaf = chain[0]
        source = f"{item.subject}/{item.address}" if item.address else item.subject
        if item.key_offer:  # a dual-certificate server's other certificate is its own source
            source += f" ({item.key_offer})"
        out[source] = CertificateSnapshot(
            source=source,
            fingerprint=leaf.fingerprint_sha256,
            subject=leaf.subject,
            issuer=leaf.issuer,
            names=tuple(leaf.names),
            not_after=leaf.not_after,
            chain_length=len(chain),
            chain_fingerprints=tuple(c.fingerprint_sha256 for c in chain),
            client_auth=bool(leaf.client_auth_allowed),
        )
    return out


async def run_cycle(
    config: Config,
    store: Store,
    *,
    now: datetime,
    job: str = "certificates",
    scan: Scan | None = None,
    environ: Mapping[str, str] | None = None,
    channel: str | None = None,
    fence: Fence | None = None,
) -> CycleResult:
    """Run one job now and queue whatever it means for the channel.

    With `fence` (a leader's lease epoch) the store writes the results only if this replica
    still leads; otherwise it raises `LeaseLost` and the run leaves no trace, so the replica
    that took over runs it again (its job mark was never moved)."""
    wanted = JOB_CHECKS.get(job)
    observed: tuple[ObservedCertificate, ...] = ()
    seen_domains: frozenset[str] | None = None
    unjudged: frozenset[CheckId] = frozenset()
    try:
        report = await (scan or run_scan)(
            config,
            now=now,
            only=frozenset(wanted) if wanted is not None else None,
            environ=environ,
            previous_domains=store.accepted_domains(),
        )
    except Exception as err:  # our bug: reported as a finding, never kills the daemon
        log.exception("scheduled %s run failed", job)
        ok = False
        findings = [failure_finding(job, err)]
    else:
        ok = True
        findings = list(report.findings)
        observed = report.certificates
        seen_domains = report.accepted_domains or None
        unjudged = frozenset(report.unjudged)
    previous = store.load_states()
    transition = advance(
        previous,
        findings,
        now=now,
        policy=policy_from(config),
        checked=vouched_checks(wanted, ran=ok, unjudged=unjudged),
        acks=store.acks(),
        snoozes=store.snoozes(),
    )
    transition = confine_to_job(previous, transition, job=job, whole=ok and wanted is None)
    states = transition.states
    events = transition.events
    current = snapshots(observed)
    changes = certificate_changes(store.latest_certificates(), current, now=now)
    events, changes = fold_replacements(events, changes)
    all_events = (*events, *changes)
    drafts: list[OutboxDraft] = []
    for event in all_events:
        for draft in render_event(event, config.alerts):
            drafts.append(_with_channel(draft, channel))
    finished = datetime.now(now.tzinfo)
    store.record_cycle(
        run=RunRecord(
            job=job,
            started_at=now,
            finished_at=max(finished, now),
            ok=ok,
            summary={
                "findings": len(findings),
                "events": len(all_events),
                # App Home's readiness rows: the verdict of every scenario, OK ones included
                "relay_scenarios": [
                    {
                        "scenario": f.subject,
                        "cause": f.cause,
                        "severity": f.severity.value,
                        "accepted": f.details.get("accepted"),
                        "smtp_response": f.details.get("smtp_response"),
                    }
                    for f in findings
                    if f.check is CheckId.RELAY_SCENARIO
                ],
            },
        ),
        states=states,
        drafts=drafts,
        certificates=current.values(),
        accepted_domains=seen_domains,
        now=now,
        fence=fence,
    )
    return CycleResult(
        job=job, ok=ok, findings=tuple(findings), events=tuple(all_events), drafts=len(drafts)
    )


def _with_channel(draft: OutboxDraft, channel: str | None) -> OutboxDraft:
    if channel is None or draft.channel is not None:
        return draft
    return replace(draft, channel=channel)


async def run_digest(
    config: Config,
    store: Store,
    *,
    now: datetime,
    channel: str | None = None,
    fence: Fence | None = None,
) -> None:
    """Queue the weekly digest (one per scheduled time: its id is the time)."""
    draft = render_digest(
        store.open_findings(now=now),
        store.latest_certificates().values(),
        now=now,
        settings=config.alerts,
        digest_id=f"digest@{now.isoformat()}",
    )
    store.record_digest(_with_channel(draft, channel), now, fence=fence)

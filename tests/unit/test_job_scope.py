"""What one scheduled job's run may settle: pure lifecycle policy, no store, no scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from checks.model import CheckId, Finding, Severity
from checks.rules.lifecycle import (
    EventKind,
    Policy,
    advance,
    confine_to_job,
    job_cause,
    vouched_checks,
)

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
POLICY = Policy()
DOMAINS = (CheckId.ACCEPTED_DOMAIN, CheckId.MX)


def job_failure(job: str) -> Finding:
    return Finding(
        check=CheckId.RELAYCHECK,
        severity=Severity.WARNING,
        subject="relaycheck",
        message=f"the scheduled {job} run failed",
        cause=job_cause(job),
    )


def test_a_whole_run_vouches_for_every_check() -> None:
    assert vouched_checks(None, ran=True) is None


def test_a_partial_job_vouches_for_its_checks_and_its_own_failure_finding() -> None:
    assert vouched_checks(DOMAINS, ran=True) == {*DOMAINS, CheckId.RELAYCHECK}


def test_a_failed_job_vouches_only_for_the_failure_it_raises() -> None:
    assert vouched_checks(None, ran=False) == {CheckId.RELAYCHECK}
    assert vouched_checks(DOMAINS, ran=False) == {CheckId.RELAYCHECK}


def test_what_could_not_be_judged_is_neither_confirmed_nor_resolved() -> None:
    whole = vouched_checks(None, ran=True, unjudged={CheckId.ACCEPTED_DOMAIN})
    assert whole is not None
    assert CheckId.ACCEPTED_DOMAIN not in whole
    assert CheckId.CERT_EXPIRY in whole
    partial = vouched_checks(DOMAINS, ran=True, unjudged={CheckId.MX})
    assert partial == {CheckId.ACCEPTED_DOMAIN, CheckId.RELAYCHECK}


def test_a_recovering_partial_job_never_resolves_another_jobs_failure() -> None:
    first = advance(
        {}, [job_failure("certificates"), job_failure("domains")], now=T0, policy=POLICY
    )
    later = T0 + timedelta(hours=1)
    # the domains job ran fine: it saw neither failure finding
    ran = advance(
        first.states,
        [],
        now=later,
        policy=POLICY,
        checked=vouched_checks(DOMAINS, ran=True),
    )
    assert {e.kind for e in ran.events} == {EventKind.RESOLVED}
    confined = confine_to_job(first.states, ran, job="domains", whole=False)
    resolved = [k for e in confined.events for k in e.keys]
    assert resolved == [("relaycheck", "relaycheck", "job:domains")]
    certificates_key = ("relaycheck", "relaycheck", "job:certificates")
    assert confined.states[certificates_key] == first.states[certificates_key]


def test_a_failed_job_does_not_open_a_finding_for_another_job() -> None:
    ran = advance({}, [job_failure("digest")], now=T0, policy=POLICY)
    confined = confine_to_job({}, ran, job="domains", whole=False)
    assert confined.states == {}
    assert confined.events == ()


def test_a_whole_run_is_left_as_it_decided() -> None:
    ran = advance({}, [job_failure("domains")], now=T0, policy=POLICY)
    assert confine_to_job({}, ran, job="certificates", whole=True) is ran

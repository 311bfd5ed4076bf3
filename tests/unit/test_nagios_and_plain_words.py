"""Monitoring-plugin output from plain findings, and the verifier's words made plain."""

from __future__ import annotations

import pytest

from checks.model import CheckId, Finding, Severity, Thresholds
from checks.report import perfdata, render_nagios
from checks.rules.chain import plain_reason
from checks.scan import summarize


def expiry(subject: str, days: int, severity: Severity, **details: object) -> Finding:
    return Finding(
        check=CheckId.CERT_EXPIRY,
        severity=severity,
        subject=subject,
        message=f"certificate {subject} expires ({days} days left)",
        details={"days_left": days, **details},
        cause=f"sha256:{subject}{details.get('key_type', '')}",
    )


def test_status_line_counts_and_names_problems_worst_first() -> None:
    findings = [
        expiry("mail2", 20, Severity.WARNING),
        expiry("mail1", 3, Severity.CRITICAL),
        Finding(
            check=CheckId.CERT_CHAIN,
            severity=Severity.CRITICAL,
            subject="mail3",
            message="untrusted: the chain ends at CN=Private Root | with a pipe",
        ),
        expiry("mail3", 90, Severity.OK),
    ]
    out = render_nagios(findings, summarize(findings), thresholds=Thresholds())
    first, *rest = out.splitlines()
    status, perf = first.split(" | ")
    assert status.startswith(
        "RELAYCHECK CRITICAL - 2 critical, 1 warning: mail1 expires in 3 days; "
    )
    assert "mail3 cert-chain: untrusted" in status
    assert status.endswith("mail2 expires in 20 days")
    assert perf == " ".join(
        [
            "'mail1 days'=3;30;7;;",
            "'mail2 days'=20;30;7;;",
            "'mail3 days'=90;30;7;;",
        ]
    )
    assert len(rest) == 3
    assert all("|" not in line for line in rest)  # a pipe would start perfdata


def test_ok_line_and_expired_wording() -> None:
    ok = [expiry("mail1", 90, Severity.OK)]
    assert render_nagios(ok, summarize(ok), thresholds=Thresholds()).startswith(
        "RELAYCHECK OK - 1 findings, no problems | 'mail1 days'=90;30;7;;"
    )
    gone = [expiry("mail1", -4, Severity.CRITICAL)]
    assert "mail1 expired 4 days ago" in render_nagios(
        gone, summarize(gone), thresholds=Thresholds()
    )


def test_perfdata_labels_stay_unique_for_two_certificates_of_one_endpoint() -> None:
    findings = [
        expiry("mail1", 90, Severity.OK, key_type="EC"),
        expiry("mail1", 5, Severity.CRITICAL, key_type="RSA"),
        expiry("it's", 10, Severity.WARNING),
    ]
    items = perfdata(findings, Thresholds(warning_days=21, critical_days=5))
    assert items == [
        "'it''s days'=10;21;5;;",
        "'mail1 EC days'=90;21;5;;",
        "'mail1 RSA days'=5;21;5;;",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        'validation failed: Other("unsupported signature algorithm: AlgorithmIdentifier { oid: '
        'DefinedByMarker(PhantomData<x509::common::AlgorithmParameters>), params: Some(...) }")',
        "validation failed: candidates exhausted: cert is not valid at validation time",
        "something new and strange: Name(CN=x) <Certificate(subject=...)>",
    ],
)
def test_plain_reason_never_passes_library_text(raw: str) -> None:
    text = plain_reason(raw)
    for marker in ("PhantomData", "AlgorithmIdentifier", "Name(", "<Certificate(", "{"):
        assert marker not in text
    assert text

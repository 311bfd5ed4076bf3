"""Pure certificate rules over plain observations: pools, thresholds, weak signatures, reports."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.cli import main
from checks.model import CheckId, Endpoint, Finding, Severity, Thresholds
from checks.observations import FailureKind, ProbeFailure, ProbeStage, TlsObservation
from checks.probes.trust import load_trust_anchors
from checks.report import exit_code, render_table, to_json
from checks.rules.certcheck import (
    check_expiry,
    check_weak_certificate,
    evaluate_endpoint,
    group_chains,
)
from checks.rules.certificates import facts_from_x509
from checks.scan import summarize
from tests.fakes.pki import Issued, Pki

ENDPOINT = Endpoint(name="pool", host="mail.contoso.com", port=25)


def served(address: str, leaf: Issued, *, with_intermediate: bool = True) -> TlsObservation:
    extra = tuple(facts_from_x509(c) for c in leaf.intermediates) if with_intermediate else ()
    return TlsObservation(
        endpoint="pool",
        host="mail.contoso.com",
        port=25,
        address=address,
        chain=(leaf.facts, *extra),
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
    )


def test_half_renewed_pool_gives_one_finding_per_certificate_naming_addresses(pki: Pki) -> None:
    old = pki.leaf(days=3.5)
    new = pki.leaf(days=90)
    observations = [
        served("192.0.2.1", new),
        served("192.0.2.2", old),
        served("192.0.2.3", new),
    ]
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    findings = evaluate_endpoint(
        ENDPOINT, observations, now=pki.now, thresholds=Thresholds(), anchors=anchors
    )
    expiry = {f.cause: f for f in findings if f.check is CheckId.CERT_EXPIRY}
    assert set(expiry) == {f"sha256:{new.fingerprint[:16]}", f"sha256:{old.fingerprint[:16]}"}
    stale = expiry[f"sha256:{old.fingerprint[:16]}"]
    fresh = expiry[f"sha256:{new.fingerprint[:16]}"]
    assert stale.severity is Severity.CRITICAL
    assert stale.details["addresses"] == ["192.0.2.2"]
    assert "192.0.2.2" in stale.message
    assert "2 different certificates" in stale.message
    assert fresh.severity is Severity.OK
    assert fresh.details["addresses"] == ["192.0.2.1", "192.0.2.3"]


def test_group_chains_separates_same_leaf_with_different_intermediates(pki: Pki) -> None:
    leaf = pki.leaf()
    groups = group_chains(
        [served("192.0.2.1", leaf), served("192.0.2.2", leaf, with_intermediate=False)]
    )
    assert len(groups) == 2
    assert groups[0].cause != groups[1].cause
    assert all(g.cause.startswith(f"sha256:{leaf.fingerprint[:16]}") for g in groups)


def test_failures_are_per_address(pki: Pki) -> None:
    failed = TlsObservation(
        endpoint="pool",
        host="mail.contoso.com",
        port=25,
        address="192.0.2.9",
        failure=ProbeFailure(
            stage=ProbeStage.GREETING,
            kind=FailureKind.REJECTED,
            reason="the greeting is not 220: 421 (temporary)",
            server_words="4.3.2 busy",
            code=421,
        ),
    )
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    findings = evaluate_endpoint(
        ENDPOINT,
        [served("192.0.2.1", pki.leaf()), failed],
        now=pki.now,
        thresholds=Thresholds(),
        anchors=anchors,
    )
    bad = [f for f in findings if f.severity is not Severity.OK]
    assert [(f.check, f.cause) for f in bad] == [(CheckId.ENDPOINT_UNREACHABLE, "192.0.2.9")]
    assert "temporary" in bad[0].message
    assert "4.3.2 busy" in bad[0].message


@pytest.mark.parametrize(
    ("days", "severity"),
    [
        (31, Severity.OK),
        (30.6, Severity.OK),  # shown as 31 days left
        (30.4, Severity.WARNING),  # shown as 30 days left
        (8, Severity.WARNING),
        (7.6, Severity.WARNING),  # shown as 8 days left
        (7.4, Severity.CRITICAL),  # shown as 7 days left
        (3, Severity.CRITICAL),
        (-1, Severity.CRITICAL),
    ],
)
def test_expiry_thresholds(pki: Pki, days: float, severity: Severity) -> None:
    leaf = pki.leaf(days=days).facts
    finding = check_expiry("x", leaf, now=pki.now, thresholds=Thresholds(), cause="", details={})
    assert finding.severity is severity


def test_expired_message_says_days_ago(pki: Pki) -> None:
    leaf = pki.leaf(
        not_before=pki.now - timedelta(days=50), not_after=pki.now - timedelta(days=3, hours=1)
    ).facts
    finding = check_expiry("x", leaf, now=pki.now, thresholds=Thresholds(), cause="", details={})
    assert "expired on" in finding.message
    assert "(3 days ago)" in finding.message  # 3 days 1 hour, to the nearest day


@pytest.mark.parametrize("algorithm", ["sha1", "md5"])
def test_weak_signature_hash(pki: Pki, algorithm: str) -> None:
    """cryptography refuses to sign with SHA-1, so the facts say it instead."""
    facts = replace(pki.leaf().facts, signature_hash=algorithm)
    finding = check_weak_certificate("x", [facts], cause="", details={})
    assert finding.severity is Severity.CRITICAL
    assert algorithm.upper() in finding.message


# --------------------------------------------------------------------------- report and CLI


def _finding(severity: Severity, subject: str = "relay") -> Finding:
    return Finding(check=CheckId.CERT_EXPIRY, severity=severity, subject=subject, message="m")


@pytest.mark.parametrize(
    ("severities", "code"),
    [
        ([], 0),
        ([Severity.OK, Severity.INFO], 0),
        ([Severity.OK, Severity.WARNING], 1),
        ([Severity.WARNING, Severity.CRITICAL], 2),
    ],
)
def test_exit_code_follows_monitoring_plugin_convention(
    severities: list[Severity], code: int
) -> None:
    assert exit_code([_finding(s) for s in severities]) == code


def test_json_and_table_are_worst_first() -> None:
    findings = [
        _finding(Severity.OK, "a"),
        _finding(Severity.CRITICAL, "b"),
        _finding(Severity.WARNING, "c"),
    ]
    summary = summarize(findings)
    data = to_json(findings, summary)
    assert [f["severity"] for f in data["findings"]] == ["critical", "warning", "ok"]
    assert data["summary"]["worst"] == "critical"
    table = render_table(findings, summary)
    assert table.splitlines()[1].startswith("CRITICAL")
    assert "3 findings (1 ok, 1 warning, 1 critical); worst: critical" in table
    assert " a " not in table  # OK rows are counted, not listed


def test_cli_unknown_check_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--only", "cert-expiri"]) == 3  # UNKNOWN: 2 would mean critical
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown check 'cert-expiri'" in err


def test_cli_scan_json_and_exit_code(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fakes.smtp import closed_port

    config = pki.tmp_path / "relaycheck.toml"
    config.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[trust]
ca_file = "{pki.ca_file.name}"

[probe]
timeout_seconds = 0.5
ehlo_name = "probe.relaycheck.test"

[[endpoints]]
name = "relay"
host = "mail.contoso.com"
address = "127.0.0.1"
port = {closed_port()}
""",
        encoding="utf-8",
    )
    code = main(["scan", "--config", str(config), "--json", "--only", "endpoint-unreachable"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 2
    assert set(data) == {"findings", "summary"}
    (finding,) = data["findings"]
    assert finding["check"] == "endpoint-unreachable"
    assert finding["details"]["address"] == "127.0.0.1"
    assert data["summary"]["worst"] == "critical"


def test_a_certificate_issued_for_three_days_has_three_days_left(pki: Pki) -> None:
    """Issued a moment before the scan: 2 days 23:59:59 left is shown as 3, like people say."""
    leaf = pki.leaf(days=3).facts
    finding = check_expiry(
        "x", leaf, now=pki.now + timedelta(seconds=1), thresholds=Thresholds(), cause="", details={}
    )
    assert "(3 days left)" in finding.message


def test_cli_scan_json_is_compact_unless_pretty(
    pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.smtp import closed_port

    config = pki.tmp_path / "relaycheck.toml"
    config.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]

[probe]
timeout_seconds = 0.5
ehlo_name = "probe.relaycheck.test"

[[endpoints]]
name = "relay"
host = "mail.contoso.com"
address = "127.0.0.1"
port = {closed_port()}
""",
        encoding="utf-8",
    )
    args = ["scan", "--config", str(config), "--json", "--only", "endpoint-unreachable"]
    assert main(args) == 2
    compact = capsys.readouterr().out
    assert main([*args, "--pretty"]) == 2
    pretty = capsys.readouterr().out
    # one line of JSON for scripts, the indented form for people; the same document
    assert compact.count("\n") == 1
    assert compact.endswith("}\n")
    assert pretty.count("\n") > 10
    assert pretty.startswith('{\n  "findings": [')
    first, second = json.loads(compact), json.loads(pretty)
    for data in (first, second):
        for finding in data["findings"]:
            finding["details"].pop("elapsed_seconds", None)
            finding["message"] = finding["message"].split(" (")[0]
    assert first == second


def test_chain_verdicts_are_remembered_per_chain_and_moment(pki: Pki) -> None:
    from checks.rules.certificates import ChainStatus, facts_from_der
    from checks.rules.chain import verify_chain

    issued = pki.leaf(["mail.contoso.com"], days=30)
    chain = (issued.facts, facts_from_x509(pki.intermediate))
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    now = pki.now
    first = verify_chain(chain, anchors, now=now)
    again = verify_chain(chain, anchors, now=now)
    assert first.trusted
    assert again is first  # the same verdict, not verified twice
    # another moment is another question: after the leaf expired the answer changes
    later = verify_chain(chain, anchors, now=now + timedelta(days=60))
    assert later.status is ChainStatus.INVALID
    # other anchors are other answers: without the private root nothing is trusted
    bare = verify_chain(chain, load_trust_anchors(None, include_system=False), now=now)
    assert bare.status is ChainStatus.UNTRUSTED_ROOT
    # parsed facts are shared by DER bytes, and equal to a fresh parse
    der = issued.facts.der
    assert facts_from_der(der) is facts_from_der(bytes(der))
    assert facts_from_der(der) == facts_from_x509(issued.cert)


@pytest.mark.parametrize("pretty", [False, True])
def test_scan_json_is_what_json_dumps_would_write(pretty: bool) -> None:
    """The encoder is orjson for speed; the bytes are the stdlib's (ensure_ascii off, compact
    separators or an indent of two), so scripts that diff two runs see no change."""
    from checks.model import CheckId, Finding, Severity
    from checks.report import dumps_json, to_json

    findings = [
        Finding(
            check=CheckId.CERT_EXPIRY,
            severity=Severity.WARNING,
            subject="mx1",
            message="証明書の有効期限 — 9 days left",
            details={"days_left": 9, "names": ["a.contoso.com"], "nested": {"x": None, "y": 1.5}},
            cause="sha256:0011",
        ),
        Finding(
            check=CheckId.CERT_CHAIN,
            severity=Severity.OK,
            subject="mx2",
            message='quote " and \\ backslash, tab\t, nul \x00',
            details={"empty": [], "empty_map": {}, "flag": True},
            cause="",
        ),
    ]
    summary = {"critical": 0, "warning": 1, "ok": 1}
    document = to_json(findings, summary)
    expected = (
        json.dumps(document, indent=2, ensure_ascii=False)
        if pretty
        else json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    )
    assert dumps_json(findings, summary, pretty=pretty) == expected

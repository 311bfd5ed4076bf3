"""dns/mx rules over values: SPF terms, MTA-STS policy text, MX patterns, TLSA matching."""

from __future__ import annotations

import hashlib

import pytest
import trustme
from cryptography import x509

from checks.model import Severity
from checks.rules.certificates import CertificateFacts, facts_from_x509
from checks.rules.dns import (
    DomainDns,
    Lookup,
    MtaStsObservation,
    MxHostObservation,
    MxRecord,
    Outcome,
    PolicyError,
    TlsaRecord,
    TlsaResult,
    mta_sts_findings,
    mx_findings,
    mx_pattern_matches,
    parse_mta_sts_policy,
    parse_spf,
    spf_findings,
    tlsa_matches,
)

CA = trustme.CA()
LEAF = CA.issue_cert("mx1.contoso.com")


def chain(cert: trustme.LeafCert) -> tuple[CertificateFacts, ...]:
    return tuple(
        facts_from_x509(x509.load_pem_x509_certificate(p.bytes())) for p in cert.cert_chain_pems
    )


def answer(name: str, rdtype: str, *texts: str) -> Lookup:
    return Lookup(name=name, rdtype=rdtype, outcome=Outcome.ANSWER, texts=texts)


def test_spf_terms() -> None:
    terms = parse_spf(
        "v=spf1 ip4:192.0.2.0/24 INCLUDE:spf.protection.outlook.com. -include:x.com redirect=_spf.contoso.com ~all"
    )
    assert terms.includes == ("spf.protection.outlook.com", "x.com")
    assert terms.redirect == "_spf.contoso.com"
    assert terms.all_qualifier == "~"


def test_spf_through_redirect_and_unreadable_include() -> None:
    spf = {
        "contoso.com": answer("contoso.com", "TXT", "v=spf1 redirect=_spf.contoso.com"),
        "_spf.contoso.com": answer(
            "_spf.contoso.com", "TXT", "v=spf1 include:spf.protection.outlook.com -all"
        ),
    }
    obs = DomainDns(domain="contoso.com", mx=answer("contoso.com", "MX"), spf=spf)
    assert [f.cause for f in spf_findings(obs)] == ["spf"]
    broken = dict(
        spf,
        **{
            "_spf.contoso.com": Lookup(
                name="_spf.contoso.com", rdtype="TXT", outcome=Outcome.SERVFAIL
            )
        },
    )
    (finding,) = spf_findings(
        DomainDns(domain="contoso.com", mx=answer("contoso.com", "MX"), spf=broken)
    )
    assert (finding.cause, finding.details["unresolved"]) == ("spf-no-exo", ["_spf.contoso.com"])
    two = {
        "contoso.com": answer(
            "contoso.com", "TXT", "v=spf1 -all", "v=spf1 mx -all", "google-site=x"
        )
    }
    assert [
        f.cause
        for f in spf_findings(
            DomainDns(domain="contoso.com", mx=answer("contoso.com", "MX"), spf=two)
        )
    ] == ["spf-multiple"]


def test_mta_sts_policy_parsing() -> None:
    policy = parse_mta_sts_policy(
        "version: STSv1\r\nmode: testing\r\nmx: MX1.contoso.com\r\nmx: *.contoso.net\r\nmax_age: 86400\r\n"
    )
    assert (policy.mode, policy.mx, policy.max_age) == (
        "testing",
        ("mx1.contoso.com", "*.contoso.net"),
        86400,
    )
    for bad in (
        "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1",
        "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1",
        "version: STSv1\nmode: enforce\nmax_age: 1",
        "version: STSv1\nmode: enforce\nmx: a.b",
        "garbage",
    ):
        with pytest.raises(PolicyError):
            parse_mta_sts_policy(bad)


def test_mta_sts_wildcard_is_one_label_and_testing_mode_warns() -> None:
    text = "version: STSv1\nmode: testing\nmx: *.contoso.com\nmax_age: 86400\n"
    obs = DomainDns(
        domain="contoso.com",
        mx=answer("contoso.com", "MX"),
        mx_records=(
            MxRecord(preference=10, exchange="a.b.contoso.com"),
            MxRecord(preference=20, exchange="mx.contoso.com"),
        ),
        mta_sts=MtaStsObservation(
            txt=answer("_mta-sts.contoso.com", "TXT", "v=STSv1; id=1"),
            policy_url="u",
            policy_text=text,
        ),
    )
    (finding,) = mta_sts_findings(obs)
    assert (finding.severity, finding.details["unlisted"]) == (
        Severity.WARNING,
        ["a.b.contoso.com"],
    )


def test_mx_patterns() -> None:
    assert mx_pattern_matches("exchange-online", "contoso-com.mail.protection.outlook.com")
    assert mx_pattern_matches("exchange-online", "contoso-com.o-v1.mx.microsoft")
    assert not mx_pattern_matches("exchange-online", "mail.protection.outlook.com.evil.com")
    assert mx_pattern_matches("*.contoso.com", "mx1.dc1.contoso.com")
    assert not mx_pattern_matches("*.contoso.com", "contoso.com")
    assert mx_pattern_matches("mx1.contoso.com", "mx1.contoso.com")


def test_one_unresolvable_mx_of_two_is_a_warning() -> None:

    good = MxHostObservation(
        host="a.contoso.com",
        a=answer("a.contoso.com", "A"),
        aaaa=answer("a.contoso.com", "AAAA"),
        addresses=("192.0.2.1",),
    )
    bad = MxHostObservation(
        host="b.contoso.com",
        a=Lookup(name="b.contoso.com", rdtype="A", outcome=Outcome.TIMEOUT),
        aaaa=Lookup(name="b.contoso.com", rdtype="AAAA", outcome=Outcome.NO_ANSWER),
    )
    obs = DomainDns(
        domain="contoso.com",
        mx=answer("contoso.com", "MX"),
        mx_records=(
            MxRecord(preference=10, exchange="a.contoso.com"),
            MxRecord(preference=20, exchange="b.contoso.com"),
        ),
        hosts=(good, bad),
    )
    (finding,) = mx_findings(obs, expected=())
    assert (finding.severity, finding.cause) == (Severity.WARNING, "unresolvable:b.contoso.com")
    assert "A: timeout" in finding.message


def test_tlsa_usages_selectors_and_matching_types() -> None:
    served = (*chain(LEAF), facts_from_x509(x509.load_pem_x509_certificate(CA.cert_pem.bytes())))
    leaf, issuer = served[0], served[-1]
    full_sha512 = hashlib.sha512(leaf.der).digest()
    assert (
        tlsa_matches(
            [TlsaRecord(usage=3, selector=0, mtype=2, data=full_sha512)], chain(LEAF)
        ).result
        is TlsaResult.MATCH
    )
    assert (
        tlsa_matches([TlsaRecord(usage=3, selector=0, mtype=0, data=leaf.der)], chain(LEAF)).result
        is TlsaResult.MATCH
    )
    # DANE-TA must match a certificate above the leaf, never the leaf itself
    ta = TlsaRecord(usage=2, selector=0, mtype=1, data=hashlib.sha256(issuer.der).digest())
    as_leaf = TlsaRecord(usage=2, selector=0, mtype=1, data=hashlib.sha256(leaf.der).digest())
    assert tlsa_matches([ta], served).result is TlsaResult.MATCH
    assert tlsa_matches([as_leaf], served).result is TlsaResult.NO_MATCH
    assert (
        tlsa_matches([TlsaRecord(usage=3, selector=1, mtype=7, data=b"x")], chain(LEAF)).result
        is TlsaResult.NO_USABLE
    )
    assert tlsa_matches([ta], ()).result is TlsaResult.NO_CHAIN

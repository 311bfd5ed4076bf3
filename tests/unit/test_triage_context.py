"""What the tenant and the last scan add to a triaged reply (pure, plain values)."""

from __future__ import annotations

from datetime import UTC, datetime

from checks.i18n import Language, using
from checks.model import AcceptedDomain, CheckId, Connector, ConnectorType, Finding, Severity
from checks.rules.lifecycle import CertificateSnapshot
from checks.rules.replies import Triage, triage_all
from checks.rules.triage_context import tenant_hints, with_tenant_hints

ACCEPTED = (AcceptedDomain(name="contoso.com"),)
IP_ONLY = (Connector(name="From on-prem", sender_ip_addresses=("203.0.113.10",)),)
CERT = Connector(name="Cert", tls_sender_certificate_name="*.contoso.com")
OPENED = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def answer(text: str) -> Triage:
    return triage_all(text)[0]


def test_attr36_and_the_only_on_premises_connector_is_ip_based() -> None:
    hints = tenant_hints(
        answer("550 5.7.64 Relay Access Denied ATTR36"), connectors=IP_ONLY, accepted=ACCEPTED
    )
    assert hints == (
        "your only OnPremises connector 'From on-prem' is IP-based: NDRs, sender domains that "
        "are not accepted and forwards cannot be relayed over it",
    )


def test_several_ip_connectors_none_at_all_and_partner_ones_do_not_count() -> None:
    two = (*IP_ONLY, Connector(name="Second", sender_ip_addresses=("198.51.100.1",)))
    assert (
        "all 2 OnPremises connectors are IP-based"
        in tenant_hints(answer("ATTR36"), connectors=two, accepted=ACCEPTED)[0]
    )
    partner = (Connector(name="P", type=ConnectorType.PARTNER, sender_ip_addresses=("1.2.3.4",)),)
    disabled = (Connector(name="D", enabled=False, tls_sender_certificate_name="*.contoso.com"),)
    for connectors in ((), partner, disabled):
        assert tenant_hints(answer("ATTR36"), connectors=connectors, accepted=ACCEPTED) == (
            "this tenant has no enabled OnPremises connector",
        )


def test_a_certificate_connector_outside_the_accepted_domains() -> None:
    foreign = (Connector(name="Cert", tls_sender_certificate_name="*.fabrikam.com"),)
    (hint,) = tenant_hints(answer("ATTR36"), connectors=foreign, accepted=ACCEPTED)
    assert hint == (
        "connector 'Cert' identifies the server by certificate *.fabrikam.com, but fabrikam.com "
        "is not an accepted domain"
    )
    assert tenant_hints(answer("ATTR36"), connectors=(CERT,), accepted=ACCEPTED) == ()


def test_tenant_attribution_and_a_served_certificate_without_the_connector_name() -> None:
    renewed = CertificateSnapshot(
        source="mail1/192.0.2.25",
        fingerprint="ab" * 32,
        subject="CN=mail1.fabrikam.com",
        issuer="CN=R3",
        names=("mail1.fabrikam.com",),
        not_after=datetime(2027, 2, 18, tzinfo=UTC),
        chain_length=2,
    )
    good = CertificateSnapshot(
        source="mail2/192.0.2.26",
        fingerprint="cd" * 32,
        subject="CN=mail2.contoso.com",
        issuer="CN=R3",
        names=("mail2.contoso.com",),
        not_after=datetime(2027, 2, 18, tzinfo=UTC),
        chain_length=2,
    )
    finding = Finding(
        check=CheckId.CERT_CHAIN,
        severity=Severity.CRITICAL,
        subject="mail1",
        message="missing intermediate",
    )
    quiet = Finding(check=CheckId.MX, severity=Severity.OK, subject="contoso.com", message="ok")
    ta = answer("550 5.7.64 TenantAttribution; Relay Access Denied SMTP")
    hints = tenant_hints(
        ta,
        connectors=(CERT,),
        accepted=ACCEPTED,
        findings=[(finding, OPENED), (quiet, OPENED)],
        certificates={"mail1/192.0.2.25": renewed, "mail2/192.0.2.26": good},
    )
    assert hints == (
        "the certificate mail1/192.0.2.25 served at the last scan (mail1.fabrikam.com, valid "
        "until 2027-02-18) does not carry *.contoso.com, the name connector 'Cert' expects",
        "the last scan has cert-chain open since 2026-11-20 for mail1: missing intermediate",
    )
    with using(Language.JA):
        (ja,) = with_tenant_hints(
            [ta], connectors=(CERT,), accepted=ACCEPTED, certificates={"m": renewed}
        )
    assert "2027年2月18日" in ja.hints[0]
    assert "コネクタ 'Cert' が求める名前 *.contoso.com" in ja.hints[0]


def test_replies_the_tenant_cannot_explain_get_no_hints() -> None:
    assert (
        tenant_hints(
            answer("554 5.4.14 Hop count exceeded - possible mail loop ATTR34"),
            connectors=IP_ONLY,
            accepted=ACCEPTED,
        )
        == ()
    )

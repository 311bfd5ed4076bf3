"""Every certificate a server holds, every element it sends, each problem once in plain words.

Real loopback STARTTLS servers with certificates made here; the scan's certificate stage
judges them. Each case asserts the exact set of non-OK findings (a rule firing twice for one
problem fails as surely as one staying silent) and names what the message must say.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.alerting.cycle import snapshots
from checks.model import CheckId, Finding, Severity
from checks.rules.tenant import merge_tenant
from checks.scan import certificate_stage
from checks.stages import ScanContext
from tests.fakes.pki import Issued, Pki
from tests.fakes.smtp import ServerFactory
from tests.integration.test_scan_certs import config_for, problems, scan_certificates, smarthost

# what library debug output looks like: Rust structures, Python reprs of cryptography objects
DEBUG_TEXT = re.compile(
    r"PhantomData|DefinedByMarker|AlgorithmIdentifier|<Certificate\(|<Name\(|Name\(|"
    r"ObjectIdentifier\(|Some\(|\{ oid"
)


def assert_plain(findings: list[Finding]) -> None:
    for finding in findings:
        assert not DEBUG_TEXT.search(finding.message), finding.message


def by_check(findings: list[Finding], check: CheckId) -> list[Finding]:
    return [f for f in findings if f.check is check]


async def scan_one(
    pki: Pki, smtp_server: ServerFactory, chain: Issued, **server: Any
) -> list[Finding]:
    fake = await smtp_server("good", chain, **server)
    findings = await scan_certificates(config_for(pki, [smarthost(fake.port)]), pki.now)
    assert_plain(findings)
    return findings


# --------------------------------------------------------------------------- key types


async def test_dual_certificate_server_shows_both_and_the_expiring_rsa_one(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    ecdsa = pki.leaf(days=90)
    rsa = pki.leaf(days=5.2, rsa_bits=2048)
    fake = await smtp_server("good", ecdsa, also=[rsa])
    findings = await scan_certificates(config_for(pki, [smarthost(fake.port)]), pki.now)
    assert_plain(findings)
    assert problems(findings) == {("cert-expiry", "critical", "relay")}
    expiry = {f.details["key_type"]: f for f in by_check(findings, CheckId.CERT_EXPIRY)}
    assert set(expiry) == {"EC", "RSA"}
    assert expiry["RSA"].severity is Severity.CRITICAL
    assert "(RSA)" in expiry["RSA"].message
    assert "(5 days left)" in expiry["RSA"].message
    assert expiry["RSA"].details["fingerprint_sha256"] == rsa.fingerprint
    assert expiry["EC"].severity is Severity.OK
    assert expiry["EC"].details["fingerprint_sha256"] == ecdsa.fingerprint
    assert expiry["RSA"].details["server_key_types"] == ["EC", "RSA"]
    # two handshakes, one after the other (politeness holds within one address)
    assert fake.handshakes == 2
    assert fake.peak_active == 1


async def test_one_key_type_costs_one_handshake_more_and_no_finding(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    fake = await smtp_server("good", pki.leaf(days=90))
    findings = await scan_certificates(config_for(pki, [smarthost(fake.port)]), pki.now)
    assert problems(findings) == set()
    # the ordinary session, then one offering RSA only, which the ECDSA-only server refuses
    assert fake.connections == 2
    assert fake.handshakes == 1
    assert fake.peak_active == 1
    assert fake.commands.count("STARTTLS") == 2
    (expiry,) = by_check(findings, CheckId.CERT_EXPIRY)
    assert expiry.details["key_type"] == "EC"


async def test_every_key_type_off_is_one_handshake(pki: Pki, smtp_server: ServerFactory) -> None:
    fake = await smtp_server("good", pki.leaf(days=90), also=[pki.leaf(rsa_bits=2048)])
    config = config_for(pki, [smarthost(fake.port)])
    config = replace(config, probe=replace(config.probe, every_key_type=False))
    findings = await scan_certificates(config, pki.now)
    assert fake.connections == 1
    assert len(by_check(findings, CheckId.CERT_EXPIRY)) == 1


# --------------------------------------------------------------------------- intermediates


async def test_expired_intermediate_is_named_once_with_its_date(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    expired = pki.make_intermediate(days=-3, name="Expired Issuing CA")
    leaf = pki.leaf(days=60, intermediate=expired)
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-expiry", "critical", "relay")}
    (expiry,) = by_check(findings, CheckId.CERT_EXPIRY)
    assert "CN=Expired Issuing CA" in expiry.message
    assert f"expired on {expired.not_valid_after_utc:%Y-%m-%d}" in expiry.message
    assert expiry.details["chain_expiry"][0]["subject"].startswith("CN=Expired Issuing CA")
    assert expiry.details["chain_expiry"][0]["element"] == 2
    assert expiry.details["days_left"] == -3
    assert expiry.details["leaf_days_left"] == 60
    # the chain itself is trusted apart from that date: no second, generic critical
    (chain,) = by_check(findings, CheckId.CERT_CHAIN)
    assert chain.severity is Severity.INFO
    assert chain.message.startswith(
        "trusted apart from the validity dates of CN=Expired Issuing CA"
    )
    assert "not valid at validation time" not in " ".join(f.message for f in findings)


async def test_intermediate_expiring_before_the_leaf_within_thresholds_is_named(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    short = pki.make_intermediate(days=12.2, name="Short-lived Issuing CA")
    leaf = pki.leaf(days=90, intermediate=short)
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-expiry", "warning", "relay")}
    (expiry,) = by_check(findings, CheckId.CERT_EXPIRY)
    assert "CN=Short-lived Issuing CA" in expiry.message
    assert f"{short.not_valid_after_utc:%Y-%m-%d}" in expiry.message
    assert "(12 days left)" in expiry.message
    assert "before the certificate itself" in expiry.message
    assert expiry.details["days_left"] == 12


async def test_not_yet_valid_intermediate_is_named(pki: Pki, smtp_server: ServerFactory) -> None:
    future = pki.make_intermediate(
        days=800, name="Future Issuing CA", not_before=pki.now + timedelta(days=4)
    )
    leaf = pki.leaf(days=60, intermediate=future)
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-not-yet-valid", "critical", "relay")}
    (early,) = by_check(findings, CheckId.CERT_NOT_YET_VALID)
    assert "CN=Future Issuing CA" in early.message
    assert f"{future.not_valid_before_utc:%Y-%m-%d}" in early.message


# --------------------------------------------------------------------------- one problem, one finding


async def test_sha1_leaf_is_cert_weak_only_in_plain_words(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.sha1_leaf()
    assert leaf.facts.signature_hash == "sha1"
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-weak", "critical", "relay")}
    (chain,) = by_check(findings, CheckId.CERT_CHAIN)
    assert chain.severity is Severity.INFO
    assert "trusted apart from the SHA-1 signature" in chain.message
    assert chain.details["chain_status"] == "weak-signature"
    weak = [f for f in by_check(findings, CheckId.CERT_WEAK) if f.severity > Severity.OK]
    assert len(weak) == 1
    assert "SHA1" in weak[0].message


async def test_long_validity_is_a_cert_weak_warning(pki: Pki, smtp_server: ServerFactory) -> None:
    leaf = pki.leaf(days=800)
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-weak", "warning", "relay")}
    (weak,) = [f for f in by_check(findings, CheckId.CERT_WEAK) if f.cause.startswith("sha256:")]
    assert "810 days" in weak.message
    assert "max_validity_days = 398" in weak.message
    assert weak.details["validity_days"] == 810


async def test_max_validity_days_is_configurable(pki: Pki, smtp_server: ServerFactory) -> None:
    fake = await smtp_server("good", pki.leaf(days=800))
    config = config_for(pki, [smarthost(fake.port)])
    config = replace(config, thresholds=replace(config.thresholds, max_validity_days=1000))
    findings = await scan_certificates(config, pki.now)
    assert problems(findings) == set()


# --------------------------------------------------------------------------- how the chain is sent


async def test_root_sent_in_the_chain_is_info(pki: Pki, smtp_server: ServerFactory) -> None:
    base = pki.leaf()
    leaf = Issued(cert=base.cert, key=base.key, intermediates=(pki.intermediate, pki.root))
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == set()
    notes = [f for f in by_check(findings, CheckId.CERT_CHAIN) if f.severity is Severity.INFO]
    assert [f.cause.rsplit("/", 1)[1] for f in notes] == ["root-sent"]
    assert "CN=Relaycheck Test Root CA" in notes[0].message


async def test_duplicate_in_the_chain_is_info(pki: Pki, smtp_server: ServerFactory) -> None:
    base = pki.leaf()
    leaf = Issued(cert=base.cert, key=base.key, intermediates=(pki.intermediate, pki.intermediate))
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == set()
    notes = [f for f in by_check(findings, CheckId.CERT_CHAIN) if f.severity is Severity.INFO]
    assert [f.cause.rsplit("/", 1)[1] for f in notes] == ["duplicate"]


async def test_chain_out_of_order_is_a_warning(pki: Pki, smtp_server: ServerFactory) -> None:
    base = pki.leaf()
    leaf = Issued(cert=base.cert, key=base.key, intermediates=(pki.root, pki.intermediate))
    findings = await scan_one(pki, smtp_server, leaf)
    assert problems(findings) == {("cert-chain", "warning", "relay")}
    (order,) = [f for f in findings if f.cause.endswith("/order")]
    assert "out of order" in order.message
    # the verifier builds the path anyway: trust itself is fine
    (trust,) = [f for f in by_check(findings, CheckId.CERT_CHAIN) if "/" not in f.cause]
    assert trust.severity is Severity.OK


async def test_no_library_text_in_any_message_of_the_lab(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    """Every trap side by side in one scan; not one message may carry debug output."""
    lab = [
        pki.sha1_leaf(),
        pki.leaf(days=60, intermediate=pki.make_intermediate(days=-3, name="Gone CA")),
        pki.leaf(self_signed=True),
        pki.leaf(rsa_bits=1024),
        pki.leaf(days=800),
        pki.leaf(not_before=pki.now + timedelta(days=2)),
        pki.leaf(["smtp.fabrikam.com"]),
    ]
    endpoints = []
    for index, chain in enumerate(lab):
        fake = await smtp_server("good", chain)
        endpoints.append(smarthost(fake.port, name=f"lab{index}"))
    bare = await smtp_server("good", pki.leaf(), with_intermediates=False)
    endpoints.append(smarthost(bare.port, name="bare"))
    findings = await scan_certificates(config_for(pki, endpoints), pki.now)
    assert len({f.subject for f in findings}) == len(endpoints)
    assert_plain(findings)


async def test_dual_certificates_are_two_change_tracking_sources(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    """The RSA certificate must not overwrite the ECDSA one in the cert-changed snapshots."""
    ecdsa = pki.leaf(days=90)
    rsa = pki.leaf(days=60, rsa_bits=2048)
    fake = await smtp_server("good", ecdsa, also=[rsa])
    config = config_for(pki, [smarthost(fake.port)])
    ctx = ScanContext(config=config, now=pki.now, tenant=merge_tenant(config), environ={})
    _, observed = await certificate_stage(ctx)
    shots = snapshots(observed)
    assert {k: v.fingerprint for k, v in shots.items()} == {
        "relay/127.0.0.1": ecdsa.fingerprint,
        "relay/127.0.0.1 (RSA)": rsa.fingerprint,
    }

"""The pure preflight judgement with plain values: tenant facts, observations, a candidate chain,
trust anchors and `now` in; a verdict, findings, changes and steps out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from checks.config import parse_config
from checks.model import Config
from checks.preflight import (
    TargetError,
    Verdict,
    choose_target,
    exchange_name,
    preflight,
    render_text,
    targets,
)
from checks.probes.trust import load_trust_anchors
from checks.rules.certificates import CertificateObservation
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.tenant import TenantFacts, merge_tenant
from tests.fakes.pki import Issued, Pki

CONNECTOR = "Inbound from Contoso on-prem"


def tenant(pki: Pki, **extra: Any) -> tuple[Config, TenantFacts]:
    raw: dict[str, Any] = {
        "tenant": {"name": "contoso", "accepted_domains": ["contoso.com", "contoso.co.jp"]},
        "connectors": [
            {
                "name": CONNECTOR,
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"endpoint": "mail1"},
            }
        ],
        "endpoints": [{"name": "mail1", "host": "mail1.contoso.com", "address": "127.0.0.1"}],
        "forwards": [{"mailbox": "kate@contoso.com", "to": "kate@tailspintoys.com"}],
        "trust": {"ca_file": str(pki.ca_file)},
        **extra,
    }
    config = parse_config(raw, base_dir=pki.tmp_path)
    return config, merge_tenant(config)


@pytest.fixture
def anchors(pki: Pki) -> TrustAnchors:
    return load_trust_anchors(pki.ca_file, include_system=False)


def observed(issued: Issued, anchors: TrustAnchors, pki: Pki) -> CertificateObservation:
    chain = (issued.facts, *(Issued(cert=c, key=issued.key).facts for c in issued.intermediates))
    return CertificateObservation(
        source="endpoint mail1", chain=chain, verdict=verify_chain(chain, anchors, now=pki.now)
    )


def judge(pki: Pki, anchors: TrustAnchors, today: Issued, candidate: Issued, **kwargs: Any) -> Any:
    config, facts = tenant(pki)
    current = observed(today, anchors, pki)
    (target, *_) = targets(config, facts)
    return preflight(
        config,
        facts,
        {CONNECTOR: current},
        observed(candidate, anchors, pki).chain,
        target,
        current=current,
        anchors=anchors,
        now=kwargs.pop("now", pki.now),
        **kwargs,
    )


def test_exchange_prints_names_most_specific_first_with_comma_space(pki: Pki) -> None:
    leaf = pki.leaf(["mail1.contoso.com"]).facts
    assert (
        exchange_name(leaf.der, issuer=True) == "CN=Relaycheck Test Issuing CA, O=Relaycheck Test"
    )
    assert exchange_name(leaf.der, issuer=False) == "CN=mail1.contoso.com, O=Contoso Mail"


def test_a_scenario_refused_before_and_after_is_care_not_breaks(
    pki: Pki, anchors: TrustAnchors
) -> None:
    wrong = pki.leaf(["smtp.fabrikam.com"])
    result = judge(pki, anchors, wrong, pki.leaf(["smtp.fabrikam.com"], days=380))
    assert result.verdict is Verdict.CARE
    assert result.verdict_line.startswith(
        "BIND WITH CARE: already refused today, and still after binding: mail from accepted "
        "domains, NDRs and forwards would be refused with 550 5.7.64 TenantAttribution"
    )


def test_a_candidate_that_fixes_relay_still_names_what_changes(
    pki: Pki, anchors: TrustAnchors
) -> None:
    result = judge(
        pki, anchors, pki.leaf(["smtp.fabrikam.com"]), pki.leaf(["mail1.contoso.com"], days=380)
    )
    # relay is fixed; the new subject and the names that go are said, not hidden
    assert result.verdict is Verdict.CARE
    assert result.concerns == ("send connector TlsCertificateName", "names removed")
    refused_before = {f.subject for f in result.before if f.details.get("accepted") is False}
    assert refused_before == {"accepted-sender", "ndr", "forwarding"}
    assert not [f for f in result.after if f.details.get("accepted") is False]


def test_at_a_time_after_the_candidate_expires_binding_breaks(
    pki: Pki, anchors: TrustAnchors
) -> None:
    today = pki.leaf(["mail1.contoso.com"], days=400)
    candidate = pki.leaf(["mail1.contoso.com"], days=30)
    assert judge(pki, anchors, today, candidate).verdict is Verdict.CARE  # 30 days: a warning
    later = judge(pki, anchors, today, candidate, now=pki.now + timedelta(days=31))
    assert later.verdict is Verdict.BREAKS
    assert later.exit_code == 2
    assert any(
        f.check.value == "cert-expiry" and f.severity.value == "critical" for f in later.after
    )


def test_names_under_another_accepted_domain_suggest_the_inbound_connector_change(
    pki: Pki, anchors: TrustAnchors
) -> None:
    result = judge(
        pki, anchors, pki.leaf(["mail1.contoso.com"]), pki.leaf(["mail1.contoso.co.jp"], days=380)
    )
    assert result.verdict is Verdict.BREAKS
    assert (
        "Update the inbound connector to the certificate's new name, in the same change: "
        f"Set-InboundConnector -Identity '{CONNECTOR}' -TlsSenderCertificateName '*.contoso.co.jp'"
    ) in result.steps
    # the steps keep their order: fixes, bind, send connector, inbound connector, verify
    kinds = [step.split(" ")[0] for step in result.steps]
    assert kinds[-4:] == ["Bind", "Update", "Update", "Verify"]
    text = render_text(result)
    assert text.splitlines()[0] == result.verdict_line
    assert "cert-hostname" in text  # the endpoint's host is judged too


def test_the_same_certificate_as_today_is_safe_and_says_so(pki: Pki, anchors: TrustAnchors) -> None:
    today = pki.leaf(["mail1.contoso.com"], days=200)
    result = judge(pki, anchors, today, today)
    assert result.verdict is Verdict.SAFE
    assert result.changes is not None
    assert result.changes["same_certificate"] is True
    assert result.send_connector.changed is False


def test_choose_target_by_name_prefix_and_shared_names(pki: Pki, anchors: TrustAnchors) -> None:
    config, facts = tenant(
        pki,
        endpoints=[
            {"name": "mail1", "host": "mail1.contoso.com", "address": "127.0.0.1"},
            {"name": "mx-tokyo", "host": "mx.contoso.co.jp", "address": "127.0.0.1"},
        ],
    )
    candidate = pki.leaf(["mx.contoso.co.jp"]).facts
    # a connector and the endpoint it is observed at are one target: never ambiguous
    assert choose_target(config, facts, requested=None, candidate=candidate, current={}).name == (
        CONNECTOR
    )
    assert choose_target(
        config, facts, requested="MX", candidate=candidate, current={}
    ).endpoint == config.endpoint("mx-tokyo")
    with pytest.raises(TargetError, match="no connector or endpoint of that name; candidates: "):
        choose_target(config, facts, requested="smtp", candidate=candidate, current={})

    # two certificate connectors: the one whose certificate shares names with the candidate
    two, two_facts = tenant(
        pki,
        connectors=[
            {"name": "A", "tls_sender_certificate_name": "*.contoso.com"},
            {"name": "B", "tls_sender_certificate_name": "*.contoso.co.jp"},
        ],
    )
    tokyo = observed(pki.leaf(["mx.contoso.co.jp"]), anchors, pki)
    chosen = choose_target(
        two, two_facts, requested=None, candidate=candidate, current={"B": tokyo}
    )
    assert chosen.name == "B"
    with pytest.raises(TargetError, match="pass --for with one of: connector 'A', connector 'B'"):
        choose_target(two, two_facts, requested=None, candidate=candidate, current={})
    with pytest.raises(TargetError, match="shares as many names"):
        choose_target(
            two, two_facts, requested=None, candidate=candidate, current={"A": tokyo, "B": tokyo}
        )

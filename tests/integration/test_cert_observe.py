"""`observe_connector_certificates`: endpoint sources are probed, file sources read."""

from __future__ import annotations

from typing import Any

from checks.config import parse_config
from checks.model import Config
from checks.observe import observe_connector_certificates
from checks.probes.trust import load_trust_anchors
from checks.rules.certificates import ChainStatus
from checks.rules.tenant import merge_tenant
from tests.fakes.pki import Pki
from tests.fakes.smtp import ServerFactory, closed_port

PROBE = {"timeout_seconds": 0.5, "greeting_timeout_seconds": 1.0, "deadline_seconds": 2.0}


def config(pki: Pki, port: int, certificate: dict[str, Any]) -> Config:
    return parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "endpoints": [
                {"name": "relay", "host": "mail.contoso.com", "address": "127.0.0.1", "port": port}
            ],
            "connectors": [
                {
                    "name": "cert",
                    "tls_sender_certificate_name": "*.contoso.com",
                    "certificate": certificate,
                }
            ],
            "trust": {"ca_file": str(pki.ca_file)},
            "probe": PROBE,
        },
        base_dir=pki.tmp_path,
    )


async def test_endpoint_source_is_probed_and_verified(pki: Pki, smtp_server: ServerFactory) -> None:
    leaf = pki.leaf()
    server = await smtp_server("good", leaf)
    cfg = config(pki, server.port, {"endpoint": "relay"})
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    result = await observe_connector_certificates(
        cfg, merge_tenant(cfg), now=pki.now, anchors=anchors
    )
    observation = result["cert"]
    assert observation.error is None
    assert observation.leaf is not None
    assert observation.leaf.fingerprint_sha256 == leaf.fingerprint
    assert observation.verdict is not None
    assert observation.verdict.status is ChainStatus.TRUSTED
    assert observation.source == "endpoint relay (127.0.0.1)"


async def test_endpoint_source_served_without_intermediate(
    pki: Pki, smtp_server: ServerFactory
) -> None:
    server = await smtp_server("good", pki.leaf(), with_intermediates=False)
    cfg = config(pki, server.port, {"endpoint": "relay"})
    result = await observe_connector_certificates(cfg, merge_tenant(cfg), now=pki.now)
    assert result["cert"].verdict is not None
    assert result["cert"].verdict.status is ChainStatus.MISSING_INTERMEDIATE


async def test_unreachable_endpoint_source_is_an_error_not_an_exception(pki: Pki) -> None:
    cfg = config(pki, closed_port(), {"endpoint": "relay"})
    result = await observe_connector_certificates(cfg, merge_tenant(cfg), now=pki.now)
    assert result["cert"].chain == ()
    assert result["cert"].error is not None
    assert "cannot connect" in result["cert"].error


async def test_file_source_wins_when_both_are_given(pki: Pki, smtp_server: ServerFactory) -> None:
    served = pki.leaf()
    in_file = pki.leaf(["relay.contoso.com"])
    server = await smtp_server("good", served)
    pem = in_file.write_pem(pki.tmp_path / "client.pem")
    cfg = config(pki, server.port, {"endpoint": "relay", "file": str(pem)})
    result = await observe_connector_certificates(cfg, merge_tenant(cfg), now=pki.now)
    assert result["cert"].leaf is not None
    assert result["cert"].leaf.fingerprint_sha256 == in_file.fingerprint

"""Shared set-up for the Slack tests: a tenant config with hostile names, signed requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trustme
from slack_sdk.signature import SignatureVerifier

from checks.config import parse_config
from checks.model import Config

SIGNING_SECRET = "8f742231b10e8888abcd99aa85a5c3d1"
IP_CONNECTOR = "On-prem IP <!channel> & co"
CERT_CONNECTOR = "Cert <@U123> & more"


def tenant_config(
    tmp: Path, *, with_certificate: bool = True, slack: dict[str, Any] | None = None
) -> Config:
    """Contoso with an IP connector and (optionally) a certificate connector backed by a file."""
    connectors: list[dict[str, Any]] = [
        {"name": IP_CONNECTOR, "sender_ip_addresses": ["203.0.113.10"]}
    ]
    raw: dict[str, Any] = {
        "tenant": {"name": "Contoso <!here>", "accepted_domains": ["contoso.com"]},
        "connectors": connectors,
        "slack": slack or {},
        "state": {"path": str(tmp / "state.sqlite3")},
    }
    if with_certificate:
        ca = trustme.CA()
        cert = ca.issue_cert("mail.contoso.com")
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        (tmp / "chain.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        connectors.append(
            {
                "name": CERT_CONNECTOR,
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"file": "chain.pem"},
            }
        )
        raw["trust"] = {"ca_file": "ca.pem"}
    return parse_config(raw, base_dir=tmp)


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Headers exactly as Slack sends them: v0 HMAC-SHA256 over 'v0:{ts}:{body}'."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def form(payload: dict[str, Any]) -> str:
    return urlencode(payload)

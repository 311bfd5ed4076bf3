"""The Graph probe against the loopback Graph stand-in: paging, 429, 403, 401, credentials."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from checks.model import Microsoft365Settings, Severity
from checks.probes.graph import fetch_domains
from checks.rules.domains import GraphFailure, graph_accepted_domains, graph_finding
from tests.fakes.graph import ACCESS_TOKEN, CLIENT_ID, TENANT_ID, GraphApi

ENV = {"RELAYCHECK_M365_CLIENT_SECRET": "s3cret"}


def _settings(api: GraphApi, **overrides: object) -> Microsoft365Settings:
    values: dict[str, object] = {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "graph_url": api.url,
        "login_url": api.url,
        "timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Microsoft365Settings(**values)  # type: ignore[arg-type]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_two_pages_and_the_accepted_rule(graph_api: GraphApi) -> None:
    async with httpx.AsyncClient() as http:
        obs = await fetch_domains(_settings(graph_api), environ=ENV, http=http)
    assert obs.ok
    assert obs.pages == 2
    assert [d.name for d in obs.domains] == [
        "contoso.com",
        "contoso.onmicrosoft.com",
        "fabrikam.com",
        "sharepoint.contoso.com",
    ]
    assert [d.name for d in graph_accepted_domains(obs)] == [
        "contoso.com",
        "contoso.onmicrosoft.com",
    ]
    token, first, second = graph_api.requests
    assert token.path == f"/{TENANT_ID}/oauth2/v2.0/token"
    assert token.form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "scope": [f"{graph_api.url}.default"],
        "client_secret": ["s3cret"],
    }
    assert first.query["$select"] == ["id,isVerified,supportedServices"]
    assert second.query["page"] == ["1"]
    assert {r.headers["authorization"] for r in (first, second)} == {f"Bearer {ACCESS_TOKEN}"}
    assert graph_finding(obs).severity is Severity.OK


async def test_429_honours_retry_after_then_succeeds(graph_api: GraphApi) -> None:
    graph_api.throttle = [429, 429]
    graph_api.retry_after = "3"
    sleeps = Sleeps()
    obs = await fetch_domains(_settings(graph_api), environ=ENV, sleep=sleeps)
    assert obs.ok
    assert sleeps.calls == [3.0, 3.0]
    assert len(graph_api.requests) == 5  # 2 throttled token requests, token, 2 pages


async def test_503_until_the_attempts_run_out_is_throttled(graph_api: GraphApi) -> None:
    graph_api.throttle = [503] * 10
    graph_api.retry_after = "120"  # capped, never waited in full
    sleeps = Sleeps()
    obs = await fetch_domains(_settings(graph_api), environ=ENV, sleep=sleeps, max_attempts=3)
    assert obs.failure is GraphFailure.THROTTLED
    assert sleeps.calls == [30.0, 30.0]
    finding = graph_finding(obs)
    assert (finding.severity, finding.cause) == (Severity.WARNING, "throttled")


async def test_403_names_the_permission(graph_api: GraphApi) -> None:
    graph_api.domains_status = 403
    obs = await fetch_domains(_settings(graph_api), environ=ENV)
    assert obs.failure is GraphFailure.FORBIDDEN
    assert "Domain.Read.All" in obs.error
    assert CLIENT_ID in obs.error
    assert graph_finding(obs).severity is Severity.CRITICAL


async def test_401_from_graph_names_the_permission(graph_api: GraphApi) -> None:
    graph_api.domains_status = 401
    obs = await fetch_domains(_settings(graph_api), environ=ENV)
    assert obs.failure is GraphFailure.UNAUTHORIZED
    assert "HTTP 401" in obs.error
    assert "Domain.Read.All" in obs.error


async def test_token_refused_shows_the_identity_platform_reason(graph_api: GraphApi) -> None:
    graph_api.token_status = 401
    obs = await fetch_domains(_settings(graph_api), environ=ENV)
    assert obs.failure is GraphFailure.TOKEN_REFUSED
    assert "AADSTS7000215: Invalid client secret provided." in obs.error
    assert "Trace ID" not in obs.error
    assert [r.method for r in graph_api.requests] == ["POST"]


async def test_missing_credential_sends_nothing(graph_api: GraphApi) -> None:
    obs = await fetch_domains(_settings(graph_api), environ={})
    assert obs.failure is GraphFailure.CREDENTIALS
    assert "RELAYCHECK_M365_CLIENT_SECRET" in obs.error
    assert graph_api.requests == []


async def test_next_link_to_another_host_is_not_followed(graph_api: GraphApi) -> None:
    graph_api.pages = [
        [{"id": "contoso.com", "isVerified": True, "supportedServices": ["Email"]}]
    ] * 2
    other = _settings(graph_api, graph_url=f"http://localhost:{graph_api.port}/")
    obs = await fetch_domains(other, environ=ENV)
    assert obs.failure is GraphFailure.BAD_RESPONSE
    assert "nextLink" in obs.error
    assert len([r for r in graph_api.requests if r.method == "GET"]) == 1


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that never answers: connects succeed, reads time out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield sock.getsockname()[1]
    sock.close()


async def test_timeout_is_a_failure_not_an_exception(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/"
    settings = Microsoft365Settings(
        tenant_id=TENANT_ID, client_id=CLIENT_ID, graph_url=url, login_url=url, timeout_seconds=0.3
    )
    obs = await fetch_domains(settings, environ=ENV)
    assert obs.failure is GraphFailure.TIMEOUT
    assert graph_finding(obs).severity is Severity.WARNING


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_certificate_credential_sends_a_signed_assertion(
    graph_api: GraphApi, tmp_path: Path
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("relaycheck-app.contoso.com", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    pem.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    env = {"RELAYCHECK_M365_CLIENT_CERTIFICATE": str(pem)}
    obs = await fetch_domains(_settings(graph_api), environ=env)
    assert obs.ok
    form = graph_api.requests[0].form
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assert "client_secret" not in form
    header_b64, claims_b64, signature_b64 = form["client_assertion"][0].split(".")
    claims = json.loads(_b64decode(claims_b64))
    assert claims["aud"] == f"{graph_api.url}{TENANT_ID}/oauth2/v2.0/token"
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert json.loads(_b64decode(header_b64))["alg"] == "RS256"
    public_key = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        _b64decode(signature_b64),
        f"{header_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )

"""Microsoft Graph probe: the tenant's domains through `GET /v1.0/domains`, app-only.

Client credentials flow against `{login_url}{tenant_id}/oauth2/v2.0/token` with scope
`{graph_url}.default`, using a client secret or, when its environment variable names a PEM file,
a certificate (a client-assertion JWT signed here with cryptography). Every failure returns a
`GraphObservation` with a reason: a refused token, 401/403 (naming `Domain.Read.All`), throttling
after bounded `Retry-After` waits, timeouts. The bearer token is only ever sent to `graph_url`'s
origin, even if a `@odata.nextLink` points elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from checks.model import Microsoft365Settings
from checks.rules.domains import GRAPH_PERMISSION, GraphDomain, GraphFailure, GraphObservation
from checks.rules.names import InvalidName, to_ascii_domain

MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_PAGES = 100

Sleep = Callable[[float], Awaitable[None]]


class _Failed(Exception):
    """Internal control flow: becomes a GraphObservation before leaving this module."""

    def __init__(self, failure: GraphFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_assertion(pem: bytes, *, client_id: str, audience: str, now: float) -> str:
    """An RS256 client-assertion JWT (Microsoft identity platform certificate credentials)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
        cert = x509.load_pem_x509_certificate(pem)
    except (ValueError, TypeError) as err:
        raise _Failed(
            GraphFailure.CREDENTIALS, f"client certificate PEM is unusable ({err})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _Failed(GraphFailure.CREDENTIALS, "client certificate key must be RSA")
    der = cert.public_bytes(serialization.Encoding.DER)
    header = {"alg": "RS256", "typ": "JWT", "x5t#S256": _b64url(hashlib.sha256(der).digest())}
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": int(now),
        "iat": int(now),
        "exp": int(now) + 600,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = float(2**attempt)  # an HTTP-date or nothing: plain backoff
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def _error_text(response: httpx.Response) -> str:
    """The `error_description` / Graph `error.message` first line, for the user."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return ""
    if not isinstance(body, Mapping):
        return ""
    if isinstance(body.get("error_description"), str):
        return str(body["error_description"]).splitlines()[0]
    error = body.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"]).splitlines()[0]
    return str(error) if isinstance(error, str) else ""


class GraphClient:
    """One Graph session: a token, then the pages of `/v1.0/domains`."""

    def __init__(
        self,
        settings: Microsoft365Settings,
        http: httpx.AsyncClient,
        *,
        environ: Mapping[str, str],
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.settings = settings
        self.http = http
        self.environ = environ
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.timeout = httpx.Timeout(settings.timeout_seconds)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request with bounded retries on 429/503, honouring Retry-After."""
        for attempt in range(self.max_attempts):
            try:
                response = await self.http.request(method, url, timeout=self.timeout, **kwargs)
            except httpx.TimeoutException:
                raise _Failed(GraphFailure.TIMEOUT, f"{urlsplit(url).netloc} timed out") from None
            except httpx.TransportError as err:
                raise _Failed(
                    GraphFailure.UNREACHABLE, f"cannot reach {urlsplit(url).netloc} ({err})"
                ) from None
            if response.status_code not in (429, 503):
                return response
            if attempt + 1 < self.max_attempts:
                await self.sleep(_retry_after(response, attempt))
        raise _Failed(
            GraphFailure.THROTTLED,
            f"still HTTP {response.status_code} after {self.max_attempts} attempts (throttled)",
        )

    def _credential(self, token_url: str) -> dict[str, str]:
        ms = self.settings
        secret = self.environ.get(ms.client_secret_env)
        if secret:
            return {"client_secret": secret}
        cert_path = self.environ.get(ms.client_certificate_env)
        if cert_path:
            try:
                pem = Path(cert_path).read_bytes()
            except OSError as err:
                raise _Failed(
                    GraphFailure.CREDENTIALS,
                    f"{ms.client_certificate_env}: cannot read {cert_path} ({err.strerror})",
                ) from None
            assertion = client_assertion(
                pem, client_id=ms.client_id or "", audience=token_url, now=time.time()
            )
            return {
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            }
        raise _Failed(
            GraphFailure.CREDENTIALS,
            f"no credential: set {ms.client_secret_env} (client secret) or "
            f"{ms.client_certificate_env} (path of a PEM with certificate and key)",
        )

    async def token(self) -> str:
        ms = self.settings
        token_url = f"{ms.login_url}{ms.tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": ms.client_id or "",
            "scope": f"{ms.graph_url}.default",
            **self._credential(token_url),
        }
        response = await self._send("POST", token_url, data=form)
        if response.status_code != 200:
            detail = _error_text(response)
            raise _Failed(
                GraphFailure.TOKEN_REFUSED,
                f"the identity platform refused the token request (HTTP {response.status_code})"
                + (f": {detail}" if detail else "")
                + "; check tenant_id, client_id and the credential",
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise _Failed(GraphFailure.BAD_RESPONSE, "token response has no access_token") from None
        if not isinstance(token, str):
            raise _Failed(GraphFailure.BAD_RESPONSE, "token response has no access_token")
        return token

    async def domains(self) -> tuple[tuple[GraphDomain, ...], int]:
        token = await self.token()
        origin = urlsplit(self.settings.graph_url)
        url: str | None = (
            f"{self.settings.graph_url}v1.0/domains?$select=id,isVerified,supportedServices"
        )
        found: list[GraphDomain] = []
        pages = 0
        while url is not None:
            target = urlsplit(url)
            if (target.scheme, target.netloc) != (origin.scheme, origin.netloc):
                raise _Failed(
                    GraphFailure.BAD_RESPONSE,
                    f"@odata.nextLink points to {target.netloc}, not {origin.netloc}; not following",
                )
            if pages >= MAX_PAGES:
                raise _Failed(GraphFailure.BAD_RESPONSE, f"more than {MAX_PAGES} pages of domains")
            response = await self._send("GET", url, headers={"Authorization": f"Bearer {token}"})
            pages += 1
            if response.status_code == 401:
                raise _Failed(
                    GraphFailure.UNAUTHORIZED,
                    "Graph refused the token (HTTP 401): the app registration needs the "
                    f"application permission {GRAPH_PERMISSION} with admin consent",
                )
            if response.status_code == 403:
                raise _Failed(
                    GraphFailure.FORBIDDEN,
                    f"Graph denied access (HTTP 403): grant the application permission "
                    f"{GRAPH_PERMISSION} (admin consent) to the app {self.settings.client_id}",
                )
            if response.status_code != 200:
                detail = _error_text(response)
                raise _Failed(
                    GraphFailure.BAD_RESPONSE,
                    f"GET /v1.0/domains answered HTTP {response.status_code}"
                    + (f": {detail}" if detail else ""),
                )
            found.extend(self._page(response))
            link = response.json().get("@odata.nextLink")
            url = link if isinstance(link, str) else None
        return tuple(found), pages

    @staticmethod
    def _page(response: httpx.Response) -> list[GraphDomain]:
        try:
            body = response.json()
        except (ValueError, RecursionError):
            raise _Failed(
                GraphFailure.BAD_RESPONSE, "GET /v1.0/domains did not return JSON"
            ) from None
        values = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(values, list):
            raise _Failed(GraphFailure.BAD_RESPONSE, "GET /v1.0/domains has no 'value' list")
        result = []
        for item in values:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise _Failed(GraphFailure.BAD_RESPONSE, "a domain entry has no 'id'")
            services = item.get("supportedServices") or []
            try:
                name = to_ascii_domain(item["id"])
            except InvalidName:
                raise _Failed(
                    GraphFailure.BAD_RESPONSE, f"domain id {item['id']!r} is not a domain name"
                ) from None
            result.append(
                GraphDomain(
                    name=name,
                    is_verified=item.get("isVerified") is True,
                    supported_services=tuple(s for s in services if isinstance(s, str)),
                )
            )
        return result


async def fetch_domains(
    settings: Microsoft365Settings,
    *,
    environ: Mapping[str, str],
    http: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    max_attempts: int = MAX_ATTEMPTS,
) -> GraphObservation:
    """The tenant's domains from Graph, or the reason they could not be read."""
    if http is None:
        async with httpx.AsyncClient() as client:
            return await fetch_domains(
                settings, environ=environ, http=client, sleep=sleep, max_attempts=max_attempts
            )
    graph = GraphClient(settings, http, environ=environ, sleep=sleep, max_attempts=max_attempts)
    try:
        domains, pages = await graph.domains()
    except _Failed as failed:
        return GraphObservation(failure=failed.failure, error=failed.message)
    return GraphObservation(domains=domains, pages=pages)

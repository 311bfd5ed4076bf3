"""Fetch revocation evidence over HTTP (httpx): OCSP responses and CRLs, judged elsewhere.

For each sent certificate (`checks.rules.revocation.revocation_targets`): the response the
server stapled, when there is one (for the leaf); else a POST of the OCSP request to the AIA
responder; else, when the certificate names no responder, a GET of its CRL. Every failure
(refused, timeout, HTTP error, too big) comes back as `RevocationEvidence.error`, never raised.

One `RevocationFetcher` per scan: one httpx client, at most `[probe] concurrency` requests at
once, and each URL asked once (many leaves share one intermediate's CRL; a pool sends the same
leaf from every address).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography import x509

from checks.model import RevocationSettings
from checks.observations import sanitize
from checks.rules.certificates import CertificateFacts

if TYPE_CHECKING:
    import httpx

from checks.rules.revocation import (
    Method,
    RevocationEvidence,
    RevocationTarget,
    ocsp_request,
    revocation_targets,
)

MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # CRLs of big CAs run to megabytes; more is not a CRL


class RevocationFetcher:
    """OCSP and CRL fetches for one scan, each URL (and OCSP serial) asked once."""

    def __init__(
        self,
        settings: RevocationSettings,
        *,
        anchors: Sequence[x509.Certificate] = (),
        concurrency: int = 20,
    ) -> None:
        self.settings = settings
        # issuers of the top sent certificate, by subject (built once, not per chain)
        self.anchors = {a.subject: a for a in anchors}
        # made on the first request: most scans have no responder to ask, and importing httpx
        # costs a tenth of a second of every scan's start-up
        self._client: httpx.AsyncClient | None = None
        self.slots = asyncio.Semaphore(concurrency)
        # (method, URL, request body) -> the one fetch of it, shared by every chain that asks
        self.cache: dict[tuple[str, str, bytes], asyncio.Task[tuple[bytes | None, str | None]]] = {}

    async def __aenter__(self) -> RevocationFetcher:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=self.settings.timeout_seconds, follow_redirects=False, trust_env=False
            )
        return self._client

    async def _fetch(self, method: str, url: str, body: bytes) -> tuple[bytes | None, str | None]:
        """One request, read at most `MAX_RESPONSE_BYTES` (a responder is not trusted to stop)."""
        import httpx  # loaded with the client, on the first request

        headers = {"Content-Type": "application/ocsp-request"} if method == "POST" else {}
        async with self.slots:
            try:
                async with (
                    asyncio.timeout(self.settings.timeout_seconds),
                    self.client.stream(
                        method, url, content=body or None, headers=headers
                    ) as response,
                ):
                    if response.status_code != 200:
                        return None, f"HTTP {response.status_code}"
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_RESPONSE_BYTES:
                            return None, f"the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                    return bytes(data), None
            except (TimeoutError, httpx.TimeoutException):
                return None, f"no answer within {self.settings.timeout_seconds:g} s"
            except (httpx.HTTPError, OSError) as err:
                return None, f"cannot reach it ({type(err).__name__}: {sanitize(str(err), 120)})"

    async def _cached(self, method: str, url: str, body: bytes) -> tuple[bytes | None, str | None]:
        key = (method, url, body)
        task = self.cache.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(method, url, body))
            self.cache[key] = task
        return await asyncio.shield(task)

    async def _one(self, target: RevocationTarget, stapled: bytes | None) -> RevocationEvidence:
        if stapled is not None and target.index == 0:
            return RevocationEvidence(target=target, method=Method.STAPLED, response=stapled)
        if target.ocsp_urls:
            url = target.ocsp_urls[0]
            content, error = await self._cached("POST", url, ocsp_request(target))
            return RevocationEvidence(
                target=target, method=Method.OCSP, url=url, response=content, error=error
            )
        if target.crl_urls:
            url = target.crl_urls[0]
            content, error = await self._cached("GET", url, b"")
            return RevocationEvidence(
                target=target, method=Method.CRL, url=url, response=content, error=error
            )
        return RevocationEvidence(target=target, method=Method.NONE)

    async def evidence(
        self, chain: Sequence[CertificateFacts], *, stapled: bytes | None = None
    ) -> tuple[RevocationEvidence, ...]:
        """Evidence for every sent certificate of `chain` whose issuer is known."""
        targets = revocation_targets(chain, self.anchors)
        return tuple(await asyncio.gather(*(self._one(t, stapled) for t in targets)))

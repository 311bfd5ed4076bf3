"""A real OCSP responder and CRL server on loopback, answering for the test PKI's intermediate.

One aiohttp app on 127.0.0.1 port 0: `POST /ocsp` parses the OCSP request with cryptography
and answers from `statuses` (serial -> "good" / "revoked" / "unknown"; a serial not listed is
unknown), `GET /crl` serves a CRL of the revoked serials. Both are signed by the issuer's key,
as the CA's own responder would sign them: the intermediate's for leaves, the root's when asked
about an intermediate. Every request is recorded (method, path, body),
`stop()` makes the responder unreachable (connections refused), and `respond_with` lets a test
make it answer something else (an HTTP error, garbage).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.fakes.pki import Issued, Pki

_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: bytes


@dataclass
class FakeRevocationServer:
    pki: Pki
    port: int = 0
    statuses: dict[int, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    respond_with: tuple[int, bytes] | None = None  # (HTTP status, body) instead of an answer
    # sign OCSP answers as this (certificate, key) instead of the intermediate (a rogue signer)
    signer: Issued | None = None
    runner: web.AppRunner | None = None

    @property
    def ocsp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    @property
    def crl_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crl"

    def set(self, issued: Issued, status: str) -> None:
        self.statuses[issued.cert.serial_number] = status

    def ocsp_response(self, request: ocsp.OCSPRequest) -> bytes:
        """An OCSP response for the request, signed by the intermediate (the leaves' issuer)."""
        status = _STATUS[self.statuses.get(request.serial_number, "unknown")]
        revoked = status is ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=self.pki.now - timedelta(hours=1),
            next_update=self.pki.now + timedelta(days=3),
            revocation_time=self.pki.now - timedelta(days=1) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        root_key_hash = x509.SubjectKeyIdentifier.from_public_key(
            self.pki.root_key.public_key()
        ).digest
        if self.signer is not None:
            cert, key = self.signer.cert, self.signer.key
        elif request.issuer_key_hash == root_key_hash and request.hash_algorithm.name == "sha1":
            cert, key = self.pki.root, self.pki.root_key  # asked about an intermediate
        else:
            cert, key = self.pki.intermediate, self.pki.intermediate_key
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, cert).sign(
            key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)

    def stapled_for(self, issued: Issued) -> bytes:
        """The response a server would staple for `issued` (what the responder says now)."""
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(issued.cert, self.pki.intermediate, hashes.SHA1())  # noqa: S303
            .build()
        )
        return self.ocsp_response(request)

    def crl(self) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.pki.intermediate.subject)
            .last_update(self.pki.now - timedelta(hours=1))
            .next_update(self.pki.now + timedelta(days=7))
        )
        for serial, status in self.statuses.items():
            if status == "revoked":
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(self.pki.now - timedelta(days=1))
                    .add_extension(x509.CRLReason(x509.ReasonFlags.superseded), critical=False)
                    .build()
                )
        crl = builder.sign(self.pki.intermediate_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    async def handle_ocsp(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(RecordedRequest("POST", request.path, body))
        if self.respond_with is not None:
            return web.Response(status=self.respond_with[0], body=self.respond_with[1])
        try:
            parsed = ocsp.load_der_ocsp_request(body)
        except ValueError:
            malformed = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
            return web.Response(
                body=malformed.public_bytes(serialization.Encoding.DER),
                content_type="application/ocsp-response",
            )
        return web.Response(
            body=self.ocsp_response(parsed), content_type="application/ocsp-response"
        )

    async def handle_crl(self, request: web.Request) -> web.Response:
        self.requests.append(RecordedRequest("GET", request.path, b""))
        if self.respond_with is not None:
            return web.Response(status=self.respond_with[0], body=self.respond_with[1])
        return web.Response(body=self.crl(), content_type="application/pkix-crl")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/ocsp", self.handle_ocsp)
        app.router.add_get("/crl", self.handle_crl)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server  # the bound socket tells the port chosen for port 0
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener: from now on connections are refused (a responder that is down)."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


StartRevocation = Callable[[Pki], Awaitable[FakeRevocationServer]]


@pytest.fixture
async def revocation_server() -> AsyncIterator[StartRevocation]:
    """Factory: `await revocation_server(pki)` starts an OCSP responder + CRL server."""
    started: list[FakeRevocationServer] = []

    async def start(pki: Pki) -> FakeRevocationServer:
        server = FakeRevocationServer(pki=pki)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()

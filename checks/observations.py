"""What an SMTP/TLS probe saw, as plain data: the boundary between probes and rules.

Probes fill these in and never judge; rules judge them and never open a socket. They live
outside `checks.probes` so that the pure rules can import them without importing any I/O, and
outside `checks.rules` so that nothing here depends on a rule (`CertificateFacts` is what a
certificate says; `checks.rules.certificates` parses DER into it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFacts:
    """The parts of a certificate relaycheck reasons about."""

    subject: str
    issuer: str
    common_name: str | None
    san_dns_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: str
    fingerprint_sha256: str
    self_issued: bool
    is_ca: bool
    key_type: str
    key_bits: int | None
    signature_hash: str | None
    # None: no EKU extension (any use allowed); else the dotted OIDs / names it lists
    extended_key_usage: tuple[str, ...] | None
    der: bytes

    @property
    def client_auth_allowed(self) -> bool:
        """May this certificate authenticate a TLS *client* (as an MTA sending to EXO)?"""
        return self.extended_key_usage is None or "clientAuth" in self.extended_key_usage

    @property
    def names(self) -> tuple[str, ...]:
        """CN first (when present and not repeated), then SAN dNSNames."""
        if self.common_name and self.common_name not in self.san_dns_names:
            return (self.common_name, *self.san_dns_names)
        return self.san_dns_names


class ProbeStage(StrEnum):
    """Where an SMTP/TLS conversation stopped; the finding names it so admins know where to look."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    HANDSHAKE = "handshake"
    QUIT = "quit"


class FailureKind(StrEnum):
    """Why a stage failed, independent of the server's words."""

    REFUSED = "refused"  # connection refused / unreachable / resolution failed
    TIMEOUT = "timeout"
    DEADLINE = "deadline"  # the whole-endpoint deadline ran out
    TOO_LONG = "too-long"  # the reply exceeded max_reply_bytes
    CLOSED = "closed"  # the server closed the connection
    GARBAGE = "garbage"  # not an SMTP reply
    REJECTED = "rejected"  # a 4xx/5xx reply
    NOT_OFFERED = "not-offered"  # EHLO did not list STARTTLS
    TLS_ERROR = "tls-error"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeFailure:
    stage: ProbeStage
    kind: FailureKind
    reason: str
    # sanitised, truncated words of the server (reply text), if any
    server_words: str = ""
    code: int | None = None

    @property
    def temporary(self) -> bool:
        """A 4xx reply: the server says "try again later" (greylisting, overload, 421)."""
        return self.code is not None and 400 <= self.code < 500


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsObservation:
    """One probe of one address of one endpoint: the chain sent (leaf first) or a failure."""

    endpoint: str
    host: str
    port: int
    address: str | None
    chain: tuple[CertificateFacts, ...] = ()
    tls_version: str | None = None
    cipher: str | None = None
    greeting: str = ""
    failure: ProbeFailure | None = None
    elapsed_seconds: float = 0.0
    # None: the ordinary handshake; "RSA" / "EC": a later one that offered only that key type,
    # made to find a second certificate (dual-certificate servers pick one per handshake)
    key_offer: str | None = None
    # the OCSP response the server stapled (DER), when the TLS layer could ask for one
    stapled_ocsp: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.chain)

    @property
    def leaf(self) -> CertificateFacts | None:
        return self.chain[0] if self.chain else None


def sanitize(text: str | bytes, limit: int = 200) -> str:
    """Server words made safe to show: printable ASCII only, collapsed, truncated."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not (text.isascii() and text.isprintable()):  # printable ASCII is " " to "~" already
        text = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    cleaned = " ".join(text.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."

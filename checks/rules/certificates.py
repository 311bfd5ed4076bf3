"""Certificate facts: what a certificate says, extracted once into plain data.

Rules judge `CertificateFacts`, never raw X.509 objects, so they can be tested with values and
so every layer (explain, scan, Slack, the store) reads the same names and dates. Parsing DER with
cryptography is pure; nothing here touches a file or a socket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# the facts type is plain data that observations carry; rules import it from here too
from checks.observations import CertificateFacts as CertificateFacts

# distinct certificates remembered by `facts_from_der` (a few MB at most)
FACTS_CACHE_SIZE = 2048

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[-1].value  # the most specific CN
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except (ValueError, x509.UnsupportedGeneralNameType):
        return ("unknown", None)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("EC", key.curve.key_size)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456)
    return (type(key).__name__, None)


def facts_from_x509(cert: x509.Certificate) -> CertificateFacts:
    """Extract the facts of one parsed certificate."""
    der = cert.public_bytes(Encoding.DER)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    try:
        eku_ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        eku: tuple[str, ...] | None = tuple(
            _EKU_NAMES.get(oid, oid.dotted_string) for oid in eku_ext
        )
    except x509.ExtensionNotFound:
        eku = None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        hash_algorithm = cert.signature_hash_algorithm
        signature_hash = hash_algorithm.name if hash_algorithm is not None else None
    except UnsupportedAlgorithm:
        signature_hash = "unsupported"
    key_type, key_bits = _key(cert)
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=_common_name(cert.subject),
        san_dns_names=dns_names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        self_issued=cert.subject == cert.issuer,
        is_ca=is_ca,
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=signature_hash,
        extended_key_usage=eku,
        der=der,
    )


@lru_cache(maxsize=FACTS_CACHE_SIZE)
def facts_from_der(der: bytes) -> CertificateFacts:
    """Parse DER bytes; raises ValueError for bytes that are not a certificate.

    Memoised by the DER bytes: a scan sees the same intermediates (and often the same leaf) on
    every endpoint, and parsing one costs ~160 us on the event loop. The facts are frozen
    values of the bytes alone, so sharing them is safe; the cache is bounded (a long-running
    bot sees new certificates forever) and failures are not cached."""
    return facts_from_x509(x509.load_der_x509_certificate(der))


class ChainStatus(StrEnum):
    """The outcome of verifying a presented chain against the trust anchors."""

    TRUSTED = "trusted"
    SELF_SIGNED = "self-signed"
    MISSING_INTERMEDIATE = "missing-intermediate"
    UNTRUSTED_ROOT = "untrusted-root"
    # every signature verifies up to a trusted root, but one uses SHA-1/MD5 (cert-weak says so)
    WEAK_SIGNATURE = "weak-signature"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    status: ChainStatus
    detail: str = ""
    # subjects from leaf to anchor when trusted
    path: tuple[str, ...] = ()

    @property
    def trusted(self) -> bool:
        return self.status is ChainStatus.TRUSTED


def validity_problem(facts: CertificateFacts, now: datetime) -> str | None:
    """Why the certificate is not valid at `now`, or None when it is."""
    if now < facts.not_before:
        return f"not valid before {facts.not_before:%Y-%m-%d %H:%M} UTC"
    if now > facts.not_after:
        return f"expired on {facts.not_after:%Y-%m-%d %H:%M} UTC"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateObservation:
    """A connector certificate as observed from one source (a file or an endpoint probe).

    `error` holds why nothing could be observed (file unreadable, endpoint unreachable): a
    failure is data, and the explanation says "not observed" with that reason.
    """

    source: str
    chain: tuple[CertificateFacts, ...] = ()
    verdict: ChainVerdict | None = None
    error: str | None = None

    @property
    def leaf(self) -> CertificateFacts | None:
        return self.chain[0] if self.chain else None

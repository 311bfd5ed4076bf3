"""Chain verification: the one module that uses `cryptography.x509.verification`.

That API is marked unstable upstream, so it stays here. Its `Store` does not load the system
trust store: `checks.probes.trust.load_trust_anchors` reads the files (at the edge, once per
scan); `verify_chain` is pure given the anchors and `now`.

Exchange Online verifies the certificate an on-prem server presents as a TLS *client*, and does
not fetch missing intermediates, so the chain is built only from what was presented. Extended
Key Usage is judged separately (`cert-eku`): here only signatures, validity and trust count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from checks.rules.certificates import CertificateFacts, ChainStatus, ChainVerdict

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
# (chain, moment) verdicts remembered per set of anchors
VERDICT_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """Root certificates to verify against: the system store plus `[trust] ca_file`.

    The verification `Store` is built once per `TrustAnchors`, on first use, and reused by
    every `verify_chain`: building it from a system bundle (~150 roots) costs more than the
    verification itself, and `/relaycheck` verifies on every answer. The `Store` is immutable,
    so sharing it between threads is safe; two threads racing to build it build the same one.
    """

    certificates: tuple[x509.Certificate, ...]
    sources: tuple[str, ...]
    _store: Store | None = field(default=None, init=False, repr=False, compare=False)
    _anchor_names: frozenset[str] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # verdicts by (presented chain, moment): see `verify_chain`
    _verdicts: dict[tuple[tuple[bytes, ...], datetime], ChainVerdict] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def subjects(self) -> frozenset[bytes]:
        return frozenset(c.subject.public_bytes() for c in self.certificates)

    def store(self) -> Store:
        """The verification store of these anchors (there must be at least one)."""
        if self._store is None:
            object.__setattr__(self, "_store", Store(list(self.certificates)))
        assert self._store is not None
        return self._store

    def anchor_names(self) -> frozenset[str]:
        """RFC 4514 subjects of the anchors, for naming a failed chain."""
        if self._anchor_names is None:
            names = frozenset(c.subject.rfc4514_string() for c in self.certificates)
            object.__setattr__(self, "_anchor_names", names)
        assert self._anchor_names is not None
        return self._anchor_names


# Accept any EKU on the leaf (cert-eku judges it); keep the Web PKI rules for CAs.
_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


def _policy_builder(anchors: TrustAnchors, now: datetime) -> PolicyBuilder:
    return (
        PolicyBuilder()
        .store(anchors.store())
        .time(now)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
    )


def verify_chain(
    chain: Sequence[CertificateFacts], anchors: TrustAnchors, *, now: datetime
) -> ChainVerdict:
    """Verify the presented chain (leaf first) as Exchange Online would, without fetching.

    The verdict is a pure function of the chain, the moment and the anchors, so it is kept on
    the anchors (loaded once per scan, once per bot) keyed by (chain, moment): a scan of many
    endpoints serving one chain verifies it once instead of ~400 us per endpoint. Bounded, as
    the bot verifies at a new moment on every answer."""
    if not chain:
        return ChainVerdict(status=ChainStatus.INVALID, detail="no certificate was presented")
    key = (tuple(c.der for c in chain), now)
    cached = anchors._verdicts.get(key)
    if cached is not None:
        return cached
    verdict = _verify(chain, anchors, now=now)
    if len(anchors._verdicts) >= VERDICT_CACHE_SIZE:
        anchors._verdicts.clear()
    anchors._verdicts[key] = verdict
    return verdict


def _verify(
    chain: Sequence[CertificateFacts], anchors: TrustAnchors, *, now: datetime
) -> ChainVerdict:
    leaf = x509.load_der_x509_certificate(chain[0].der)
    intermediates = [x509.load_der_x509_certificate(c.der) for c in chain[1:]]
    if not anchors.certificates:
        return ChainVerdict(
            status=ChainStatus.UNTRUSTED_ROOT, detail="no trust anchors are available"
        )
    try:
        verifier = _policy_builder(anchors, now).build_client_verifier()
        verified = verifier.verify(leaf, intermediates)
    except VerificationError as err:
        return _classify_failure(chain, anchors, str(err))
    return ChainVerdict(
        status=ChainStatus.TRUSTED,
        path=tuple(c.subject.rfc4514_string() for c in verified.chain),
    )


WEAK_SIGNATURE_HASHES = frozenset({"sha1", "md5"})


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Does `issuer`'s key verify `cert`'s signature, whatever the hash (SHA-1 included)?

    `Certificate.verify_directly_issued_by` refuses SHA-1 outright; to say "trusted apart from
    the SHA-1 signature" the signature itself must still be checked, with the key's own
    primitive."""
    if cert.issuer != issuer.subject or cert.signature_hash_algorithm is None:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _trusted_apart_from_weak_hash(
    chain: Sequence[CertificateFacts], anchors: TrustAnchors
) -> tuple[str, ...] | None:
    """The path leaf -> anchor when every signature on it verifies and the only fault is a
    weak (SHA-1/MD5) hash, which `cert-weak` reports; None otherwise."""
    if not any(
        c.signature_hash in WEAK_SIGNATURE_HASHES for c in chain if not (c.self_issued and c.is_ca)
    ):
        return None
    certs = [x509.load_der_x509_certificate(c.der) for c in chain]
    pool = [c for c in certs[1:] if c.subject != c.issuer]
    path = [certs[0]]
    while len(path) <= len(certs) + 1:
        current = path[-1]
        anchor = next((a for a in anchors.certificates if _signed_by(current, a)), None)
        if anchor is not None:
            path.append(anchor)
            return tuple(c.subject.rfc4514_string() for c in path)
        parent = next((c for c in pool if c not in path and _signed_by(current, c)), None)
        if parent is None:
            return None
        path.append(parent)
    return None


# what the verifier's messages mean, in the words an admin fixes them by; anything else is
# summarised, because its text is a library's debug output (Rust structures, type names)
_PLAIN_REASONS = (
    ("not valid at validation time", "a certificate in the chain is outside its validity period"),
    ("signature", "a signature in the chain does not verify or uses an unsupported algorithm"),
    ("basicConstraints", "an issuing certificate is not marked as a CA (basicConstraints)"),
    ("2.5.29.19", "an issuing certificate is not marked as a CA (basicConstraints)"),
    ("2.5.29.15", "a certificate's key usage does not allow this use (keyUsage)"),
    ("key usage", "a certificate's key usage does not allow this use (keyUsage)"),
    ("name constraint", "a name in the certificate violates its CA's name constraints"),
    ("path length", "the chain is longer than a CA's path length constraint allows"),
    ("public key", "a key in the chain is not accepted (type or size)"),
)


def plain_reason(reason: str) -> str:
    """The verifier's failure in plain words, never its debug text."""
    lowered = reason.lower()
    for marker, words in _PLAIN_REASONS:
        if marker.lower() in lowered:
            return words
    return "the chain does not verify up to a trusted root"


def _classify_failure(
    chain: Sequence[CertificateFacts], anchors: TrustAnchors, reason: str
) -> ChainVerdict:
    """Name the failure the way an admin fixes it, in plain words."""
    leaf = chain[0]
    anchor_subjects = anchors.anchor_names()
    presented_subjects = {c.subject for c in chain}
    if len(chain) == 1 and leaf.self_issued:
        return ChainVerdict(
            status=ChainStatus.SELF_SIGNED,
            detail=f"self-signed certificate ({leaf.subject}); Exchange Online needs a CA-signed one",
        )
    weak_path = _trusted_apart_from_weak_hash(chain, anchors)
    if weak_path is not None:
        weak = next(
            c.signature_hash or "" for c in chain if c.signature_hash in WEAK_SIGNATURE_HASHES
        )
        return ChainVerdict(
            status=ChainStatus.WEAK_SIGNATURE,
            detail=f"trusted apart from the {weak.upper().replace('SHA1', 'SHA-1')} signature "
            "(reported under cert-weak)",
            path=weak_path,
        )
    top = chain[-1]
    if top.self_issued and top.subject not in anchor_subjects:
        return ChainVerdict(
            status=ChainStatus.UNTRUSTED_ROOT,
            detail=f"the chain ends at {top.subject}, which is not a trusted root",
        )
    if top.issuer not in presented_subjects and top.issuer not in anchor_subjects:
        if len(chain) > 1 and top.is_ca:
            # leaf + intermediate(s) sent, the top intermediate's issuer is unknown: a private
            # CA's root nobody told us to trust, or an intermediate the server left out
            return ChainVerdict(
                status=ChainStatus.UNTRUSTED_ROOT,
                detail=(
                    f"the chain ends at the intermediate {top.subject}, whose issuer "
                    f"{top.issuer} was not sent and is not a trusted root. If {top.issuer} is "
                    "your private CA's root, trust it with [trust] ca_file (a PEM file of the "
                    "root; Exchange Online itself trusts only public CAs); otherwise the server "
                    f"must also send the next intermediate ({top.issuer})"
                ),
            )
        return ChainVerdict(
            status=ChainStatus.MISSING_INTERMEDIATE,
            detail=(
                f"the issuer {top.issuer} was not sent and is not a trusted root: the "
                "intermediate certificate is missing (Exchange Online does not fetch it)"
            ),
        )
    return ChainVerdict(status=ChainStatus.INVALID, detail=plain_reason(reason))

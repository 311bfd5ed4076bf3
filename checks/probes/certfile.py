"""Certificate files: the client certificate an MTA presents to Exchange Online.

No listener shows that certificate from outside, so it is read from the file the MTA is
configured with: a PEM chain (Postfix `smtp_tls_chain_files`) or a PFX/PKCS#12 export (Windows,
Exchange). A PFX password comes from an environment variable named in the config, never from the
config file itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from checks.errors import CertificateFileError
from checks.rules.certificates import CertificateFacts, facts_from_x509

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def parse_certificate_bytes(
    data: bytes, source: str, *, password: bytes | None = None
) -> tuple[CertificateFacts, ...]:
    """PEM (one or more certificates) or PFX/PKCS#12 bytes to facts, leaf first."""
    if _PEM_BEGIN in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as err:
            raise CertificateFileError(source, f"not a valid PEM certificate ({err})") from None
        return _order_leaf_first([facts_from_x509(c) for c in certs])
    if data.lstrip().startswith(b"-----BEGIN"):
        raise CertificateFileError(source, "PEM file holds no CERTIFICATE block")
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except ValueError as err:
        text = str(err).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            problem = (
                "wrong or missing PFX password"
                if password
                else "PFX is encrypted: set password_env"
            )
            raise CertificateFileError(source, problem) from None
        try:
            return (facts_from_x509(x509.load_der_x509_certificate(data)),)
        except ValueError:
            raise CertificateFileError(source, "neither PEM, DER nor PFX/PKCS#12") from None
    if bundle.cert is None:
        raise CertificateFileError(source, "PFX holds no certificate")
    leaf = facts_from_x509(bundle.cert.certificate)
    others = [facts_from_x509(c.certificate) for c in bundle.additional_certs]
    return (leaf, *_order_chain(leaf, others))


def _order_chain(leaf: CertificateFacts, others: list[CertificateFacts]) -> list[CertificateFacts]:
    """Follow issuer links from the leaf; anything unlinked keeps its order at the end."""
    ordered: list[CertificateFacts] = []
    remaining = list(others)
    current = leaf
    while True:
        parent = next(
            (c for c in remaining if c.subject == current.issuer and c is not current), None
        )
        if parent is None or current.self_issued:
            break
        ordered.append(parent)
        remaining.remove(parent)
        current = parent
    return ordered + remaining


def _order_leaf_first(certs: list[CertificateFacts]) -> tuple[CertificateFacts, ...]:
    """PEM files usually list the leaf first; if not, pick the one nobody else was issued by."""
    if not certs:
        return ()
    issuers = {c.issuer for c in certs if not c.self_issued}
    candidates = [c for c in certs if c.subject not in issuers and not c.is_ca]
    leaf = candidates[0] if candidates else certs[0]
    return (leaf, *_order_chain(leaf, [c for c in certs if c is not leaf]))


def read_certificate_file(
    path: Path, *, password_env: str | None = None, environ: Mapping[str, str] | None = None
) -> tuple[CertificateFacts, ...]:
    """Read a certificate file named in the config; raises `CertificateFileError`."""
    env = os.environ if environ is None else environ
    password: bytes | None = None
    if password_env is not None:
        value = env.get(password_env)
        if value is None:
            raise CertificateFileError(str(path), f"password variable {password_env} is not set")
        password = value.encode("utf-8")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CertificateFileError(str(path), "file not found") from None
    except OSError as err:
        raise CertificateFileError(str(path), f"cannot read ({err.strerror})") from None
    return parse_certificate_bytes(data, str(path), password=password)

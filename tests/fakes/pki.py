"""A private PKI made in the test: root CA, intermediate, and a leaf factory for every trap.

cryptography's builder is used rather than trustme because the interesting certificates are
the broken ones (RSA-1024, SHA-1, CN-only, expired, not yet valid, no clientAuth), which
trustme does not make. cryptography refuses to sign with SHA-1, so `sha1_leaf` has the
`openssl` command sign a request that cryptography built. Keys are generated once per session
(EC P-256 by default) so hundreds of leaves cost milliseconds.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from checks.rules.certificates import CertificateFacts, facts_from_x509

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@cache
def _ec_key(slot: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def _rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(cn: str | None, org: str = "Relaycheck Test") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key and the intermediates a correct server would send."""

    cert: x509.Certificate
    key: PrivateKey
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def facts(self) -> CertificateFacts:
        return facts_from_x509(self.cert)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def chain_pem(self, *, with_intermediates: bool = True) -> bytes:
        certs = [self.cert, *(self.intermediates if with_intermediates else ())]
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write_pem(self, path: Path, *, with_intermediates: bool = True) -> Path:
        path.write_bytes(self.chain_pem(with_intermediates=with_intermediates))
        return path

    def write_pfx(self, path: Path, password: bytes | None) -> Path:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"relaycheck", self.key, self.cert, list(self.intermediates) or None, encryption
            )
        )
        return path

    def server_context(
        self,
        tmp_path: Path,
        *,
        with_intermediates: bool = True,
        max_version: ssl.TLSVersion | None = None,
        also: Sequence[Issued] = (),
    ) -> ssl.SSLContext:
        """A server-side context presenting this certificate (weak ones allowed on purpose);
        `also` adds certificates of other key types (OpenSSL picks one per handshake by what
        the client offers, as a dual ECDSA+RSA server does)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        if max_version is not None:
            with warnings.catch_warnings():
                # TLS 1.0 is deprecated: that is exactly what this server is for
                warnings.simplefilter("ignore", DeprecationWarning)
                context.maximum_version = max_version
        stem = tmp_path / f"srv-{self.fingerprint[:12]}-{int(with_intermediates)}"
        cert_file = stem.with_suffix(".crt")
        key_file = stem.with_suffix(".key")
        cert_file.write_bytes(self.chain_pem(with_intermediates=with_intermediates))
        key_file.write_bytes(self.key_pem())
        context.load_cert_chain(cert_file, key_file)
        for other in also:
            stem = tmp_path / f"srv-{other.fingerprint[:12]}-also"
            cert_file = stem.with_suffix(".crt")
            key_file = stem.with_suffix(".key")
            cert_file.write_bytes(other.chain_pem(with_intermediates=with_intermediates))
            key_file.write_bytes(other.key_pem())
            context.load_cert_chain(cert_file, key_file)
        return context


@dataclass
class Pki:
    """A private root and intermediate; `leaf(...)` issues whatever a test needs."""

    tmp_path: Path
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    serial: int = 1000

    def __post_init__(self) -> None:
        self.root_key = _ec_key("root")
        self.root = self._build(
            subject=_name("Relaycheck Test Root CA"),
            issuer=_name("Relaycheck Test Root CA"),
            public_key=self.root_key.public_key(),
            signing_key=self.root_key,
            not_before=self.now - timedelta(days=3650),
            not_after=self.now + timedelta(days=3650),
            ca=True,
        )
        self.intermediate_key = _ec_key("intermediate")
        self.intermediate = self.make_intermediate(days=1825)

    def make_intermediate(
        self,
        *,
        days: float,
        name: str = "Relaycheck Test Issuing CA",
        not_before: datetime | None = None,
        ocsp_url: str | None = None,
    ) -> x509.Certificate:
        """Another intermediate of the root with the usual intermediate key (so leaves issued
        under `self.intermediate` verify under it too)."""
        return self._build(
            subject=_name(name),
            issuer=self.root.subject,
            public_key=self.intermediate_key.public_key(),
            signing_key=self.root_key,
            not_before=not_before or (self.now - timedelta(days=365)),
            not_after=self.now + timedelta(days=days),
            ca=True,
            path_length=0,
            ocsp_url=ocsp_url,
        )

    @property
    def ca_file(self) -> Path:
        """The root as a PEM bundle, for `[trust] ca_file`."""
        path = self.tmp_path / "relaycheck-test-root.pem"
        if not path.exists():
            path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path

    def _build(
        self,
        *,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: object,
        signing_key: PrivateKey,
        not_before: datetime,
        not_after: datetime,
        ca: bool = False,
        path_length: int | None = None,
        san: Sequence[str] = (),
        eku: Sequence[x509.ObjectIdentifier] | None = None,
        hash_algorithm: hashes.HashAlgorithm | None = None,
        ocsp_url: str | None = None,
        crl_url: str | None = None,
    ) -> x509.Certificate:
        self.serial += 1
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(self.serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if issuer != subject or not ca:
            issuer_public = signing_key.public_key()
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                critical=False,
            )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False
            )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if ocsp_url is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(ocsp_url),
                        )
                    ]
                ),
                critical=False,
            )
        if crl_url is not None:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        return builder.sign(signing_key, hash_algorithm or hashes.SHA256())  # type: ignore[arg-type]

    def leaf(
        self,
        names: Sequence[str] = ("mail.contoso.com",),
        *,
        cn: str | None = "",
        san: bool = True,
        days: float = 90,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        rsa_bits: int | None = None,
        client_auth: bool = True,
        self_signed: bool = False,
        intermediate: x509.Certificate | None = None,
        issued_by_root: bool = False,
        ocsp_url: str | None = None,
        crl_url: str | None = None,
    ) -> Issued:
        """Issue a leaf. `cn=""` means "the first name"; `cn=None` means no CN at all.
        `ocsp_url` / `crl_url` name a revocation responder / CRL (AIA, CRL distribution point)."""
        key: PrivateKey = _rsa_key(rsa_bits) if rsa_bits else _ec_key("leaf")
        common_name = (names[0] if names else None) if cn == "" else cn
        start = not_before or (self.now - timedelta(days=10))
        end = not_after or (self.now + timedelta(days=days))
        eku = [ExtendedKeyUsageOID.SERVER_AUTH]
        if client_auth:
            eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        subject = _name(common_name, org="Contoso Mail")
        if self_signed:
            cert = self._build(
                subject=subject,
                issuer=subject,
                public_key=key.public_key(),
                signing_key=key,
                not_before=start,
                not_after=end,
                san=names if san else (),
                eku=eku,
            )
            return Issued(cert=cert, key=key)
        issuer_cert = self.root if issued_by_root else (intermediate or self.intermediate)
        issuer_key = self.root_key if issued_by_root else self.intermediate_key
        cert = self._build(
            subject=subject,
            issuer=issuer_cert.subject,
            public_key=key.public_key(),
            signing_key=issuer_key,
            not_before=start,
            not_after=end,
            san=names if san else (),
            eku=eku,
            ocsp_url=ocsp_url,
            crl_url=crl_url,
        )
        return Issued(cert=cert, key=key, intermediates=() if issued_by_root else (issuer_cert,))

    def sha1_leaf(self, names: Sequence[str] = ("mail.contoso.com",), *, days: int = 90) -> Issued:
        """A leaf signed with SHA-1 by the intermediate, as old appliances still present.

        cryptography refuses to sign with SHA-1, so it builds the certificate (self-signed,
        with the usual extensions and dates) and the `openssl` command re-signs it as the
        intermediate with SHA-1, keeping dates and extensions; cryptography loads the result."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("the openssl command is needed to sign a SHA-1 test certificate")
        key = _ec_key("leaf")
        subject = _name(names[0], org="Contoso Mail")
        self.serial += 1
        draft = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(self.serial)
            .not_valid_before(self.now - timedelta(days=10))
            .not_valid_after(self.now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        work = self.tmp_path / f"sha1-{self.serial}"
        work.mkdir()
        (work / "draft.pem").write_bytes(draft.public_bytes(serialization.Encoding.PEM))
        (work / "ca.pem").write_bytes(self.intermediate.public_bytes(serialization.Encoding.PEM))
        (work / "ca.key").write_bytes(
            Issued(cert=self.intermediate, key=self.intermediate_key).key_pem()
        )
        subprocess.run(
            [
                openssl,
                "x509",
                "-in",
                str(work / "draft.pem"),
                "-CA",
                str(work / "ca.pem"),
                "-CAkey",
                str(work / "ca.key"),
                "-sha1",
                "-preserve_dates",
                "-set_serial",
                str(self.serial),
                "-out",
                str(work / "leaf.pem"),
            ],
            check=True,
            capture_output=True,
        )
        cert = x509.load_pem_x509_certificate((work / "leaf.pem").read_bytes())
        return Issued(cert=cert, key=key, intermediates=(self.intermediate,))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh private PKI whose files live in the test's tmp_path."""
    return Pki(tmp_path=tmp_path)

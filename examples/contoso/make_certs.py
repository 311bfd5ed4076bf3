"""Regenerate the example certificates (a private CA, an intermediate, mail1's chain).

The example tenant must answer without a network, so its connector certificate is a file. The
root goes to `certs/private-ca.pem` (the config's `[trust] ca_file`); the leaf and intermediate
go to `certs/mail1-chain.pem`, leaf first, as an MTA would send them. Private keys are thrown
away: nothing here ever signs or serves anything.

    python examples/contoso/make_certs.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent / "certs"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso Example PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ca(subject: str, issuer_name: x509.Name, issuer_key, key, years: int, path_len: int):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def main() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca(
        "Contoso Example Root CA", _name("Contoso Example Root CA"), root_key, root_key, 20, 1
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _ca("Contoso Example Issuing CA", root.subject, root_key, inter_key, 15, 0)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    names = ["mail1.contoso.com", "mail2.contoso.com"]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(inter.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=3652))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()),
            critical=False,
        )
        .sign(inter_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    HERE.mkdir(exist_ok=True)
    (HERE / "private-ca.pem").write_bytes(root.public_bytes(pem))
    (HERE / "mail1-chain.pem").write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))


if __name__ == "__main__":
    main()

"""Certificate files: PEM chains in any order, PFX with a password from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from checks.errors import CertificateFileError
from checks.probes.certfile import parse_certificate_bytes, read_certificate_file
from tests.fakes.pki import Pki


def test_pem_chain_leaf_first(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    path = leaf.write_pem(tmp_path / "chain.pem")
    chain = read_certificate_file(path)
    assert [c.fingerprint_sha256 for c in chain] == [
        leaf.fingerprint,
        pki.intermediate.fingerprint(hashes.SHA256()).hex(),
    ]


def test_pem_in_reverse_order_is_reordered(pki: Pki) -> None:
    leaf = pki.leaf()
    data = pki.intermediate.public_bytes(Encoding.PEM) + leaf.cert.public_bytes(Encoding.PEM)
    chain = parse_certificate_bytes(data, "reversed.pem")
    assert chain[0].fingerprint_sha256 == leaf.fingerprint
    assert len(chain) == 2


def test_der_file(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    path = tmp_path / "leaf.cer"
    path.write_bytes(leaf.cert.public_bytes(Encoding.DER))
    (facts,) = read_certificate_file(path)
    assert facts.fingerprint_sha256 == leaf.fingerprint


def test_pfx_with_password_from_environment(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    path = leaf.write_pfx(tmp_path / "client.pfx", b"s3cret")
    chain = read_certificate_file(path, password_env="PFX_PW", environ={"PFX_PW": "s3cret"})
    assert chain[0].fingerprint_sha256 == leaf.fingerprint
    assert len(chain) == 2


def test_pfx_without_password(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf()
    path = leaf.write_pfx(tmp_path / "open.pfx", None)
    assert read_certificate_file(path, environ={})[0].fingerprint_sha256 == leaf.fingerprint


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"PFX_PW": "wrong"}, "wrong or missing PFX password"),
        ({}, "password variable PFX_PW is not set"),
    ],
)
def test_pfx_password_problems(
    pki: Pki, tmp_path: Path, environ: dict[str, str], problem: str
) -> None:
    path = pki.leaf().write_pfx(tmp_path / "client.pfx", b"s3cret")
    with pytest.raises(CertificateFileError, match=problem):
        read_certificate_file(path, password_env="PFX_PW", environ=environ)


def test_encrypted_pfx_without_password_env(pki: Pki, tmp_path: Path) -> None:
    path = pki.leaf().write_pfx(tmp_path / "client.pfx", b"s3cret")
    with pytest.raises(CertificateFileError, match="set password_env"):
        read_certificate_file(path, environ={})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"hello world", "neither PEM, DER nor PFX"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no CERTIFICATE block"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(CertificateFileError, match=problem):
        read_certificate_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CertificateFileError, match="file not found"):
        read_certificate_file(tmp_path / "nope.pem")

"""Trust anchors from files: the system bundle plus `[trust] ca_file`.

The reading half of chain verification lives here, with the other probes, so that
`checks.rules.chain` (which the rules use) stays pure: call `load_trust_anchors` once at the edge
(per scan, per bot) and hand the anchors to `checks.rules.chain.verify_chain`.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from checks.errors import CertificateFileError
from checks.rules.chain import TrustAnchors

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def _load_pem_bundle(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if _PEM_BEGIN not in data:
        return []
    with warnings.catch_warnings():
        # Some system bundles carry old roots with non-positive serials; cryptography warns
        # about each of them on every load, which is noise for us (and an error under pytest).
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return list(x509.load_pem_x509_certificates(data))


def system_ca_file() -> Path | None:
    """The system trust bundle: OpenSSL's default file, else certifi's when installed."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi  # optional fallback, imported only when needed

        return Path(certifi.where())
    except ImportError:
        return None


def load_trust_anchors(ca_file: Path | None, *, include_system: bool = True) -> TrustAnchors:
    """Read trust anchors; a configured `ca_file` that cannot be read is an error."""
    certificates: list[x509.Certificate] = []
    sources: list[str] = []
    if include_system:
        system = system_ca_file()
        if system is not None:
            try:
                certificates.extend(_load_pem_bundle(system))
                sources.append(str(system))
            except (OSError, ValueError):
                pass  # an unreadable system bundle leaves only the configured anchors
    if ca_file is not None:
        try:
            extra = _load_pem_bundle(ca_file)
        except FileNotFoundError:
            raise CertificateFileError(str(ca_file), "trust ca_file not found") from None
        except OSError as err:
            raise CertificateFileError(str(ca_file), f"cannot read ({err.strerror})") from None
        except ValueError as err:
            raise CertificateFileError(
                str(ca_file), f"not a PEM certificate bundle ({err})"
            ) from None
        if not extra:
            raise CertificateFileError(str(ca_file), "holds no PEM certificate")
        certificates.extend(extra)
        sources.append(str(ca_file))
    return TrustAnchors(certificates=tuple(certificates), sources=tuple(sources))

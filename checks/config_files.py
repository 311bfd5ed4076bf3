"""The files a configuration names: do they exist, and do they parse?

`parse_config` is pure and never opens a file, so a configuration can be valid while its
`ca_file` is missing or its PFX password variable is unset; the scan would then report that as
a finding at 3 a.m. `relaycheck config check` calls `file_problems` to find it at deploy time
instead. Each problem is a `ConfigError` naming the configuration file and the key that names
the file, with the reader's own message (which names the file itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from checks.errors import CertificateFileError, ConfigError
from checks.model import Config
from checks.probes.certfile import read_certificate_file
from checks.probes.exports import load_exports
from checks.probes.trust import load_trust_anchors


def file_problems(config: Config, environ: Mapping[str, str]) -> list[ConfigError]:
    """Every referenced file that is missing or does not parse, in the order of the config."""
    source = str(config.source) if config.source else "<config>"
    problems: list[ConfigError] = []

    def add(key: str, problem: str) -> None:
        problems.append(ConfigError(problem, file=source, key=key))

    exports = load_exports(config)
    for err in exports.errors:
        which = (
            "tenant.accepted_domains_file"
            if err.file == str(config.tenant.accepted_domains_file)
            else "tenant.connectors_file"
        )
        add(which, str(err))
    if config.trust.ca_file is not None:
        try:
            load_trust_anchors(config.trust.ca_file, include_system=False)
        except CertificateFileError as err:
            add("trust.ca_file", str(err))
    m365 = config.microsoft365
    cert_path = environ.get(m365.client_certificate_env, "").strip()
    if m365.enabled and cert_path and not environ.get(m365.client_secret_env):
        # the Graph certificate credential: a PEM holding the certificate and its key
        problem = _graph_pem_problem(cert_path)
        if problem is not None:
            add("microsoft365.client_certificate_env", f"${m365.client_certificate_env}: {problem}")
    for index, connector in enumerate(config.connectors):
        cert = connector.certificate
        if cert is None or cert.file is None:
            continue
        try:
            read_certificate_file(cert.file, password_env=cert.password_env, environ=environ)
        except CertificateFileError as err:
            add(f"connectors[{index}].certificate.file", str(err))
    return problems


def _graph_pem_problem(path: str) -> str | None:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return f"{path}: file not found"
    except OSError as err:
        return f"{path}: cannot read ({err.strerror})"
    missing = [
        what
        for what, marker in (
            ("certificate", b"-----BEGIN CERTIFICATE-----"),
            ("key", b"PRIVATE KEY-----"),
        )
        if marker not in data
    ]
    if missing:
        return f"{path}: holds no PEM {' and no '.join(missing)} (it needs both)"
    return None
